-- The current definition of images, a view since migration 0025 (before, the table now named image_rows).
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here (docs/database.md, "Recipes").
-- Every stored image, with the columns the table had. last_seen_at is when the image was last seen: the
-- later of its own last answer (image_rows.seen_at: a GET, a change, a first sighting) and the start of
-- the complete listing of its scope that finished last, when that listing returned it (its target is
-- not off_list) and it was a target of the scope by then. A listing that finds an image unchanged
-- writes nothing about it (issue 26): one latest_listings row stands for every image it saw.
-- Writable for the columns of image_rows (an automatically updatable view); last_seen_at and owned are
-- computed.
--
-- Whether an image belongs to the project it was asked of (true), or is public or shared to it (false): the
-- one rule, for every view that says it. An answer that names its owner project (an ordinary image's
-- project_id, the owner: the list also returns public images and images other projects share) is compared
-- with the project asked; a GPU image names no owner, and is the project's own unless it is public (an
-- assumption: the GPU lists return the project's images and the public ones).
CREATE OR REPLACE FUNCTION image_owned(project_id integer, owner_project_id bigint, visibility text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN owner_project_id IS NOT NULL THEN owner_project_id = project_id ELSE visibility IS DISTINCT FROM 'public' END
$$;
--> statement-breakpoint
CREATE OR REPLACE VIEW images AS
SELECT i.project_id, i.region_id, i.image_id, i.name, i.region, i.status, i.visibility, i.os_distro, i.os_version,
  i.os_type, i.disk_format, i.min_disk, i.min_ram, i.size, i.owner_project_id, i.image_region_id, i.architecture,
  i.is_baremetal, i.creator_task_id, i.task_id, i.description, i.display_order, i.gpu_driver, i.gpu_driver_type,
  i.gpu_driver_version, i.hw_firmware_type, i.hw_machine_type, i.ssh_key, i.currency_code, i.price_per_hour,
  i.price_per_month, i.price_status, i.created_at, i.updated_at, i.raw, i.content_hash, i.first_seen_at,
  greatest(i.seen_at, (
    SELECT l.started_at FROM targets t JOIN latest_listings l ON l.scope_key = t.scope_key
    WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)
      AND NOT t.off_list AND t.left_scope_at IS NULL AND t.added_at <= l.started_at)) AS last_seen_at,
  i.last_changed_at, i.deleted_at, i.account, i.kind, i.cuda_toolkit_version,
  image_owned(i.project_id, i.owner_project_id, i.visibility) AS owned
FROM image_rows i;
