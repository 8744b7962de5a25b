// The web view's benchmark inventory, written straight into the tables by bulk SQL (through the API a
// million images take minutes of syncing): live images spread over accounts, projects, regions, kinds,
// distros and owners, with names of several shapes, tags on some, some deleted lately, who uses some;
// the scopes, listing and usage coverage that say which are unused; and one image with a long history,
// its versions each made by one to three field changes that an audit-log entry attributes.
import { createHash } from 'node:crypto';
import type { Sql } from 'postgres';
import { observe } from '../src/images/observe.js';
import { sampleImage } from '../src/fake-gcore/fixtures.js';
import type { Triple } from '../src/interfaces.js';

export interface UiInventory {
  /** Images, live and deleted, besides the one with the long history. */
  images: number;
  /** Versions of the one image with a long history. */
  versions: number;
}

const PROJECTS = 40;
const REGIONS = 8;
const ACCOUNTS = ['prod', 'staging', 'dev', 'partner'];
/** One image in this many is deleted, within the last DELETED_DAYS days. */
const DELETED_EVERY = 50;
const DELETED_DAYS = 30;
/** One image in this many carries RARE_WORD in its name. */
const RARE_EVERY = 50_000;
export const RARE_WORD = 'fips140';

/** The image with the long history: project 1, region 1. */
export const TIMELINE: Triple = { projectId: 1, regionId: 1, imageId: '7a1e11ee-0000-4000-8000-000000000001' };

