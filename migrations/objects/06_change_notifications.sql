-- The current definition of the change notifications: bounded_change_payload, notify_image_changes and
-- the trigger image_changes_notify.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0004, 0016, 0018, which stay as they were.
-- Change alerts: one NOTIFY on channel image_changes per changed image and kind of change per statement,
-- delivered when the refresh's transaction commits.
-- A change notification bounded by bytes. pg_notify refuses a payload of 8000 bytes or more (bytes in the
-- server's encoding, after JSON escaping), and its error failed the refresh that wrote the change, so an
-- image whose field names were long (60 tags of 59 CJK characters; quote-heavy keys once escaped) could
-- never have its history move again. The payload names the rows it stands for (first_change_id to
-- last_change_id, of the image), so a listener reads whatever did not fit from the table.
--
-- `change` with as many of `fields` as fit in max_bytes, whole and in order, as "fields"; `change` with no
-- fields when even that is too long; else only its members that name the rows. Each field is counted as
-- jsonb writes it (escaped, ", " between elements), and the result is measured before it is returned.
CREATE OR REPLACE FUNCTION bounded_change_payload(change jsonb, fields text[], max_bytes int)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  payload text := (change || jsonb_build_object('fields', coalesce(fields, ARRAY[]::text[])))::text;
  base int;
  kept text[];
BEGIN
  -- Nearly every change fits whole.
  IF octet_length(payload) <= max_bytes THEN
    RETURN payload;
  END IF;
  base := octet_length((change || '{"fields": []}')::text);
  SELECT coalesce(array_agg(f ORDER BY i), ARRAY[]::text[]) INTO kept
  FROM (
    SELECT f, i, sum(octet_length(to_jsonb(f)::text) + CASE WHEN i > 1 THEN 2 ELSE 0 END) OVER (ORDER BY i) AS used
    FROM unnest(coalesce(fields, ARRAY[]::text[])) WITH ORDINALITY AS u(f, i)) s
  WHERE base + used <= max_bytes;
  payload := (change || jsonb_build_object('fields', kept))::text;
  IF octet_length(payload) <= max_bytes THEN
    RETURN payload;
  END IF;
  payload := (change || '{"fields": []}')::text;
  IF octet_length(payload) <= max_bytes THEN
    RETURN payload;
  END IF;
  RETURN (jsonb_build_object('fields', ARRAY[]::text[])
    || (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(change)
        WHERE key IN ('project_id', 'region_id', 'image_id', 'change_type', 'field_count', 'first_change_id', 'last_change_id')))::text;
END
$$;
--> statement-breakpoint
-- One notification per image and kind of change in the statement, as before, naming who made it (read from
-- image_change_log: one definition of "who"). A notification that cannot be sent never fails the write:
-- its error is a WARNING in the server's log, and the others of the statement are sent. A NOTIFY queue over
-- half full (a listener that stopped reading) is not added to, since a full queue fails the commit itself,
-- where no handler can catch it.
CREATE OR REPLACE FUNCTION notify_image_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  change record;
BEGIN
  IF pg_notification_queue_usage() > 0.5 THEN
    RAISE WARNING 'image_changes notifications not sent: the NOTIFY queue is % full (is a listener not reading?)',
      to_char(100 * pg_notification_queue_usage(), 'FM990.0%');
    RETURN NULL;
  END IF;
  FOR change IN
    SELECT n.project_id, n.region_id, n.image_id, n.change_type,
      array_agg(n.field ORDER BY n.id) FILTER (WHERE n.field IS NOT NULL) AS fields,
      count(n.field) AS field_count, min(n.id) AS first_id, max(n.id) AS last_id
    FROM new_changes n
    GROUP BY n.project_id, n.region_id, n.image_id, n.change_type
  LOOP
    BEGIN
      PERFORM pg_notify('image_changes', bounded_change_payload((
        SELECT jsonb_build_object(
          'project_id', change.project_id, 'region_id', change.region_id, 'image_id', change.image_id,
          'change_type', change.change_type, 'field_count', change.field_count,
          'first_change_id', change.first_id, 'last_change_id', change.last_id,
          'actor_email', left(l.actor_email, 320), 'actor_user_id', l.actor_user_id,
          'action_type', left(l.action_type, 64), 'action_id', left(l.action_id, 256), 'actor_candidates', l.actor_candidates)
        FROM image_change_log l WHERE l.id = change.last_id), change.fields, 7999));
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'image_changes notification of changes % to % not sent: %', change.first_id, change.last_id, SQLERRM;
    END;
  END LOOP;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER image_changes_notify AFTER INSERT ON image_changes
REFERENCING NEW TABLE AS new_changes FOR EACH STATEMENT EXECUTE FUNCTION notify_image_changes();
