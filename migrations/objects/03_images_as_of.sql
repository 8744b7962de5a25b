-- The current definitions of image_history and images_as_of.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). images_as_of was defined
-- before in migrations 0001, 0008, 0010, 0015, which stay as they were.
--
-- Reporting: every version of every tracked image, with the same columns as current_images and, last, when
-- the version stopped being the image's state (null while it is). Versions never overlap (09_version_overlap),
-- so at any moment an image has at most one version whose [valid_from, valid_to) holds it; an empty version
-- (valid_from = valid_to) holds no moment. `owned` and cuda_toolkit_version (appended after valid_to) are
-- the version's own: an image made public changes `owned`. It runs with its owner's rights, as views do. Every version belongs
-- to a stored image (image_versions_image_fk), whose kind and account are read by a subquery each rather than
-- a join: a query that reads neither (count(*) of images_as_of) then reads nothing but image_versions, and
-- can read it from an index alone (a join the planner removes still keeps it from an index-only scan).
CREATE OR REPLACE VIEW image_history AS
SELECT v.project_id, v.region_id, v.image_id,
  (SELECT i.kind FROM images i WHERE (i.project_id, i.region_id, i.image_id) = (v.project_id, v.region_id, v.image_id)) AS kind,
  v.state->>'name' AS name, v.state->>'region' AS region, v.state->>'status' AS status,
  v.state->>'visibility' AS visibility, v.state->>'os_distro' AS os_distro, v.state->>'os_version' AS os_version,
  v.state->>'os_type' AS os_type, v.state->>'disk_format' AS disk_format, (v.state->>'min_disk')::bigint AS min_disk,
  (v.state->>'min_ram')::bigint AS min_ram, (v.state->>'project_id')::bigint AS owner_project_id,
  (v.state->>'region_id')::bigint AS image_region_id, api_timestamp(v.state->>'created_at') AS created_at,
  api_timestamp(v.state->>'updated_at') AS updated_at, (v.state->>'size')::bigint AS size,
  v.state->>'architecture' AS architecture, (v.state->>'is_baremetal')::boolean AS is_baremetal,
  v.state->>'creator_task_id' AS creator_task_id, v.state->>'task_id' AS task_id, v.state->>'description' AS description,
  (v.state->>'display_order')::bigint AS display_order, v.state->>'gpu_driver' AS gpu_driver,
  v.state->>'gpu_driver_type' AS gpu_driver_type, v.state->>'gpu_driver_version' AS gpu_driver_version,
  v.state->>'hw_firmware_type' AS hw_firmware_type, v.state->>'hw_machine_type' AS hw_machine_type,
  v.state->>'ssh_key' AS ssh_key, v.state->>'currency_code' AS currency_code,
  (v.state->>'price_per_hour')::numeric AS price_per_hour, (v.state->>'price_per_month')::numeric AS price_per_month,
  v.state->>'price_status' AS price_status,
  coalesce((SELECT jsonb_object_agg(e.key, e.value->'value' ORDER BY e.key) FROM jsonb_each(v.state->'tags') e), '{}'::jsonb) AS tags,
  v.id AS version_id, v.valid_from,
  (SELECT i.account FROM images i WHERE (i.project_id, i.region_id, i.image_id) = (v.project_id, v.region_id, v.image_id)) AS account,
  v.valid_to,
  image_owned(v.project_id, (v.state->>'project_id')::bigint, v.state->>'visibility') AS owned,
  v.state->>'cuda_toolkit_version' AS cuda_toolkit_version
FROM image_versions v;
--> statement-breakpoint
-- A role granted images_as_of may read image_history, which it now reads with the caller's rights: a
-- reporting role granted before image_history existed keeps its reports working (the migrator grants again,
-- after this file, what was held on both). Not PUBLIC, whose EXECUTE on every function is Postgres's default.
DO $$
DECLARE
  grantee text;
BEGIN
  FOR grantee IN
    SELECT quote_ident(pg_get_userbyid(a.grantee))
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = to_regprocedure('images_as_of(timestamptz)') AND a.privilege_type = 'EXECUTE'
      AND a.grantee NOT IN (0, p.proowner)
  LOOP
    EXECUTE format('GRANT SELECT ON image_history TO %s', grantee);
  END LOOP;
END
$$;
--> statement-breakpoint
-- Reporting: every tracked image as it was at `at`, with the same columns as current_images: the version
-- whose [valid_from, valid_to) holds `at`. A SQL function the planner inlines into the query that calls it
-- (no SECURITY DEFINER, no SET): a count reads only the covering index image_versions_valid_from_idx, and a
-- filter on an image reaches its versions by their index, instead of every image's state being decoded and
-- materialized first (18 to 23 s at 1,000,000 images x 10 versions on a busy 2-core machine). It reads image_history
-- with the caller's rights. The kind is the image's (images.kind), not a versioned state. Its result type
-- changed (kind, then owned and cuda_toolkit_version) since migration 0015, which CREATE OR REPLACE cannot do: dropped and created (the migrator
-- grants the rights again).
DROP FUNCTION IF EXISTS images_as_of(timestamptz);
--> statement-breakpoint
CREATE FUNCTION images_as_of(at timestamptz)
RETURNS TABLE (
  project_id integer, region_id integer, image_id text, kind text,
  name text, region text, status text, visibility text, os_distro text, os_version text, os_type text,
  disk_format text, min_disk bigint, min_ram bigint, owner_project_id bigint, image_region_id bigint,
  created_at timestamptz, updated_at timestamptz, size bigint, architecture text, is_baremetal boolean,
  creator_task_id text, task_id text, description text, display_order bigint, gpu_driver text,
  gpu_driver_type text, gpu_driver_version text, hw_firmware_type text, hw_machine_type text, ssh_key text,
  currency_code text, price_per_hour numeric, price_per_month numeric, price_status text,
  tags jsonb, version_id bigint, valid_from timestamptz, account text, owned boolean, cuda_toolkit_version text
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT h.project_id, h.region_id, h.image_id, h.kind, h.name, h.region, h.status, h.visibility, h.os_distro,
    h.os_version, h.os_type, h.disk_format, h.min_disk, h.min_ram, h.owner_project_id, h.image_region_id,
    h.created_at, h.updated_at, h.size, h.architecture, h.is_baremetal, h.creator_task_id, h.task_id,
    h.description, h.display_order, h.gpu_driver, h.gpu_driver_type, h.gpu_driver_version, h.hw_firmware_type,
    h.hw_machine_type, h.ssh_key, h.currency_code, h.price_per_hour, h.price_per_month, h.price_status, h.tags,
    h.version_id, h.valid_from, h.account, h.owned, h.cuda_toolkit_version
  FROM public.image_history h
  WHERE h.valid_from <= at AND (h.valid_to IS NULL OR h.valid_to > at)
$$;
