CREATE TABLE "audit_log_cursors" (
	"account" text PRIMARY KEY NOT NULL,
	"from_timestamp" timestamp with time zone NOT NULL,
	"page_offset" integer DEFAULT 0 NOT NULL,
	"lease_holder" text,
	"lease_until" timestamp with time zone,
	"polled_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "image_actions" (
	"action_id" text PRIMARY KEY NOT NULL,
	"accounts" text[] NOT NULL,
	"acted_at" timestamp with time zone NOT NULL,
	"api_group" text,
	"action_type" text,
	"email" text,
	"user_id" bigint,
	"token_id" bigint,
	"issued_by_user_id" bigint,
	"source_user_ip" text,
	"user_agent" text,
	"project_id" bigint,
	"region_id" bigint,
	"image_id" text,
	"invalid_fields" text[],
	"raw" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "image_changes" ADD COLUMN "observed_before" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "image_actions_image_idx" ON "image_actions" USING btree ("project_id","region_id","image_id","acted_at");--> statement-breakpoint
CREATE INDEX "image_actions_create_idx" ON "image_actions" USING btree ("project_id","region_id","image_id","acted_at") WHERE "image_actions"."action_type" = 'create';--> statement-breakpoint
-- Who made a change: the latest audit-log entry about the image whose time lies after the observation
-- before the change and no later than the observation that saw it, and how many entries fell in that
-- window; the first sighting of an image is put down to its create entry. Downloads change nothing and
-- are not counted. Ties in time go to the larger id (numeric ids compared as numbers). Each branch is
-- one bounded range of an index.
CREATE OR REPLACE VIEW image_change_log AS
SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id, i.name AS image_name, i.region,
  c.change_type, c.field, c.old_value, c.new_value, c.version_id, i.account,
  who.email AS actor_email, who.user_id AS actor_user_id, who.action_type, who.action_id,
  coalesce(who.candidates, 0)::int AS actor_candidates
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
--> statement-breakpoint
-- Roles that read the change log may read the audit log it joins (a view reads as its owner, but a
-- reporting role is also meant to query who did what directly).
DO $$
DECLARE
  reader text;
BEGIN
  FOR reader IN
    SELECT DISTINCT grantee FROM information_schema.role_table_grants
    WHERE table_schema = 'public' AND table_name = 'image_change_log' AND privilege_type = 'SELECT'
      AND grantee NOT IN (current_user, 'PUBLIC')
  LOOP
    EXECUTE format('GRANT SELECT ON image_actions TO %I', reader);
  END LOOP;
END
$$;
--> statement-breakpoint
-- The NOTIFY payload names who made each change, as the change log does (read from the view: one
-- definition of "who"). Text from the audit log, and field names (tag keys have no bound), are cut
-- short: a payload over 8000 bytes would fail the refresh that wrote the change.
CREATE OR REPLACE FUNCTION notify_image_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  change record;
BEGIN
  FOR change IN
    SELECT n.project_id, n.region_id, n.image_id, n.change_type,
      (array_agg(left(n.field, 100) ORDER BY n.id) FILTER (WHERE n.field IS NOT NULL))[1:50] AS fields,
      count(n.field) AS field_count, max(n.id) AS last_id
    FROM new_changes n
    GROUP BY n.project_id, n.region_id, n.image_id, n.change_type
  LOOP
    PERFORM pg_notify('image_changes', (
      SELECT json_build_object(
        'project_id', change.project_id, 'region_id', change.region_id, 'image_id', change.image_id,
        'change_type', change.change_type, 'fields', coalesce(change.fields, ARRAY[]::text[]),
        'field_count', change.field_count, 'actor_email', left(l.actor_email, 320), 'actor_user_id', l.actor_user_id,
        'action_type', left(l.action_type, 64), 'action_id', left(l.action_id, 256), 'actor_candidates', l.actor_candidates)::text
      FROM image_change_log l WHERE l.id = change.last_id));
  END LOOP;
  RETURN NULL;
END
$$;
