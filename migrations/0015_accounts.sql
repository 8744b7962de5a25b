CREATE TABLE "accounts" (
	"name" text PRIMARY KEY NOT NULL,
	"api_key_env" text NOT NULL,
	"rate_limit_per_second" integer,
	"base_url" text
);
--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "account" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "listings" ADD COLUMN "account" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "scopes" ADD COLUMN "account" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_failures" ADD COLUMN "account" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "account" text;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "account" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
-- Every run before accounts covered the one account there was.
UPDATE "sync_runs" SET "account" = 'default';
--> statement-breakpoint
-- Reporting shows each image's account. Replaced in place with the column added last, so a reporting
-- role keeps its right to read them.
CREATE OR REPLACE VIEW current_images AS
SELECT i.project_id, i.region_id, i.image_id,
  i.name, i.region, i.status, i.visibility, i.os_distro, i.os_version, i.os_type, i.disk_format, i.min_disk,
  i.min_ram, i.owner_project_id, i.image_region_id, i.created_at, i.updated_at, i.size, i.architecture,
  i.is_baremetal, i.creator_task_id, i.task_id, i.description, i.display_order, i.gpu_driver,
  i.gpu_driver_type, i.gpu_driver_version, i.hw_firmware_type, i.hw_machine_type, i.ssh_key, i.currency_code,
  i.price_per_hour, i.price_per_month, i.price_status,
  coalesce((SELECT jsonb_object_agg(t.key, t.value ORDER BY t.key) FROM image_tags t
    WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)), '{}'::jsonb) AS tags,
  v.id AS version_id, v.valid_from, i.account
FROM images i
JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
WHERE i.deleted_at IS NULL;
--> statement-breakpoint
CREATE OR REPLACE VIEW image_change_log AS
SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id, i.name AS image_name, i.region,
  c.change_type, c.field, c.old_value, c.new_value, c.version_id, i.account
FROM image_changes c
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)
ORDER BY c.changed_at DESC, c.id DESC;
--> statement-breakpoint
CREATE OR REPLACE VIEW stale_images AS
SELECT t.project_id, t.region_id, t.image_id, i.name AS image_name, t.schedule_key, i.last_seen_at,
  t.last_attempt_at, t.last_outcome, t.last_status,
  CASE WHEN t.last_outcome = 'failed' THEN 'last refresh failed: ' || coalesce(t.last_error, 'unknown error')
       WHEN i.last_seen_at IS NULL THEN 'never seen'
       ELSE 'not seen for ' || date_trunc('second', now() - i.last_seen_at)::text END AS reason,
  t.account
FROM targets t
LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id)
WHERE t.left_scope_at IS NULL
  AND (t.last_outcome = 'failed'
   OR (t.added_at < now() - make_interval(secs => 2 * t.interval_seconds)
       AND (i.last_seen_at IS NULL OR i.last_seen_at < now() - make_interval(secs => 2 * t.interval_seconds))
       AND i.deleted_at IS NULL));
--> statement-breakpoint
-- images_as_of returns the same columns as current_images, account last; a function's result type cannot
-- be replaced in place, so the rights a reporting role held on it are noted first and granted again after.
CREATE TEMP TABLE images_as_of_grants ON COMMIT DROP AS
  SELECT grantee FROM information_schema.routine_privileges
    WHERE routine_schema = 'public' AND routine_name = 'images_as_of' AND privilege_type = 'EXECUTE'
      AND grantee NOT IN (current_user, 'PUBLIC');
--> statement-breakpoint
DROP FUNCTION images_as_of(timestamptz);
--> statement-breakpoint
CREATE FUNCTION images_as_of(at timestamptz)
RETURNS TABLE (
  project_id integer, region_id integer, image_id text,
  name text, region text, status text, visibility text, os_distro text, os_version text, os_type text,
  disk_format text, min_disk bigint, min_ram bigint, owner_project_id bigint, image_region_id bigint,
  created_at timestamptz, updated_at timestamptz, size bigint, architecture text, is_baremetal boolean,
  creator_task_id text, task_id text, description text, display_order bigint, gpu_driver text,
  gpu_driver_type text, gpu_driver_version text, hw_firmware_type text, hw_machine_type text, ssh_key text,
  currency_code text, price_per_hour numeric, price_per_month numeric, price_status text,
  tags jsonb, version_id bigint, valid_from timestamptz, account text
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT i.project_id, i.region_id, i.image_id,
    s->>'name', s->>'region', s->>'status', s->>'visibility', s->>'os_distro', s->>'os_version', s->>'os_type',
    s->>'disk_format', (s->>'min_disk')::bigint, (s->>'min_ram')::bigint, (s->>'project_id')::bigint,
    (s->>'region_id')::bigint, api_timestamp(s->>'created_at'), api_timestamp(s->>'updated_at'),
    (s->>'size')::bigint, s->>'architecture', (s->>'is_baremetal')::boolean, s->>'creator_task_id',
    s->>'task_id', s->>'description', (s->>'display_order')::bigint, s->>'gpu_driver', s->>'gpu_driver_type',
    s->>'gpu_driver_version', s->>'hw_firmware_type', s->>'hw_machine_type', s->>'ssh_key',
    s->>'currency_code', (s->>'price_per_hour')::numeric, (s->>'price_per_month')::numeric, s->>'price_status',
    coalesce((SELECT jsonb_object_agg(e.key, e.value->'value' ORDER BY e.key) FROM jsonb_each(s->'tags') e), '{}'::jsonb),
    v.id, v.valid_from, i.account
  FROM images i
  CROSS JOIN LATERAL (
    SELECT w.id, w.state AS s, w.valid_from, w.valid_to FROM image_versions w
    WHERE (w.project_id, w.region_id, w.image_id) = (i.project_id, i.region_id, i.image_id) AND w.valid_from <= at
    ORDER BY w.valid_from DESC LIMIT 1) v
  WHERE v.valid_to IS NULL OR v.valid_to > at
$$;
--> statement-breakpoint
DO $$
DECLARE g record;
BEGIN
  FOR g IN SELECT * FROM images_as_of_grants LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION images_as_of(timestamptz) TO %I', g.grantee);
  END LOOP;
END $$;
