-- The current definition of stale_images.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0004, 0013, 0015, which stay as they were.
-- Reporting: targets not seen for more than twice their schedule's interval, or whose last refresh
-- failed, with the reason; a target that left its scope is not stale. Its kind is the image's (the
-- target's for one never seen), last: a column added in place keeps the others where they were.
CREATE OR REPLACE VIEW stale_images AS
SELECT t.project_id, t.region_id, t.image_id, i.name AS image_name, t.schedule_key, i.last_seen_at,
  t.last_attempt_at, t.last_outcome, t.last_status,
  CASE WHEN t.last_outcome = 'failed' THEN 'last refresh failed: ' || coalesce(t.last_error, 'unknown error')
       WHEN i.last_seen_at IS NULL THEN 'never seen'
       ELSE 'not seen for ' || date_trunc('second', now() - i.last_seen_at)::text END AS reason,
  t.account, coalesce(i.kind, t.kind) AS kind
FROM targets t
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id)
WHERE t.left_scope_at IS NULL
  AND (t.last_outcome = 'failed'
   OR (t.added_at < now() - make_interval(secs => 2 * t.interval_seconds)
       AND (i.last_seen_at IS NULL OR i.last_seen_at < now() - make_interval(secs => 2 * t.interval_seconds))
       AND i.deleted_at IS NULL));
