-- The current definition of the audit snapshots' immutability (refuse_snapshot_change and its four triggers) and snapshot_diff.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0006, 0008, which stay as they were.
-- Audit snapshots are immutable once taken.
CREATE OR REPLACE FUNCTION refuse_snapshot_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit snapshots are immutable (% on %)', TG_OP, TG_TABLE_NAME;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshots_immutable BEFORE UPDATE OR DELETE ON audit_snapshots
FOR EACH ROW EXECUTE FUNCTION refuse_snapshot_change();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshot_items_immutable BEFORE UPDATE OR DELETE ON audit_snapshot_items
FOR EACH ROW EXECUTE FUNCTION refuse_snapshot_change();
--> statement-breakpoint
-- The images added, removed and changed between snapshots a and b. It runs with its owner's rights (as
-- images_as_of), so a read-only reporting role can call it.
CREATE OR REPLACE FUNCTION snapshot_diff(a bigint, b bigint)
RETURNS TABLE (project_id integer, region_id integer, image_id text, difference text, version_a bigint, version_b bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(x.project_id, y.project_id), coalesce(x.region_id, y.region_id), coalesce(x.image_id, y.image_id),
    CASE WHEN x.version_id IS NULL THEN 'added' WHEN y.version_id IS NULL THEN 'removed' ELSE 'changed' END,
    x.version_id, y.version_id
  FROM (SELECT * FROM audit_snapshot_items WHERE snapshot_id = a) x
  FULL JOIN (SELECT * FROM audit_snapshot_items WHERE snapshot_id = b) y
    ON (x.project_id, x.region_id, x.image_id) = (y.project_id, y.region_id, y.image_id)
  WHERE x.version_id IS DISTINCT FROM y.version_id
  ORDER BY 1, 2, 3
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshots_no_truncate BEFORE TRUNCATE ON audit_snapshots
FOR EACH STATEMENT EXECUTE FUNCTION refuse_snapshot_change();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshot_items_no_truncate BEFORE TRUNCATE ON audit_snapshot_items
FOR EACH STATEMENT EXECUTE FUNCTION refuse_snapshot_change();
