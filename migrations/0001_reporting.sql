-- Reporting: every tracked, live image with its tags as one object.
CREATE VIEW current_images AS
SELECT i.project_id, i.region_id, i.image_id,
  i.name, i.status, i.visibility, i.region, i.os_distro, i.os_version, i.os_type, i.architecture,
  i.disk_format, i.size, i.min_disk, i.min_ram, i.owner_project_id, i.image_region_id,
  i.is_baremetal, i.gpu_driver, i.gpu_driver_type, i.gpu_driver_version,
  i.hw_firmware_type, i.hw_machine_type, i.ssh_key, i.description, i.created_at, i.updated_at,
  coalesce((SELECT jsonb_object_agg(t.key, t.value ORDER BY t.key) FROM image_tags t
    WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)), '{}'::jsonb) AS tags,
  v.id AS version_id, v.valid_from
FROM images i
JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
WHERE i.deleted_at IS NULL;
--> statement-breakpoint
-- Reporting: every tracked image as it was at `at` (same columns as current_images),
-- from the version in force then: one index probe per image.
CREATE FUNCTION images_as_of(at timestamptz)
RETURNS TABLE (
  project_id integer, region_id integer, image_id text,
  name text, status text, visibility text, region text, os_distro text, os_version text, os_type text, architecture text,
  disk_format text, size bigint, min_disk integer, min_ram integer, owner_project_id integer, image_region_id integer,
  is_baremetal boolean, gpu_driver text, gpu_driver_type text, gpu_driver_version text,
  hw_firmware_type text, hw_machine_type text, ssh_key text, description text, created_at timestamptz, updated_at timestamptz,
  tags jsonb, version_id bigint, valid_from timestamptz
)
LANGUAGE sql STABLE AS $$
  SELECT i.project_id, i.region_id, i.image_id,
    s->>'name', s->>'status', s->>'visibility', s->>'region', s->>'os_distro', s->>'os_version', s->>'os_type', s->>'architecture',
    s->>'disk_format', (s->>'size')::bigint, (s->>'min_disk')::integer, (s->>'min_ram')::integer,
    (s->>'project_id')::integer, (s->>'region_id')::integer,
    (s->>'is_baremetal')::boolean, s->>'gpu_driver', s->>'gpu_driver_type', s->>'gpu_driver_version',
    s->>'hw_firmware_type', s->>'hw_machine_type', s->>'ssh_key', s->>'description',
    (s->>'created_at')::timestamptz, (s->>'updated_at')::timestamptz,
    coalesce((SELECT jsonb_object_agg(e.key, e.value->'value' ORDER BY e.key) FROM jsonb_each(s->'tags') e), '{}'::jsonb),
    v.id, v.valid_from
  FROM images i
  CROSS JOIN LATERAL (
    SELECT w.id, w.state AS s, w.valid_from, w.valid_to FROM image_versions w
    WHERE (w.project_id, w.region_id, w.image_id) = (i.project_id, i.region_id, i.image_id) AND w.valid_from <= at
    ORDER BY w.valid_from DESC LIMIT 1) v
  WHERE v.valid_to IS NULL OR v.valid_to > at
$$;
