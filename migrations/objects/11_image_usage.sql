-- The current definitions of who uses an image: image_usage, image_usage_status, unused_images,
-- image_usage_as_of and snapshot_usage, over image_usage_history (migration 0028; written by
-- src/sql/recordUsage.ts) and usage_coverage.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here (docs/database.md, "Recipes").
--
-- Reporting: every current consumer of an image, as the last complete usage listing of its project and
-- region saw it: an instance (named by the attachment of a volume made from the image), a volume made from
-- the image that is attached to nothing, a GPU cluster built from it, a snapshot of a volume made from it.
-- The image need not be stored: a volume may name an image its project does not list.
CREATE OR REPLACE VIEW image_usage AS
SELECT project_id, region_id, image_id, consumer_kind, consumer_id, consumer_name, valid_from
FROM image_usage_history
WHERE valid_to IS NULL;
--> statement-breakpoint
-- Reporting: every live image with whether anything uses it. 'in use' when a consumer is current; 'unused'
-- only where every consumer an image of its kind can have is listed: an ordinary, private image its answer
-- says is not bare metal (a virtual machine boots from a volume made from its image, and volumes are listed)
-- of a project and region with a complete usage listing, whose usage the latest listing of a scope that
-- lists usage lists; otherwise 'unknown', with the reason. An
-- image called unused that is in use is the outage this exists to prevent, so every doubt is 'unknown'.
-- unused_since: the end of its last use, or the start of its project and region's first complete usage
-- listing if nothing used it since, and never before the image was created (as the API says; else first seen).
CREATE OR REPLACE VIEW image_usage_status AS
SELECT i.project_id, i.region_id, i.image_id, i.kind, i.name, i.visibility, i.is_baremetal, u.consumers,
  CASE WHEN u.consumers > 0 THEN 'in use' WHEN why.reason IS NOT NULL THEN 'unknown' ELSE 'unused' END AS usage_status,
  CASE WHEN u.consumers = 0 AND why.reason IS NULL
    THEN greatest(coalesce(u.last_used, c.first_listed_at), coalesce(i.created_at, i.first_seen_at)) END AS unused_since,
  why.reason AS usage_unknown_because, c.listed_at AS usage_listed_at, i.account
FROM images i
LEFT JOIN usage_coverage c ON (c.project_id, c.region_id) = (i.project_id, i.region_id)
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE h.valid_to IS NULL)::int AS consumers, max(h.valid_to) AS last_used
  FROM image_usage_history h WHERE (h.project_id, h.region_id, h.image_id) = (i.project_id, i.region_id, i.image_id)) u
CROSS JOIN LATERAL (
  SELECT CASE
    WHEN i.kind <> 'ordinary' THEN 'what uses an image of kind ' || i.kind || ' is not listed'
    WHEN i.is_baremetal IS NULL THEN 'whether it is a bare-metal image is not said'
    WHEN i.is_baremetal THEN 'bare-metal servers are not listed'
    WHEN i.visibility IS DISTINCT FROM 'private' THEN 'a ' || coalesce(i.visibility, 'null') || ' image may be used by projects not listed'
    WHEN EXISTS (SELECT 1 FROM targets t JOIN scopes s ON s.key = t.scope_key
      WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id) AND t.left_scope_at IS NULL
        AND s.definition->'filters'->'usage' = 'false'::jsonb) THEN 'its scope lists no usage (usage: false)'
    -- A usage listing is only as current as the scopes that make it: where no configured scope that lists usage
    -- listed this project and region's in its latest listing (the scope moved, was removed or turned usage off),
    -- the last one says nothing of today's consumers.
    WHEN NOT EXISTS (SELECT 1 FROM scopes s JOIN latest_listings l ON l.scope_key = s.key
      JOIN usage_listings u ON u.listing_id = l.listing_id AND (u.project_id, u.region_id) = (i.project_id, i.region_id)
      WHERE s.definition->'filters'->'usage' IS DISTINCT FROM 'false'::jsonb)
      THEN 'no scope listing usage covers it'
    WHEN c.listed_at IS NULL THEN 'no complete usage listing of its project and region yet'
  END AS reason) why
