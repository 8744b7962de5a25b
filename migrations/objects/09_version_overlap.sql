-- The current definition of the rule that the versions of a triple never overlap: refuse_overlapping_versions
-- and its two triggers (migration 0023 checked the rows stored before).
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes").
--
-- Versions are [valid_from, valid_to) ranges, the current one open ended; an empty one (a state seen for no
-- time) overlaps nothing. Checked once per statement, over the rows it wrote, through
-- image_versions_triple_valid_idx: an exclusion constraint (btree_gist) said the same, but its GiST index made
-- writing history two to four times slower. Writers of a triple hold its advisory lock (sql/tripleLock.ts),
-- so two transactions never add versions of one triple side by side; at most one current version is
-- image_versions_one_current_idx's.
CREATE OR REPLACE FUNCTION refuse_overlapping_versions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  clash bigint;
BEGIN
  SELECT n.id INTO clash FROM new_versions n
  JOIN image_versions o ON (o.project_id, o.region_id, o.image_id) = (n.project_id, n.region_id, n.image_id) AND o.id <> n.id
  WHERE o.valid_from < coalesce(n.valid_to, 'infinity') AND n.valid_from < coalesce(o.valid_to, 'infinity')
    AND n.valid_from < coalesce(n.valid_to, 'infinity') AND o.valid_from < coalesce(o.valid_to, 'infinity')
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'image_versions_no_overlap: version % overlaps another version of its image', clash
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- A trigger with transition tables has one event: one for what is inserted, one for what is updated.
CREATE OR REPLACE TRIGGER image_versions_no_overlap_insert AFTER INSERT ON image_versions
REFERENCING NEW TABLE AS new_versions FOR EACH STATEMENT EXECUTE FUNCTION refuse_overlapping_versions();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER image_versions_no_overlap_update AFTER UPDATE ON image_versions
REFERENCING NEW TABLE AS new_versions FOR EACH STATEMENT EXECUTE FUNCTION refuse_overlapping_versions();
