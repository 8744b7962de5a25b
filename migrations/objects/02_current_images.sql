-- The current definition of current_images.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0001, 0010, 0015, which stay as they were.
-- Reporting: every tracked, live image with its kind (src/images/image-kinds.ts), its tags as one object and,
-- last, whether it is the project's own (image_owned, 00_images.sql) and GPU images' own field.
-- Its columns changed in place (kind after the triple), which CREATE OR REPLACE cannot do: dropped and
-- created (the migrator grants the rights again).
DROP VIEW IF EXISTS current_images;
CREATE VIEW current_images AS
SELECT i.project_id, i.region_id, i.image_id, i.kind,
  i.name, i.region, i.status, i.visibility, i.os_distro, i.os_version, i.os_type, i.disk_format, i.min_disk,
  i.min_ram, i.owner_project_id, i.image_region_id, i.created_at, i.updated_at, i.size, i.architecture,
  i.is_baremetal, i.creator_task_id, i.task_id, i.description, i.display_order, i.gpu_driver,
  i.gpu_driver_type, i.gpu_driver_version, i.hw_firmware_type, i.hw_machine_type, i.ssh_key, i.currency_code,
  i.price_per_hour, i.price_per_month, i.price_status,
  coalesce((SELECT jsonb_object_agg(t.key, t.value ORDER BY t.key) FROM image_tags t
    WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)), '{}'::jsonb) AS tags,
  v.id AS version_id, v.valid_from, i.account, i.owned, i.cuda_toolkit_version
FROM images i
JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
WHERE i.deleted_at IS NULL;
