-- The current definition of images_as_of.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0001, 0008, 0010, 0015, which stay as they were.
-- Reporting: every tracked image as it was at `at`, with the same columns as current_images. It runs with its
-- owner's rights, so a read-only reporting role can call it without any right on the tables behind it.
-- The kind is the image's (images.kind), not a versioned state. Its result type changed (kind), which
-- CREATE OR REPLACE cannot do: dropped and created (the migrator grants the rights again).
DROP FUNCTION IF EXISTS images_as_of(timestamptz);
CREATE FUNCTION images_as_of(at timestamptz)
RETURNS TABLE (
  project_id integer, region_id integer, image_id text, kind text,
  name text, region text, status text, visibility text, os_distro text, os_version text, os_type text,
  disk_format text, min_disk bigint, min_ram bigint, owner_project_id bigint, image_region_id bigint,
  created_at timestamptz, updated_at timestamptz, size bigint, architecture text, is_baremetal boolean,
  creator_task_id text, task_id text, description text, display_order bigint, gpu_driver text,
  gpu_driver_type text, gpu_driver_version text, hw_firmware_type text, hw_machine_type text, ssh_key text,
  currency_code text, price_per_hour numeric, price_per_month numeric, price_status text,
  tags jsonb, version_id bigint, valid_from timestamptz, account text
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT i.project_id, i.region_id, i.image_id, i.kind,
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
