-- The current definition of keep_listing_sighting and its two triggers on targets (new with migration 0025).
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here (docs/database.md, "Recipes").
--
-- The view images credits an image with the start of its scope's latest complete listing (latest_listings)
-- while its target is on that list: of the scope, not off_list, not left. Whatever ends that credit (the
-- next complete listing not returning it, leaving the scope, another scope taking it, the target removed)
-- first writes the sighting into image_rows.seen_at, so last_seen_at never goes back. Here rather than in
-- each writer: every path that changes a target is covered, those of later releases too. A row-level
-- trigger, but its WHEN keeps it off the common updates (attempts, claims), and the rows it acts on are
-- the few that leave a list.
CREATE OR REPLACE FUNCTION keep_listing_sighting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE image_rows i SET seen_at = p.started_at
  FROM latest_listings p
  WHERE p.scope_key = OLD.scope_key AND OLD.added_at <= p.started_at AND i.seen_at < p.started_at
    AND (i.project_id, i.region_id, i.image_id) = (OLD.project_id, OLD.region_id, OLD.image_id);
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER targets_keep_listing_sighting_update BEFORE UPDATE OF off_list, scope_key, left_scope_at ON targets
FOR EACH ROW
WHEN (OLD.scope_key IS NOT NULL AND NOT OLD.off_list AND OLD.left_scope_at IS NULL
  AND (NEW.off_list OR NEW.left_scope_at IS NOT NULL OR NEW.scope_key IS DISTINCT FROM OLD.scope_key))
EXECUTE FUNCTION keep_listing_sighting();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER targets_keep_listing_sighting_delete BEFORE DELETE ON targets
FOR EACH ROW
WHEN (OLD.scope_key IS NOT NULL AND NOT OLD.off_list AND OLD.left_scope_at IS NULL)
EXECUTE FUNCTION keep_listing_sighting();
