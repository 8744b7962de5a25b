// A synthetic history written straight into the tables by bulk SQL, and the two reporting reads
// timed over it: images_as_of at a moment in the middle of the history, and one hour of
// image_change_log.
import type { Sql } from 'postgres';

/** How long each version of an image lasts: the images' versions start spread evenly over it. */
const PERIOD_DAYS = 30;
const START = '2024-01-01T00:00:00Z';

export interface History {
  images: number;
  versions: number;
  /** Also a change row per version and an audit-log entry for every 10th image (for the change log). */
  changes: boolean;
}

/** The moment `days` (fractional) after the history's start. */
function dayOf(days: number): Date {
  return new Date(Date.parse(START) + days * 86_400_000);
}

/**
 * Images in 100 region scopes of project 1, each with `versions` versions of PERIOD_DAYS; image n's start
 * n/images of a period after the history's start, so its changes fall evenly over time (at 1,000,000
 * images about 1,400 an hour) rather than all at one instant. Triggers are off while it is written
 * (session_replication_role): the rows keep the rules they check (no overlap, foreign keys), and a
 * million change notifications would be nobody's.
 */
export async function seedHistory(sql: Sql, { images, versions, changes }: History): Promise<void> {
  const offset = `(n - 1) * interval '${(PERIOD_DAYS * 86_400) / images} s'`;
  const from = (v: string) => `timestamptz '${START}' + (${v} - 1) * interval '${PERIOD_DAYS} days' + ${offset}`;
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx.unsafe(`
      INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, seen_at, last_changed_at)
      SELECT 1, 1 + n % 100, 'img-' || n, 'ordinary', 'image ' || n, 'Luxembourg-2', 'active', 'private', 'ubuntu', '22.04',
        'linux', 'qcow2', 5, 1024, 2361393152, 1, 1, '${START}', '${START}', '{}', 'h' || n, '${START}', now(), '${START}'
      FROM generate_series(1, ${images}) n`);
    await tx.unsafe(`
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
      SELECT 1, 1 + n % 100, 'img-' || n, ${from('v')}, CASE WHEN v < ${versions} THEN ${from('v + 1')} END,
        'h' || n || '-' || v,
        jsonb_build_object('name', 'image ' || n || ' v' || v, 'status', 'active', 'region', 'Luxembourg-2',
          'os_distro', 'ubuntu', 'tags', jsonb_build_object('team', jsonb_build_object('value', 'platform', 'read_only', false)))
      FROM generate_series(1, ${images}) n, generate_series(1, ${versions}) v`);
    if (!changes) return;
    // The first version of each is its creation; each later one renamed it, an hour after it was last seen.
    await tx.unsafe(`
      INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value,
        changed_at, observed_before)
      SELECT project_id, region_id, image_id, id, CASE WHEN first THEN 'created' ELSE 'updated' END,
        CASE WHEN first THEN NULL ELSE 'name' END, CASE WHEN first THEN NULL ELSE to_jsonb('earlier name'::text) END,
        CASE WHEN first THEN NULL ELSE state->'name' END, valid_from,
        CASE WHEN first THEN NULL ELSE valid_from - interval '1 hour' END
      FROM (SELECT *, valid_from < timestamptz '${START}' + interval '${PERIOD_DAYS} days' AS first FROM image_versions) v`);
    // Every 10th image renamed by one of 50 users, ten minutes before its fifth version was seen.
    await tx.unsafe(`
      INSERT INTO image_actions (action_id, accounts, acted_at, action_type, email, user_id, project_id, region_id, image_id, raw)
      SELECT 'action-' || n, ARRAY['default'], ${from('5')} - interval '10 minutes', 'update', 'user' || n % 50 || '@example.com',
        n % 50, 1, 1 + n % 100, 'img-' || n, '{}'
      FROM generate_series(10, ${images}, 10) n`);
  });
  for (const table of ['images', 'image_versions', 'image_changes', 'image_actions']) await sql.unsafe(`VACUUM ANALYZE ${table}`);
}

/** A moment in the middle of the history, half a period into a version: every image has a state then. */
function middleOf({ versions }: Pick<History, 'versions'>): Date {
  return dayOf((Math.floor(versions / 2) + 0.5) * PERIOD_DAYS);
}

/** Seconds `query` takes, timed after one run that warms the cache; resolves its rows too. */
async function timed<T>(query: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  await query();
  const started = performance.now();
  const result = await query();
  return { seconds: (performance.now() - started) / 1000, result };
}

/** `SELECT count(*) FROM images_as_of(t)`, t in the middle of the history: every image counted. */
export async function timeAsOf(sql: Sql, history: History): Promise<number> {
  const at = middleOf(history).toISOString();
  const { seconds, result } = await timed(() => sql<{ n: number }[]>`SELECT count(*)::int AS n FROM images_as_of(${at})`);
  if (result[0]!.n !== history.images) throw new Error(`images_as_of returned ${result[0]!.n} images, expected ${history.images}`);
  return seconds;
}

/** Every column of the change log over one hour in the middle of the history, read to the client; how long and how many rows. */
export async function timeChangeLogHour(sql: Sql, history: History): Promise<{ seconds: number; rows: number }> {
  const from = middleOf(history);
  const to = new Date(from.getTime() + 3_600_000);
  const { seconds, result } = await timed(
    () => sql`SELECT * FROM image_change_log WHERE changed_at >= ${from.toISOString()} AND changed_at < ${to.toISOString()}`,
  );
  if (result.length === 0) throw new Error('the change log held no change in the hour read');
  return { seconds, rows: result.length };
}
