// images_as_of answers from the versions that held the moment, inlined into the query that calls it
// (migrations/objects/03_images_as_of.sql): the same rows and columns as the form it replaced, which
// looked up each image's latest version from before the moment, on the moments where the two could
// part: a version's first and last instants, an image deleted and one deleted and restored.
import type { Sql } from 'postgres';
import { describe, expect, it } from 'vitest';
import { withDatabase } from './support/env.js';

let sql: Sql;
withDatabase((s) => (sql = s));

/** The definition issue 26 replaced (migrations/objects/03_images_as_of.sql before it), as a query of `at`, with the columns added since (issue 27's owned and cuda_toolkit_version). */
const BEFORE = `
  SELECT i.project_id, i.region_id, i.image_id, i.kind,
    s->>'name' AS name, s->>'region' AS region, s->>'status' AS status, s->>'visibility' AS visibility,
    s->>'os_distro' AS os_distro, s->>'os_version' AS os_version, s->>'os_type' AS os_type,
    s->>'disk_format' AS disk_format, (s->>'min_disk')::bigint AS min_disk, (s->>'min_ram')::bigint AS min_ram,
    (s->>'project_id')::bigint AS owner_project_id, (s->>'region_id')::bigint AS image_region_id,
    api_timestamp(s->>'created_at') AS created_at, api_timestamp(s->>'updated_at') AS updated_at,
    (s->>'size')::bigint AS size, s->>'architecture' AS architecture, (s->>'is_baremetal')::boolean AS is_baremetal,
    s->>'creator_task_id' AS creator_task_id, s->>'task_id' AS task_id, s->>'description' AS description,
    (s->>'display_order')::bigint AS display_order, s->>'gpu_driver' AS gpu_driver, s->>'gpu_driver_type' AS gpu_driver_type,
    s->>'gpu_driver_version' AS gpu_driver_version, s->>'hw_firmware_type' AS hw_firmware_type,
    s->>'hw_machine_type' AS hw_machine_type, s->>'ssh_key' AS ssh_key, s->>'currency_code' AS currency_code,
    (s->>'price_per_hour')::numeric AS price_per_hour, (s->>'price_per_month')::numeric AS price_per_month,
    s->>'price_status' AS price_status,
    coalesce((SELECT jsonb_object_agg(e.key, e.value->'value' ORDER BY e.key) FROM jsonb_each(s->'tags') e), '{}'::jsonb) AS tags,
    v.id AS version_id, v.valid_from, i.account,
    image_owned(i.project_id, (s->>'project_id')::bigint, s->>'visibility') AS owned, s->>'cuda_toolkit_version' AS cuda_toolkit_version
  FROM images i
  CROSS JOIN LATERAL (
    SELECT w.id, w.state AS s, w.valid_from, w.valid_to FROM image_versions w
    WHERE (w.project_id, w.region_id, w.image_id) = (i.project_id, i.region_id, i.image_id) AND w.valid_from <= $1
    ORDER BY w.valid_from DESC LIMIT 1) v
  WHERE v.valid_to IS NULL OR v.valid_to > $1
  ORDER BY 1, 2, 3`;

const T1 = '2025-03-01T10:00:00.000000Z';
const T2 = '2025-03-02T10:00:00.000000Z';
const T3 = '2025-03-03T10:00:00.000000Z';
const T4 = '2025-03-04T10:00:00.000000Z';

/** A state as the history keeps it: the API's answer with tags, dates (one of them BC) and prices. */
function state(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    region: 'Luxembourg-2',
    status: 'active',
    visibility: 'private',
    os_distro: 'ubuntu',
    os_version: '22.04',
    os_type: 'linux',
    disk_format: 'qcow2',
    min_disk: 5,
    min_ram: 1024,
    project_id: 1,
    region_id: 1,
    size: 2361393152,
    created_at: '2024-05-05T14:51:26.570866Z',
    updated_at: '2024-05-06T09:12:00Z',
    price_per_hour: '0.0123',
    tags: { team: { value: 'platform', read_only: false }, os: { value: 'ubuntu', read_only: true } },
    ...extra,
  };
}

/** An image (its `images` row, deleted or not) and its versions, each [from, to) with its state. */
async function storeImage(
  imageId: string,
  versions: Array<{ from: string; to: string | null; name: string; extra?: Record<string, unknown> }>,
  deletedAt: string | null = null,
) {
  await sql.begin(async (tx) => {
    const last = versions.at(-1)!;
    await tx`
      INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, seen_at, last_changed_at, deleted_at, account)
      VALUES (1, 1, ${imageId}, 'ordinary', ${last.name}, 'Luxembourg-2', 'active', 'private', 'ubuntu', '22.04', 'linux', 'qcow2',
        5, 1024, 2361393152, 1, 1, '2024-05-05', '2024-05-06', '{}', 'hash', ${versions[0]!.from}, ${T4}, ${last.from},
        ${deletedAt}, 'prod')`;
    for (const [n, v] of versions.entries()) {
      await tx`
        INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
        VALUES (1, 1, ${imageId}, ${v.from}, ${v.to}, ${`${imageId}-${n}`}, ${sql.json(state(v.name, v.extra))})`;
    }
  });
}

