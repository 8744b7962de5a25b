-- A refresh that finds nothing changed writes no row per image (issue 26). Hand-written round what
-- drizzle-kit generated (docs/database.md):
-- - images becomes image_rows, its last_seen_at becomes seen_at (the last answer about the image
--   alone), and `images` is now a view (migrations/objects/00_images.sql) whose last_seen_at is
--   seen_at or the start of the listing that last saw the image, whichever is later. The rename keeps
--   the primary key's index (renamed, not rebuilt) and the DEFERRABLE key image_versions_image_fk of
--   0023 (drizzle-kit would drop and add it, losing DEFERRABLE). Workers of the earlier release write
--   images.last_seen_at, which the view computes: stop them before this migration runs.
-- - latest_listings: each scope's complete listing that finished last; targets.off_list: the targets
--   that listing did not return.
-- - listing_ids UNLOGGED (a listing's ids cost no WAL), and listing_ids_intact, UNLOGGED with it, so a
--   listing whose ids a crash emptied knows it; listings open now keep the ids they have.
-- - targets: no index on the attempt columns, and room on each page (fillfactor), so recording an
--   attempt can be a HOT update.
CREATE TABLE "latest_listings" (
	"scope_key" text PRIMARY KEY NOT NULL,
	"listing_id" bigint NOT NULL,
	"started_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE UNLOGGED TABLE "listing_ids_intact" (
	"listing_id" bigint PRIMARY KEY NOT NULL
);
--> statement-breakpoint
ALTER TABLE "listing_ids_intact" ADD CONSTRAINT "listing_ids_intact_listing_id_listings_id_fk" FOREIGN KEY ("listing_id") REFERENCES "public"."listings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "listing_ids" SET UNLOGGED;--> statement-breakpoint
INSERT INTO "listing_ids_intact" ("listing_id") SELECT "id" FROM "listings" WHERE "status" = 'listing';--> statement-breakpoint
ALTER TABLE "images" RENAME TO "image_rows";--> statement-breakpoint
ALTER TABLE "image_rows" RENAME CONSTRAINT "images_project_id_region_id_image_id_pk" TO "image_rows_project_id_region_id_image_id_pk";--> statement-breakpoint
ALTER TABLE "image_rows" RENAME COLUMN "last_seen_at" TO "seen_at";--> statement-breakpoint
DROP INDEX "targets_schedule_attempt_idx";--> statement-breakpoint
DROP INDEX "targets_attempt_idx";--> statement-breakpoint
CREATE INDEX "targets_schedule_idx" ON "targets" USING btree ("schedule_key");--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "off_list" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" SET (fillfactor = 80);