/** The id bulk image n gets: UUID-shaped, md5('img' || n) as seedBulk writes it. */
export function bulkImageId(n: number): string {
  const h = createHash('md5').update(`img${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An SQL array of text literals, parenthesized so it can be subscripted. */
const sqlArray = (values: string[]) => `(ARRAY[${values.map((v) => `'${v}'`).join(', ')}])`;

/** The stored state and raw document of the fixtures' sample image: every bulk row's starts as these. */
function templates(): { state: string; raw: string } {
  const { snapshot, raw } = observe('bench', TIMELINE, sampleImage(TIMELINE), new Date());
  const literal = (value: unknown) => JSON.stringify(value).replace(/'/g, "''");
  return { state: literal(snapshot), raw: literal(raw) };
}

/**
 * Triggers are off while the bulk rows are written (session_replication_role), as in history.ts: a million
 * change notifications would be nobody's, and a row at a time the foreign keys' checks take minutes. The
 * rows keep every rule the triggers check (one version each, closed when deleted; each change names its
 * version), and checkBulkRules counts any that would not.
 */
async function seedBulk(sql: Sql, images: number): Promise<void> {
  const { state, raw } = templates();
  const distros = ['ubuntu', 'debian', 'centos', 'rocky', 'almalinux', 'windows', 'fedora', 'opensuse'];
  const distroVersions = ['22.04', '12', '7', '9', '8', '2022', '40', '15.5'];
  const purposes = ['web', 'db', 'k8s-node', 'gpu-train', 'ci-runner', 'base', 'golden', 'hardened'];
  const purposes2 = ['bastion', 'cache', 'etl', 'jupyter', 'vpn', 'mail', 'monitoring', 'build'];
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx.unsafe(`
      WITH n AS (
        SELECT n, md5('img' || n) AS h, 1 + n % ${PROJECTS} AS p, 1 + (n / ${PROJECTS}) % ${REGIONS} AS r FROM generate_series(1, ${images}) n),
      b AS (
        SELECT n, h, p, r, h::uuid::text AS id,
          get_byte(decode(h, 'hex'), 0) % 8 AS d, get_byte(decode(h, 'hex'), 1) % 16 AS u, get_byte(decode(h, 'hex'), 2) % 4 AS shape,
          get_byte(decode(h, 'hex'), 3) % 10 AS whose,
          CASE WHEN n % 100 < 2 THEN 'gpu_virtual' WHEN n % 100 = 2 THEN 'gpu_baremetal' ELSE 'ordinary' END AS kind,
          now() - interval '31 days' - ((n::bigint * 7919) % (700 * 1440)) * interval '1 minute' AS seen_first,
          CASE WHEN n % ${DELETED_EVERY} = 17 THEN now() - ((n::bigint * 31) % (${DELETED_DAYS} * 1440)) * interval '1 minute' END AS gone
        FROM n),
      c AS (
        SELECT b.*, (${sqlArray(distros)})[1 + d] AS distro, (${sqlArray(distroVersions)})[1 + d] AS os_version,
          (${sqlArray([...purposes, ...purposes2])})[1 + u] AS purpose, ${sqlArray(ACCOUNTS)}[1 + p % ${ACCOUNTS.length}] AS account,
          CASE WHEN whose < 7 OR kind <> 'ordinary' THEN 'private' WHEN whose = 7 THEN 'shared' ELSE 'public' END AS visibility
        FROM b),
      s AS (
        SELECT c.*,
          CASE shape
            WHEN 0 THEN distro || '-' || os_version || '-' || purpose || '-' || to_char(seen_first, 'YYYYMMDD') || '-' || substr(h, 5, 4)
            WHEN 1 THEN purpose || '-' || distro || os_version || '-v' || (n % 97)
            WHEN 2 THEN 'team-' || (ARRAY['platform', 'data', 'ml', 'web', 'security'])[1 + n % 5] || '-' || purpose || '-' || substr(h, 9, 6)
            ELSE initcap(purpose) || ' ' || initcap(distro) || ' ' || os_version || ' (' || substr(h, 15, 4) || ')'
          END || CASE WHEN n % ${RARE_EVERY} = 7 THEN '-${RARE_WORD}' ELSE '' END AS name,
          CASE WHEN n % 10 < 3 THEN jsonb_build_object('team', jsonb_build_object('value', (ARRAY['platform', 'data', 'ml'])[1 + n % 10],
            'read_only', false)) ELSE '{}' END
          || CASE WHEN n % 10 < 2 THEN jsonb_build_object('env', jsonb_build_object('value', (ARRAY['prod', 'staging', 'dev'])[1 + n % 3],
            'read_only', false)) ELSE '{}' END
          || CASE WHEN n % 10 = 0 THEN jsonb_build_object('cost-center', jsonb_build_object('value', 'cc-' || (n / 10) % 200,
            'read_only', true)) ELSE '{}' END AS tags
        FROM c),
      doc AS (
        SELECT s.*, CASE WHEN visibility = 'private' THEN p WHEN visibility = 'shared' THEN 1000 + p ELSE 1 END AS owner,
          coalesce(gone, seen_first) AS changed
        FROM s),
      stored AS (
        INSERT INTO image_rows (project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
          disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, architecture, is_baremetal, creator_task_id,
          hw_firmware_type, hw_machine_type, ssh_key, created_at, updated_at, raw, content_hash, first_seen_at, seen_at,
          last_changed_at, deleted_at, account, kind)
        SELECT p, r, id, name, CASE WHEN kind = 'ordinary' THEN 'Region-' || r END, 'active', visibility, distro, os_version,
          CASE WHEN distro = 'windows' THEN 'windows' ELSE 'linux' END, 'qcow2', 5 + n % 40, 1024, 2361393152 + n,
          CASE WHEN kind = 'ordinary' THEN owner END, CASE WHEN kind = 'ordinary' THEN r END, 'x86_64', n % 50 = 3, md5(h),
          'uefi', 'q35', 'allow', seen_first - interval '1 day', seen_first - interval '1 hour',
          '${raw}'::jsonb || jsonb_build_object('id', id, 'name', name, 'region', 'Region-' || r, 'project_id', owner, 'region_id', r,
            'os_distro', distro, 'os_version', os_version, 'visibility', visibility),
          md5(h || 'state'), seen_first, now() - interval '10 minutes', changed, gone, account, kind
        FROM doc),
      versions AS (
        INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
        SELECT p, r, id, seen_first, gone, md5(h || 'state'),
          '${state}'::jsonb || jsonb_build_object('id', id, 'name', name, 'region', 'Region-' || r, 'project_id', owner, 'region_id', r,
            'os_distro', distro, 'os_version', os_version, 'visibility', visibility, 'tags', tags)
        FROM doc
        RETURNING id AS version_id, project_id, region_id, image_id, valid_from, valid_to, state),
      tagged AS (
        INSERT INTO image_tags (project_id, region_id, image_id, key, value, read_only)
        SELECT p, r, id, t.key, t.value->>'value', (t.value->>'read_only')::boolean FROM doc, jsonb_each(tags) t WHERE gone IS NULL),
      targeted AS (
        INSERT INTO targets (project_id, region_id, image_id, account, schedule_key, explicit, scope_key, kind, added_at,
          last_attempt_at, last_outcome)
        SELECT p, r, id, account, 'hourly', false, 'scope-' || p, kind, seen_first, now() - interval '10 minutes',
          CASE WHEN gone IS NULL THEN 'unchanged' ELSE 'deleted' END
        FROM doc),
      used AS (
        INSERT INTO image_usage_history (project_id, region_id, image_id, consumer_kind, consumer_id, consumer_name, valid_from, valid_to)
        SELECT p, r, id, CASE WHEN n % 2 = 0 THEN 'instance' ELSE 'volume' END, md5(h || 'consumer')::uuid::text, 'vm-' || n,
          seen_first + interval '1 day', CASE WHEN n % 3 = 1 THEN now() - interval '3 days' END
        FROM doc WHERE gone IS NULL AND n % 3 < 2)
      INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at,
        observed_before)
      SELECT project_id, region_id, image_id, version_id, 'created', NULL::text, NULL::jsonb, NULL::jsonb, valid_from, NULL::timestamptz
      FROM versions
      UNION ALL
      SELECT project_id, region_id, image_id, version_id, 'deleted', NULL, state, NULL, valid_to, valid_to - interval '1 hour'
      FROM versions WHERE valid_to IS NOT NULL`);
  });
}

/** Counts of bulk rows that break a rule the triggers would have checked; throws unless all are zero. */
async function checkBulkRules(sql: Sql): Promise<void> {
  const [broken] = await sql<Array<{ orphan_versions: number; orphan_changes: number; overlapping: number }>>`
    SELECT
      (SELECT count(*) FROM image_versions v WHERE NOT EXISTS (SELECT 1 FROM image_rows i
        WHERE (i.project_id, i.region_id, i.image_id) = (v.project_id, v.region_id, v.image_id)))::int AS orphan_versions,
      (SELECT count(*) FROM image_changes c WHERE NOT EXISTS (SELECT 1 FROM image_versions v
        WHERE (v.id, v.project_id, v.region_id, v.image_id) = (c.version_id, c.project_id, c.region_id, c.image_id)))::int AS orphan_changes,
      (SELECT count(*) FROM (SELECT project_id, region_id, image_id FROM image_versions GROUP BY 1, 2, 3 HAVING count(*) > 1) x)::int
        AS overlapping`;
  if (broken!.orphan_versions + broken!.orphan_changes + broken!.overlapping > 0)
    throw new Error(`the seeded rows break the schema's rules: ${JSON.stringify(broken)}`);
}