WHERE i.deleted_at IS NULL;
--> statement-breakpoint
-- Reporting: the live images nothing uses, where that is known (image_usage_status), and for how long.
CREATE OR REPLACE VIEW unused_images AS
SELECT project_id, region_id, image_id, kind, name, unused_since, now() - unused_since AS unused_for, usage_listed_at, account
FROM image_usage_status
WHERE usage_status = 'unused';
--> statement-breakpoint
-- The consumers of every image at instant t: the usage intervals that held it. Runs with its owner's rights,
-- as images_as_of does, so a read-only reporting role can call it.
CREATE OR REPLACE FUNCTION image_usage_as_of(t timestamptz)
RETURNS TABLE (project_id integer, region_id integer, image_id text, consumer_kind text, consumer_id text,
  consumer_name text, valid_from timestamptz, valid_to timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT h.project_id, h.region_id, h.image_id, h.consumer_kind, h.consumer_id, h.consumer_name, h.valid_from, h.valid_to
  FROM image_usage_history h
  WHERE h.valid_from <= t AND (h.valid_to IS NULL OR h.valid_to > t)
  ORDER BY 1, 2, 3, 4, 5
$$;
--> statement-breakpoint
-- The consumers in force when audit snapshot s was taken, as it recorded them.
CREATE OR REPLACE FUNCTION snapshot_usage(s bigint)
RETURNS TABLE (project_id integer, region_id integer, image_id text, consumer_kind text, consumer_id text, consumer_name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT h.project_id, h.region_id, h.image_id, h.consumer_kind, h.consumer_id, h.consumer_name
  FROM audit_snapshot_usage a JOIN image_usage_history h ON h.id = a.usage_id
  WHERE a.snapshot_id = s
  ORDER BY 1, 2, 3, 4, 5
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshot_usage_immutable BEFORE UPDATE OR DELETE ON audit_snapshot_usage
FOR EACH ROW EXECUTE FUNCTION refuse_snapshot_change();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER audit_snapshot_usage_no_truncate BEFORE TRUNCATE ON audit_snapshot_usage
FOR EACH STATEMENT EXECUTE FUNCTION refuse_snapshot_change();
--> statement-breakpoint
-- The in-use alert of a change (docs/reporting.md, "in_use_alert"): for a deletion, or a change of visibility
-- or ssh_key, of an image that consumers used when it changed (the usage intervals that held that instant),
-- the event, how many consumers, and up to five of them; null for any other change, or an image nothing used.
CREATE OR REPLACE FUNCTION in_use_alert(p integer, r integer, i text, change_type text, field text, at timestamptz)
RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT CASE WHEN count(*) > 0 THEN jsonb_build_object(
    'event', CASE WHEN change_type = 'deleted' THEN 'deleted_in_use' ELSE field || '_changed_in_use' END,
    'consumers', count(*),
    'examples', (array_agg(jsonb_build_object('kind', h.consumer_kind, 'id', h.consumer_id, 'name', h.consumer_name)
      ORDER BY h.consumer_kind, h.consumer_id))[1:5]) END
  FROM image_usage_history h
  WHERE (change_type = 'deleted' OR (change_type = 'updated' AND field IN ('visibility', 'ssh_key')))
    AND (h.project_id, h.region_id, h.image_id) = (p, r, i) AND h.valid_from <= at AND (h.valid_to IS NULL OR h.valid_to > at)
$$;
--> statement-breakpoint
-- Who may read audit_snapshots (a reporting role; current_images is dropped and made again before this file)
-- may read who uses the images: a reporting role granted before these existed
-- reads them too (the migrator grants again, after this file, what was held on each). The functions run with
-- their owner's rights, so they are not PUBLIC's, Postgres's default for a function.
REVOKE EXECUTE ON FUNCTION image_usage_as_of(timestamptz), snapshot_usage(bigint),
  in_use_alert(integer, integer, text, text, text, timestamptz) FROM PUBLIC;
--> statement-breakpoint
DO $$
DECLARE
  grantee text;
BEGIN
  FOR grantee IN
    SELECT quote_ident(pg_get_userbyid(a.grantee))
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = to_regclass('audit_snapshots') AND a.privilege_type = 'SELECT' AND a.grantee NOT IN (0, c.relowner)
  LOOP
    EXECUTE format('GRANT SELECT ON image_usage, image_usage_history, image_usage_status, unused_images TO %s', grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION image_usage_as_of(timestamptz), snapshot_usage(bigint), '
      'in_use_alert(integer, integer, text, text, text, timestamptz) TO %s', grantee);
  END LOOP;
END
$$;
