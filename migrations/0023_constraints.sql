-- Mixed: drizzle-kit generated the foreign keys and CHECKs below from src/schema.ts; written by hand are
-- these comments, the check of existing rows, DEFERRABLE on the versions' foreign key to images (drizzle
-- cannot declare it: a first sighting's version is written before its images row, sql/recordChanges.ts,
-- so that key is checked at commit), and the removal of the CREATE TABLE statements it wrote for the three UNLOGGED tables of 0014
-- (declared in schema.ts since this migration, so its snapshot is whole; they exist already).
--
-- The invariants test/support/invariants.ts checked, held by Postgres from here on: the versions of a triple
-- never overlap (the trigger of migrations/objects/09_version_overlap.sql, applied after this), every version belongs to a stored image and every change to a version of its own image,
-- and no count is negative. The release's own writers never broke them; a database whose rows do anyway
-- is not changed: this migration stops (its transaction, and any migration with it, rolls back) and names
-- each broken rule with an example, so the rows can be repaired (docs/database.md, "When 0023 stops").
DO $$
DECLARE
  broken text[] := ARRAY[]::text[];
  example text;
BEGIN
  SELECT v.id::text INTO example FROM image_versions v WHERE v.valid_to < v.valid_from LIMIT 1;
  IF FOUND THEN broken := broken || ('a version that ends before it begins (image_versions.id ' || example || ')'); END IF;
  SELECT a.id::text INTO example FROM image_versions a JOIN image_versions b
    ON (b.project_id, b.region_id, b.image_id) = (a.project_id, a.region_id, a.image_id) AND b.id > a.id
    -- (a version that ends before it begins, reported above, is taken as empty here: tstzrange refuses it)
    AND tstzrange(a.valid_from, CASE WHEN a.valid_to < a.valid_from THEN a.valid_from ELSE a.valid_to END, '[)')
      && tstzrange(b.valid_from, CASE WHEN b.valid_to < b.valid_from THEN b.valid_from ELSE b.valid_to END, '[)')
    LIMIT 1;
  IF FOUND THEN broken := broken || ('versions of a triple that overlap (image_versions.id ' || example || ')'); END IF;
  SELECT v.id::text INTO example FROM image_versions v
    WHERE NOT EXISTS (SELECT 1 FROM images i WHERE (i.project_id, i.region_id, i.image_id) = (v.project_id, v.region_id, v.image_id)) LIMIT 1;
  IF FOUND THEN broken := broken || ('a version without its image (image_versions.id ' || example || ')'); END IF;
  SELECT c.id::text INTO example FROM image_changes c
    WHERE NOT EXISTS (SELECT 1 FROM image_versions v WHERE v.id = c.version_id
      AND (v.project_id, v.region_id, v.image_id) = (c.project_id, c.region_id, c.image_id)) LIMIT 1;
  IF FOUND THEN broken := broken || ('a change without a version of its own image (image_changes.id ' || example || ')'); END IF;
  SELECT r.id::text INTO example FROM sync_runs r WHERE least(r.planned, r.attempted, r.unchanged, r.changed, r.deleted, r.failed,
    r.listings_failed, r.created, r.discovered, r.listed, r.marked_left, r.unattempted, r.listings_unfinished) < 0 LIMIT 1;
  IF FOUND THEN broken := broken || ('a negative count (sync_runs.id ' || example || ')'); END IF;
  SELECT l.id::text INTO example FROM listings l
    WHERE least(l.expected, l.listed, l.absent, l.sampled, l.sample_contradicted, l.marked_left) < 0 LIMIT 1;
  IF FOUND THEN broken := broken || ('a negative count (listings.id ' || example || ')'); END IF;
  SELECT p.listing_id::text INTO example FROM listing_pages p WHERE least(p.count, p.results, p.repeated, p.unusable) < 0 LIMIT 1;
  IF FOUND THEN broken := broken || ('a negative count (listing_pages of listing ' || example || ')'); END IF;
  SELECT f.id::text INTO example FROM sync_failures f WHERE f.attempts < 0 LIMIT 1;
  IF FOUND THEN broken := broken || ('a negative count (sync_failures.id ' || example || ')'); END IF;
  SELECT s.id::text INTO example FROM audit_snapshots s WHERE s.image_count < 0 LIMIT 1;
  IF FOUND THEN broken := broken || ('a negative count (audit_snapshots.id ' || example || ')'); END IF;
  IF cardinality(broken) > 0 THEN
    RAISE EXCEPTION 'migration 0023 adds constraints that stored rows break: %', array_to_string(broken, '; ')
      USING HINT = 'Nothing was changed. Repair the rows named (docs/database.md, "When 0023 stops"), then start again.';
  END IF;
END
$$;
--> statement-breakpoint
ALTER TABLE "image_versions" ADD CONSTRAINT "image_versions_id_triple_unique" UNIQUE("id","project_id","region_id","image_id");--> statement-breakpoint
ALTER TABLE "image_changes" DROP CONSTRAINT "image_changes_version_id_image_versions_id_fk";--> statement-breakpoint
ALTER TABLE "image_changes" ADD CONSTRAINT "image_changes_version_fk" FOREIGN KEY ("version_id","project_id","region_id","image_id") REFERENCES "public"."image_versions"("id","project_id","region_id","image_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_versions" ADD CONSTRAINT "image_versions_image_fk" FOREIGN KEY ("project_id","region_id","image_id") REFERENCES "public"."images"("project_id","region_id","image_id") ON DELETE no action ON UPDATE no action DEFERRABLE INITIALLY DEFERRED;--> statement-breakpoint
ALTER TABLE "audit_snapshots" ADD CONSTRAINT "audit_snapshots_image_count_check" CHECK ("audit_snapshots"."image_count" >= 0);--> statement-breakpoint
ALTER TABLE "image_versions" ADD CONSTRAINT "image_versions_valid_check" CHECK ("image_versions"."valid_to" IS NULL OR "image_versions"."valid_to" >= "image_versions"."valid_from");--> statement-breakpoint
ALTER TABLE "listing_pages" ADD CONSTRAINT "listing_pages_counts_check" CHECK (least("listing_pages"."count", "listing_pages"."results", "listing_pages"."repeated", "listing_pages"."unusable") >= 0);--> statement-breakpoint
ALTER TABLE "listings" ADD CONSTRAINT "listings_counts_check" CHECK (least("listings"."expected", "listings"."listed", "listings"."absent", "listings"."sampled", "listings"."sample_contradicted", "listings"."marked_left") >= 0);--> statement-breakpoint
ALTER TABLE "sync_failures" ADD CONSTRAINT "sync_failures_attempts_check" CHECK ("sync_failures"."attempts" >= 0);--> statement-breakpoint
ALTER TABLE "sync_runs" ADD CONSTRAINT "sync_runs_counts_check" CHECK (least("sync_runs"."planned", "sync_runs"."attempted", "sync_runs"."unchanged", "sync_runs"."changed", "sync_runs"."deleted", "sync_runs"."failed", "sync_runs"."listings_failed", "sync_runs"."created", "sync_runs"."discovered", "sync_runs"."listed", "sync_runs"."marked_left", "sync_runs"."unattempted", "sync_runs"."listings_unfinished") >= 0);
