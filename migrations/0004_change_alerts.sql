-- Reporting: each change with the image's name, region and triple, newest first.
CREATE VIEW image_change_log AS
SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id, i.name AS image_name, i.region,
  c.change_type, c.field, c.old_value, c.new_value, c.version_id
FROM image_changes c
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)
ORDER BY c.changed_at DESC, c.id DESC;
--> statement-breakpoint
-- Reporting: targets not seen for more than twice their schedule's interval, or whose last refresh
-- failed, with the reason.
CREATE VIEW stale_images AS
SELECT t.project_id, t.region_id, t.image_id, i.name AS image_name, t.schedule_key, i.last_seen_at,
  t.last_attempt_at, t.last_outcome, t.last_status,
  CASE WHEN t.last_outcome = 'failed' THEN 'last refresh failed: ' || coalesce(t.last_error, 'unknown error')
       WHEN i.last_seen_at IS NULL THEN 'never seen'
       ELSE 'not seen for ' || date_trunc('second', now() - i.last_seen_at)::text END AS reason
FROM targets t
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id)
WHERE t.last_outcome = 'failed'
   OR (t.added_at < now() - make_interval(secs => 2 * t.interval_seconds)
       AND (i.last_seen_at IS NULL OR i.last_seen_at < now() - make_interval(secs => 2 * t.interval_seconds))
       AND i.deleted_at IS NULL);
--> statement-breakpoint
-- Change alerts: one NOTIFY on channel image_changes per changed image per statement, delivered when
-- the refresh's transaction commits. The payload stays small: at most 50 field names.
CREATE FUNCTION notify_image_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  change record;
BEGIN
  FOR change IN
    SELECT n.project_id, n.region_id, n.image_id, n.change_type,
      (array_agg(n.field ORDER BY n.id) FILTER (WHERE n.field IS NOT NULL))[1:50] AS fields,
      count(n.field) AS field_count
    FROM new_changes n
    GROUP BY n.project_id, n.region_id, n.image_id, n.change_type
  LOOP
    PERFORM pg_notify('image_changes', json_build_object(
      'project_id', change.project_id, 'region_id', change.region_id, 'image_id', change.image_id,
      'change_type', change.change_type, 'fields', coalesce(change.fields, ARRAY[]::text[]),
      'field_count', change.field_count)::text);
  END LOOP;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER image_changes_notify AFTER INSERT ON image_changes
REFERENCING NEW TABLE AS new_changes FOR EACH STATEMENT EXECUTE FUNCTION notify_image_changes();