/** One microsecond (the history's resolution) before and after one of the instants above. */
const before = (at: string) => at.replace('10:00:00.000000', '09:59:59.999999');
const after = (at: string) => at.replace('10:00:00.000000', '10:00:00.000001');

describe('images_as_of', () => {
  it('answers exactly as the form it replaced at every boundary of versions, deletions and restorations', async () => {
    // Three versions, the last current.
    await storeImage('changed', [
      { from: T1, to: T2, name: 'first' },
      { from: T2, to: T3, name: 'second', extra: { tags: { team: { value: 'data', read_only: false } } } },
      { from: T3, to: null, name: 'third', extra: { created_at: '-0044-03-15T12:00:00Z', description: 'moved' } },
    ]);
    // Deleted at T3: its last version closed, none after it.
    await storeImage(
      'deleted',
      [
        { from: T1, to: T2, name: 'first' },
        { from: T2, to: T3, name: 'second' },
      ],
      T3,
    );
    // Deleted at T2 and back at T4, its state changed meanwhile.
    await storeImage('restored', [
      { from: T1, to: T2, name: 'before' },
      { from: T4, to: null, name: 'after', extra: { status: 'deactivated' } },
    ]);
    // First seen at T3.
    await storeImage('late', [{ from: T3, to: null, name: 'new', extra: { tags: {} } }]);
    const moments = [T1, T2, T3, T4].flatMap((t) => [before(t), t, after(t)]);
    moments.push('2025-01-01T00:00:00Z', '2025-03-02T22:00:00Z', '2999-01-01T00:00:00Z');
    const seen = new Map<string, string[]>();
    for (const at of moments) {
      const now = await sql`SELECT * FROM images_as_of(${at}) ORDER BY 1, 2, 3`;
      expect(now, at).toEqual(await sql.unsafe(BEFORE, [at]));
      seen.set(
        at,
        now.map((row) => `${row.image_id}:${row.name}`),
      );
    }
    // The moments the two were compared on are the ones that tell the cases apart.
    expect(seen.get(before(T1))).toEqual([]);
    expect(seen.get(T1)).toEqual(['changed:first', 'deleted:first', 'restored:before']);
    expect(seen.get(before(T2))).toEqual(['changed:first', 'deleted:first', 'restored:before']);
    expect(seen.get(T2)).toEqual(['changed:second', 'deleted:second']);
    expect(seen.get(T3)).toEqual(['changed:third', 'late:new']);
    expect(seen.get(before(T4))).toEqual(['changed:third', 'late:new']);
    expect(seen.get(T4)).toEqual(['changed:third', 'late:new', 'restored:after']);
  });

  it('answers the version that holds the moment beside an empty one that begins with it', async () => {
    // A state seen for no time (valid_from = valid_to) overlaps nothing; the form it replaced took whichever of the two
    // versions beginning at T2 its index gave first, and with the empty one left the image out.
    await storeImage('blink', [
      { from: T1, to: T2, name: 'first' },
      { from: T2, to: T2, name: 'blink' },
      { from: T2, to: null, name: 'settled' },
    ]);
    for (const at of [T2, T3]) {
      expect((await sql`SELECT name FROM images_as_of(${at}) WHERE image_id = 'blink'`).map((row) => row.name)).toEqual(['settled']);
    }
    expect((await sql`SELECT name FROM images_as_of(${before(T2)}) WHERE image_id = 'blink'`).map((row) => row.name)).toEqual(['first']);
  });

  it('counts from the index of validity alone, and reaches one image through its versions index', async () => {
    await sql`ANALYZE image_versions`;
    // Planned as they would be over a million images, where reading the table itself costs most.
    const plan = (query: (tx: Sql) => Promise<Array<Record<string, unknown>>>) =>
      sql.begin(async (tx) => {
        await tx`SET LOCAL enable_seqscan = off`;
        return (await query(tx as unknown as Sql)).map((row) => row['QUERY PLAN'] as string).join('\n');
      });
    const count = await plan((tx) => tx`EXPLAIN SELECT count(*) FROM images_as_of(${T3})`);
    expect(count).toMatch(/Index Only Scan using image_versions_valid_from_idx/);
    expect(count).not.toMatch(/images_project_id_region_id_image_id_pk|Function Scan/);
    const one = await plan(
      (tx) => tx`EXPLAIN SELECT * FROM images_as_of(${T3}) WHERE project_id = 1 AND region_id = 1 AND image_id = 'changed'`,
    );
    expect(one).toMatch(/Index Scan using image_versions_triple_valid_idx/);
  });
});
