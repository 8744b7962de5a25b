CREATE TABLE "listing_ids" (
	"listing_id" bigint NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"part" integer NOT NULL,
	"page" integer NOT NULL,
	CONSTRAINT "listing_ids_listing_id_project_id_region_id_image_id_pk" PRIMARY KEY("listing_id","project_id","region_id","image_id")
);
--> statement-breakpoint
CREATE TABLE "listing_pages" (
	"listing_id" bigint NOT NULL,
	"part" integer NOT NULL,
	"page" integer NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"endpoint" text NOT NULL,
	"query" jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"count" integer,
	"results" integer,
	"repeated" integer,
	"unusable" integer,
	"error" text,
	CONSTRAINT "listing_pages_listing_id_part_page_pk" PRIMARY KEY("listing_id","part","page"),
	CONSTRAINT "listing_pages_status_check" CHECK ("listing_pages"."status" IN ('queued', 'done', 'failed')),
	CONSTRAINT "listing_pages_endpoint_check" CHECK ("listing_pages"."endpoint" IN ('images', 'bmimages'))
);
--> statement-breakpoint
CREATE TABLE "listings" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" bigint NOT NULL,
	"scope_key" text NOT NULL,
	"status" text DEFAULT 'expanding' NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"expected" bigint,
	"listed" bigint,
	"absent" integer,
	"error" text,
	CONSTRAINT "listings_status_check" CHECK ("listings"."status" IN ('expanding', 'listing', 'complete', 'incomplete')),
	CONSTRAINT "listings_finished_check" CHECK (("listings"."status" IN ('complete', 'incomplete')) = ("listings"."finished_at" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE "scopes" (
	"key" text PRIMARY KEY NOT NULL,
	"definition" jsonb NOT NULL,
	"schedule_key" text NOT NULL,
	"interval_seconds" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "listings_failed" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "explicit" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "scope_key" text;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "left_scope_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "listing_ids" ADD CONSTRAINT "listing_ids_listing_id_listings_id_fk" FOREIGN KEY ("listing_id") REFERENCES "public"."listings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "listing_pages" ADD CONSTRAINT "listing_pages_listing_id_listings_id_fk" FOREIGN KEY ("listing_id") REFERENCES "public"."listings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "listings" ADD CONSTRAINT "listings_run_id_sync_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."sync_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "listings_run_scope_idx" ON "listings" USING btree ("run_id","scope_key");--> statement-breakpoint
CREATE INDEX "targets_scope_idx" ON "targets" USING btree ("scope_key") WHERE "targets"."scope_key" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" ADD CONSTRAINT "targets_source_check" CHECK ("targets"."explicit" OR "targets"."scope_key" IS NOT NULL);
--> statement-breakpoint
-- A target that left its discovery scope is no longer refreshed: it is not stale. Replaced in place, so a
-- reporting role keeps its right to read it.
CREATE OR REPLACE VIEW stale_images AS
SELECT t.project_id, t.region_id, t.image_id, i.name AS image_name, t.schedule_key, i.last_seen_at,
  t.last_attempt_at, t.last_outcome, t.last_status,
  CASE WHEN t.last_outcome = 'failed' THEN 'last refresh failed: ' || coalesce(t.last_error, 'unknown error')
       WHEN i.last_seen_at IS NULL THEN 'never seen'
       ELSE 'not seen for ' || date_trunc('second', now() - i.last_seen_at)::text END AS reason
FROM targets t
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id)
WHERE t.left_scope_at IS NULL
  AND (t.last_outcome = 'failed'
   OR (t.added_at < now() - make_interval(secs => 2 * t.interval_seconds)
       AND (i.last_seen_at IS NULL OR i.last_seen_at < now() - make_interval(secs => 2 * t.interval_seconds))
       AND i.deleted_at IS NULL));
