CREATE TABLE "listing_samples" (
	"listing_id" bigint NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"answer" text,
	CONSTRAINT "listing_samples_listing_id_project_id_region_id_image_id_pk" PRIMARY KEY("listing_id","project_id","region_id","image_id"),
	CONSTRAINT "listing_samples_answer_check" CHECK ("listing_samples"."answer" IN ('gone', 'left', 'in', 'unsure', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "listings" ADD COLUMN "suspect" text;--> statement-breakpoint
ALTER TABLE "listings" ADD COLUMN "sampled" integer;--> statement-breakpoint
ALTER TABLE "listings" ADD COLUMN "sample_contradicted" integer;--> statement-breakpoint
ALTER TABLE "listings" ADD COLUMN "marked_left" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "filter_unsure_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "listing_samples" ADD CONSTRAINT "listing_samples_listing_id_listings_id_fk" FOREIGN KEY ("listing_id") REFERENCES "public"."listings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "listings_scope_idx" ON "listings" USING btree ("scope_key","id");