CREATE TABLE "audit_log_cursors" (
	"account" text PRIMARY KEY NOT NULL,
	"from_timestamp" timestamp with time zone NOT NULL,
	"page_offset" integer DEFAULT 0 NOT NULL,
	"polled_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "image_actions" (
	"action_id" text PRIMARY KEY NOT NULL,
	"account" text NOT NULL,
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
CREATE INDEX "image_actions_account_idx" ON "image_actions" USING btree ("account","acted_at");--> statement-breakpoint
-- Who made a change: the latest audit-log entry about the image whose time lies after the observation
-- before the change and no later than the observation that saw it (for a first sighting, any earlier
-- entry), and how many entries fell in that window. Downloads change nothing and are not counted. Ties
-- in time go to the larger id, numeric ids compared as numbers.
CREATE OR REPLACE VIEW image_change_log AS
SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id, i.name AS image_name, i.region,
  c.change_type, c.field, c.old_value, c.new_value, c.version_id, i.account,
  who.email AS actor_email, who.user_id AS actor_user_id, who.action_type, who.action_id,
  coalesce(who.candidates, 0)::int AS actor_candidates
FROM image_changes c
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)
LEFT JOIN LATERAL (
  SELECT a.email, a.user_id, a.action_type, a.action_id, count(*) OVER () AS candidates
  FROM image_actions a
  WHERE (a.project_id, a.region_id, a.image_id) = (c.project_id, c.region_id, c.image_id)
    AND a.acted_at <= c.changed_at
    AND (a.acted_at > c.observed_before OR (c.observed_before IS NULL AND c.change_type = 'created'))
    AND a.action_type IS DISTINCT FROM 'download'
  ORDER BY a.acted_at DESC, length(a.action_id) DESC, a.action_id DESC
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
-- The NOTIFY payload names who made each change, as the change log does (read from the view, one
-- definition of "who").
CREATE OR REPLACE FUNCTION notify_image_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  change record;
BEGIN
  FOR change IN
    SELECT n.project_id, n.region_id, n.image_id, n.change_type,
      (array_agg(n.field ORDER BY n.id) FILTER (WHERE n.field IS NOT NULL))[1:50] AS fields,
      count(n.field) AS field_count, max(n.id) AS last_id
    FROM new_changes n
    GROUP BY n.project_id, n.region_id, n.image_id, n.change_type
  LOOP
    PERFORM pg_notify('image_changes', (
      SELECT json_build_object(
        'project_id', change.project_id, 'region_id', change.region_id, 'image_id', change.image_id,
        'change_type', change.change_type, 'fields', coalesce(change.fields, ARRAY[]::text[]),
        'field_count', change.field_count, 'actor_email', l.actor_email, 'actor_user_id', l.actor_user_id,
        'action_type', l.action_type, 'action_id', l.action_id, 'actor_candidates', l.actor_candidates)::text
      FROM image_change_log l WHERE l.id = change.last_id));
  END LOOP;
  RETURN NULL;
END
$$;