/**
 * One scope, listing and usage coverage per project (its regions all listed, usage included), in a
 * finished run: what image_usage_status needs to call an image unused, and what last_seen_at reads.
 */
async function seedScopes(sql: Sql): Promise<void> {
  await sql.unsafe(`
    INSERT INTO sync_runs (kind, trigger, status, started_at, finished_at, planned)
    VALUES ('scheduled', 'bench-ui', 'finished', now() - interval '1 hour', now() - interval '50 minutes', 0);
    INSERT INTO scopes (key, account, definition, schedule_key, interval_seconds, name)
    SELECT 'scope-' || p, ${sqlArray(ACCOUNTS)}[1 + p % ${ACCOUNTS.length}],
      jsonb_build_object('projects', jsonb_build_array(p), 'regions', to_jsonb(ARRAY(SELECT generate_series(1, ${REGIONS})))),
      'hourly', 3600, 'project ' || p
    FROM generate_series(1, ${PROJECTS}) p;
    INSERT INTO listings (run_id, scope_key, account, status, started_at, finished_at, expected, listed, absent)
    SELECT (SELECT id FROM sync_runs WHERE trigger = 'bench-ui'), key, account, 'complete', now() - interval '1 hour',
      now() - interval '55 minutes', 0, 0, 0
    FROM scopes;
    INSERT INTO latest_listings (scope_key, listing_id, started_at) SELECT scope_key, id, started_at FROM listings;
    INSERT INTO usage_listings (listing_id, project_id, region_id, started_at, status, requests, consumers, opened, closed)
    SELECT l.id, substr(l.scope_key, 7)::int, r, l.started_at, 'complete', 4, 0, 0, 0
    FROM listings l, generate_series(1, ${REGIONS}) r;
    INSERT INTO usage_coverage (project_id, region_id, first_listed_at, listed_at)
    SELECT p, r, now() - interval '60 days', now() - interval '1 hour' FROM generate_series(1, ${PROJECTS}) p, generate_series(1, ${REGIONS}) r;`);
}

/** The state of version v (1-based) of the timeline's image: its description, build tag and minimum disk move as v does. */
const timelineState = (state: string) => `'${state}'::jsonb || jsonb_build_object('id', '${TIMELINE.imageId}', 'name', 'timeline-image',
  'description', 'build ' || v, 'min_disk', 5 + v / 3,
  'tags', jsonb_build_object('team', jsonb_build_object('value', 'platform', 'read_only', false),
    'build', jsonb_build_object('value', (v / 2 * 2)::text, 'read_only', false)))`;

/**
 * The image with `versions` versions, an hour apart, with the triggers on: each later version made by
 * one to three field changes (description always, the build tag every second, min_disk every third),
 * each attributed to an audit-log entry ten minutes before it was seen, by one of seven people.
 */
