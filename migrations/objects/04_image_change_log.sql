-- The current definition of image_change_log.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0004, 0015, 0016, which stay as they were.
-- Reporting: each change with the image's name, region, triple, kind and whether it is the project's own
-- (as it is now), newest first (kind and owned last: a column added in place keeps the others where they were).
-- Who made a change: the latest audit-log entry about the image whose time lies after the observation
-- before the change and no later than the observation that saw it, and how many entries fell in that
-- window; the first sighting of an image is put down to its create entry. Downloads change nothing and
-- are not counted. Ties in time go to the larger id (numeric ids compared as numbers). Each branch is
-- one bounded range of an index.
CREATE OR REPLACE VIEW image_change_log AS
SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id, i.name AS image_name, i.region,
  c.change_type, c.field, c.old_value, c.new_value, c.version_id, i.account,
  who.email AS actor_email, who.user_id AS actor_user_id, who.action_type, who.action_id,
  coalesce(who.candidates, 0)::int AS actor_candidates, i.kind, i.owned
FROM image_changes c
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)
LEFT JOIN LATERAL (
  SELECT w.email, w.user_id, w.action_type, w.action_id, count(*) OVER () AS candidates
  FROM (
    SELECT a.email, a.user_id, a.action_type, a.action_id, a.acted_at FROM image_actions a
    WHERE (a.project_id, a.region_id, a.image_id) = (c.project_id, c.region_id, c.image_id)
      AND a.acted_at > c.observed_before AND a.acted_at <= c.changed_at AND a.action_type IS DISTINCT FROM 'download'
    UNION ALL
    SELECT a.email, a.user_id, a.action_type, a.action_id, a.acted_at FROM image_actions a
    WHERE c.observed_before IS NULL AND c.change_type = 'created'
      AND (a.project_id, a.region_id, a.image_id) = (c.project_id, c.region_id, c.image_id)
      AND a.action_type = 'create' AND a.acted_at <= c.changed_at) w
  ORDER BY w.acted_at DESC, length(w.action_id) DESC, w.action_id DESC
  LIMIT 1) who ON true
ORDER BY c.changed_at DESC, c.id DESC;
