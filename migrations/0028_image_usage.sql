CREATE TABLE "audit_snapshot_usage" (
	"snapshot_id" bigint NOT NULL,
	"usage_id" bigint NOT NULL,
	CONSTRAINT "audit_snapshot_usage_snapshot_id_usage_id_pk" PRIMARY KEY("snapshot_id","usage_id")
);
--> statement-breakpoint
CREATE TABLE "image_usage_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"consumer_kind" text NOT NULL,
	"consumer_id" text NOT NULL,
	"consumer_name" text,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_to" timestamp with time zone,
	CONSTRAINT "image_usage_history_valid_check" CHECK ("image_usage_history"."valid_to" IS NULL OR "image_usage_history"."valid_to" >= "image_usage_history"."valid_from"),
	CONSTRAINT "image_usage_history_kind_check" CHECK ("image_usage_history"."consumer_kind" IN ('instance', 'volume', 'gpu_cluster', 'snapshot'))
);
--> statement-breakpoint
CREATE TABLE "usage_coverage" (
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"first_listed_at" timestamp with time zone NOT NULL,
	"listed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "usage_coverage_project_id_region_id_pk" PRIMARY KEY("project_id","region_id")
);
--> statement-breakpoint
CREATE TABLE "usage_listings" (
	"listing_id" bigint NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status" text NOT NULL,
	"error" text,
	"requests" integer NOT NULL,
	"consumers" integer NOT NULL,
	"opened" integer NOT NULL,
	"closed" integer NOT NULL,
	CONSTRAINT "usage_listings_listing_id_project_id_region_id_pk" PRIMARY KEY("listing_id","project_id","region_id"),
	CONSTRAINT "usage_listings_status_check" CHECK ("usage_listings"."status" IN ('complete', 'incomplete'))
);
--> statement-breakpoint
ALTER TABLE "audit_snapshot_usage" ADD CONSTRAINT "audit_snapshot_usage_snapshot_id_audit_snapshots_id_fk" FOREIGN KEY ("snapshot_id") REFERENCES "public"."audit_snapshots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "audit_snapshot_usage" ADD CONSTRAINT "audit_snapshot_usage_usage_id_image_usage_history_id_fk" FOREIGN KEY ("usage_id") REFERENCES "public"."image_usage_history"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_listings" ADD CONSTRAINT "usage_listings_listing_id_listings_id_fk" FOREIGN KEY ("listing_id") REFERENCES "public"."listings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "image_usage_history_one_current_idx" ON "image_usage_history" USING btree ("project_id","region_id","image_id","consumer_kind","consumer_id") WHERE "image_usage_history"."valid_to" IS NULL;--> statement-breakpoint
CREATE INDEX "image_usage_history_triple_idx" ON "image_usage_history" USING btree ("project_id","region_id","image_id","valid_from");