async function seedTimeline(sql: Sql, versions: number): Promise<void> {
  const { state, raw } = templates();
  const { projectId: p, regionId: r, imageId: id } = TIMELINE;
  const from = (v: string) => `now() - interval '1 hour' * (${versions} - (${v}) + 1)`;
  await sql.begin(async (tx) => {
    await tx.unsafe(`
      INSERT INTO image_rows (project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, architecture, is_baremetal, created_at, updated_at,
        raw, content_hash, first_seen_at, seen_at, last_changed_at, account, kind, description)
      VALUES (${p}, ${r}, '${id}', 'timeline-image', 'Region-1', 'active', 'private', 'ubuntu', '22.04', 'linux', 'qcow2',
        ${5 + Math.floor(versions / 3)}, 1024, 2361393152, ${p}, ${r}, 'x86_64', false, ${from('1')} - interval '1 day', ${from(String(versions))},
        '${raw}'::jsonb || jsonb_build_object('name', 'timeline-image', 'description', 'build ${versions}'), 'timeline-${versions}',
        ${from('1')}, now() - interval '10 minutes', ${from(String(versions))}, '${ACCOUNTS[p % ACCOUNTS.length]}',
        'ordinary', 'build ${versions}');
      INSERT INTO targets (project_id, region_id, image_id, account, schedule_key, explicit, scope_key, added_at)
      SELECT project_id, region_id, image_id, account, 'hourly', false, 'scope-${p}', first_seen_at FROM image_rows
      WHERE (project_id, region_id, image_id) = (${p}, ${r}, '${id}');
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
      SELECT ${p}, ${r}, '${id}', ${from('v')}, CASE WHEN v < ${versions} THEN ${from('v + 1')} END, 'timeline-' || v, ${timelineState(state)}
      FROM generate_series(1, ${versions}) v;
      INSERT INTO image_actions (action_id, accounts, acted_at, api_group, action_type, email, user_id, source_user_ip, project_id,
        region_id, image_id, is_complete, raw)
      SELECT 'timeline-action-' || v, ARRAY['staging'], valid_from - interval '10 minutes', 'image',
        CASE WHEN v = 1 THEN 'create' ELSE 'update' END, 'person' || v % 7 || '@example.com', 100 + v % 7, '10.0.0.' || v % 7,
        ${p}, ${r}, '${id}', true, '{}'
      FROM (SELECT valid_from, row_number() OVER (ORDER BY valid_from) AS v FROM image_versions
        WHERE (project_id, region_id, image_id) = (${p}, ${r}, '${id}')) x;
      INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at,
        observed_before)
      SELECT ${p}, ${r}, '${id}', id, change_type, field, old_value, new_value, valid_from,
        CASE WHEN v > 1 THEN valid_from - interval '30 minutes' END
      FROM (SELECT id, valid_from, row_number() OVER (ORDER BY valid_from)::int AS v FROM image_versions
        WHERE (project_id, region_id, image_id) = (${p}, ${r}, '${id}')) x
      CROSS JOIN LATERAL (VALUES
        (CASE WHEN v = 1 THEN 'created' END, NULL, NULL::jsonb, NULL::jsonb),
        (CASE WHEN v > 1 THEN 'updated' END, 'description', to_jsonb('build ' || v - 1), to_jsonb('build ' || v)),
        (CASE WHEN v > 1 AND v % 2 = 0 THEN 'updated' END, 'tags.build', jsonb_build_object('value', (v - 2)::text, 'read_only', false),
          jsonb_build_object('value', v::text, 'read_only', false)),
        (CASE WHEN v > 1 AND v % 3 = 0 THEN 'updated' END, 'min_disk', to_jsonb(4 + v / 3), to_jsonb(5 + v / 3))
      ) change (change_type, field, old_value, new_value)
      WHERE change_type IS NOT NULL;
      INSERT INTO image_tags (project_id, region_id, image_id, key, value, read_only)
      VALUES (${p}, ${r}, '${id}', 'team', 'platform', false), (${p}, ${r}, '${id}', 'build', '${Math.floor(versions / 2) * 2}', false);`);
  });
}

/** Seeds `inventory` and returns how long it took, VACUUM ANALYZE included. */
export async function seedUiInventory(sql: Sql, inventory: UiInventory): Promise<number> {
  const started = performance.now();
  await seedScopes(sql);
  await seedBulk(sql, inventory.images);
  await checkBulkRules(sql);
  await seedTimeline(sql, inventory.versions);
  await sql`VACUUM ANALYZE`;
  return (performance.now() - started) / 1000;
}
