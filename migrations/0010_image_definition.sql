-- One definition of an image (src/image-fields.ts): integer columns become bigint (the contract
-- bounds none), and the reporting views carry every typed column. The views and images_as_of are
-- recreated, so the rights a reporting role held on them are noted first and granted again after.
CREATE TEMP TABLE reporting_grants ON COMMIT DROP AS
  SELECT grantee, 'current_images' AS object FROM information_schema.role_table_grants
    WHERE table_schema = 'public' AND table_name = 'current_images' AND privilege_type = 'SELECT' AND grantee <> current_user
  UNION
  SELECT grantee, 'images_as_of' FROM information_schema.routine_privileges
    WHERE routine_schema = 'public' AND routine_name = 'images_as_of' AND privilege_type = 'EXECUTE'
      AND grantee NOT IN (current_user, 'PUBLIC');
--> statement-breakpoint
DROP VIEW current_images;
--> statement-breakpoint
DROP FUNCTION images_as_of(timestamptz);
--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "min_disk" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "min_ram" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "owner_project_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "image_region_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "display_order" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "image_changes" ADD CONSTRAINT "image_changes_change_type_check" CHECK ("image_changes"."change_type" IN ('created', 'updated', 'deleted', 'restored'));--> statement-breakpoint
ALTER TABLE "image_changes" ADD CONSTRAINT "image_changes_field_check" CHECK (("image_changes"."change_type" = 'updated') = ("image_changes"."field" IS NOT NULL));--> statement-breakpoint
ALTER TABLE "sync_runs" ADD CONSTRAINT "sync_runs_kind_check" CHECK ("sync_runs"."kind" IN ('scheduled', 'manual'));--> statement-breakpoint
ALTER TABLE "sync_runs" ADD CONSTRAINT "sync_runs_status_check" CHECK ("sync_runs"."status" IN ('running', 'finished', 'superseded'));--> statement-breakpoint
ALTER TABLE "sync_runs" ADD CONSTRAINT "sync_runs_finished_check" CHECK (("sync_runs"."status" = 'running') = ("sync_runs"."finished_at" IS NULL));--> statement-breakpoint
ALTER TABLE "targets" ADD CONSTRAINT "targets_last_outcome_check" CHECK ("targets"."last_outcome" IN ('unchanged', 'changed', 'deleted', 'failed'));
--> statement-breakpoint
-- An API date as the history keeps it (ISO, UTC) into timestamptz: ISO year 0000 is 1 BC and -0001
-- is 2 BC, which Postgres reads only written so (as src/api-date.ts writes them for the columns).
CREATE FUNCTION api_timestamp(t text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN t LIKE '-%' OR t LIKE '0000-%'
    THEN (lpad((1 - substring(t FROM '^(-?[0-9]+)-')::int)::text, 4, '0')
      || regexp_replace(t, '^-?[0-9]+(-.*)Z$', '\1') || '+00 BC')::timestamptz
    ELSE t::timestamptz END
$$;
--> statement-breakpoint
-- Reporting: every tracked, live image with its tags as one object.
CREATE VIEW current_images AS
SELECT i.project_id, i.region_id, i.image_id,
  i.name, i.region, i.status, i.visibility, i.os_distro, i.os_version, i.os_type, i.disk_format, i.min_disk,
  i.min_ram, i.owner_project_id, i.image_region_id, i.created_at, i.updated_at, i.size, i.architecture,
  i.is_baremetal, i.creator_task_id, i.task_id, i.description, i.display_order, i.gpu_driver,
  i.gpu_driver_type, i.gpu_driver_version, i.hw_firmware_type, i.hw_machine_type, i.ssh_key, i.currency_code,
  i.price_per_hour, i.price_per_month, i.price_status,
  coalesce((SELECT jsonb_object_agg(t.key, t.value ORDER BY t.key) FROM image_tags t
    WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)), '{}'::jsonb) AS tags,
  v.id AS version_id, v.valid_from
FROM images i
JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
WHERE i.deleted_at IS NULL;
--> statement-breakpoint
-- Reporting: every tracked image as it was at `at` (same columns as current_images), from the
-- version in force then: one index probe per image. It runs with its owner's rights, so a read-only
-- reporting role can call it without any right on the tables behind it.
CREATE FUNCTION images_as_of(at timestamptz)
RETURNS TABLE (
  project_id integer, region_id integer, image_id text,
  name text, region text, status text, visibility text, os_distro text, os_version text, os_type text,
  disk_format text, min_disk bigint, min_ram bigint, owner_project_id bigint, image_region_id bigint,
  created_at timestamptz, updated_at timestamptz, size bigint, architecture text, is_baremetal boolean,
  creator_task_id text, task_id text, description text, display_order bigint, gpu_driver text,
  gpu_driver_type text, gpu_driver_version text, hw_firmware_type text, hw_machine_type text, ssh_key text,
  currency_code text, price_per_hour numeric, price_per_month numeric, price_status text,
  tags jsonb, version_id bigint, valid_from timestamptz
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
    v.id, v.valid_from
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
  FOR g IN SELECT * FROM reporting_grants LOOP
    IF g.object = 'current_images' THEN
      EXECUTE format('GRANT SELECT ON current_images TO %I', g.grantee);
    ELSE
      EXECUTE format('GRANT EXECUTE ON FUNCTION images_as_of(timestamptz) TO %I', g.grantee);
    END IF;
  END LOOP;
END $$;
