// Every query in docs/sql-cookbook.md, run against seeded data, and the
// history lookups behind the reporting views shown to use indexes.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleGpuImage, sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GPU_BAREMETAL, GPU_VIRTUAL } from '../src/images/image-kinds.js';
import type { Triple } from '../src/interfaces.js';
import { takeSnapshot } from '../src/sql/takeSnapshot.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';

const GPU: Triple = { projectId: 1, regionId: 7, imageId: 'gpu-image' };
const BIG: Triple = { projectId: 1, regionId: 7, imageId: 'big-image' };
const GONE: Triple = { projectId: 1, regionId: 7, imageId: 'gone-image' };
const FAILING: Triple = { projectId: 1, regionId: 7, imageId: 'failing-image' };
const PUBLIC: Triple = { projectId: 1, regionId: 7, imageId: 'public-image' };
const CUDA: Triple = { projectId: 1, regionId: 7, imageId: 'cuda-image' };
const CUDA_BM: Triple = { projectId: 1, regionId: 7, imageId: 'cuda-bm-image' };

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let queries: Array<{ title: string; sql: string }>;

beforeAll(async () => {
  const doc = await readFile(new URL('../docs/sql-cookbook.md', import.meta.url), 'utf8');
  queries = [...doc.matchAll(/^## (.+)\n[\s\S]*?```sql\n([\s\S]*?)```/gm)].map((m) => ({ title: m[1]!, sql: m[2]! }));

  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(SAMPLE_TRIPLE, sampleImage(SAMPLE_TRIPLE));
  fake.putImage(GPU, sampleImage(GPU, { gpu_driver: 'nvidia', gpu_driver_type: 'open', gpu_driver_version: '570.148.08' }));
  fake.putImage(BIG, sampleImage(BIG, { size: 21_474_836_480 }));
  fake.putImage(GONE, sampleImage(GONE));
  fake.putImage(FAILING, sampleImage(FAILING));
  fake.putImage(PUBLIC, sampleImage(PUBLIC, { visibility: 'public', project_id: 500 }));
  fake.putImage(CUDA, sampleGpuImage(CUDA), GPU_VIRTUAL);
  fake.putImage(CUDA_BM, sampleGpuImage(CUDA_BM, { visibility: 'public' }), GPU_BAREMETAL);
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 1, region_id: 7, image_ids: [${[SAMPLE_TRIPLE, GPU, BIG, GONE, FAILING, PUBLIC].map((t) => t.imageId).join(', ')}] }
  - { project_id: 1, region_id: 7, image_ids: [${CUDA.imageId}], kind: gpu_virtual }
  - { project_id: 1, region_id: 7, image_ids: [${CUDA_BM.imageId}], kind: gpu_baremetal }
`,
    { env: { SYNC_ATTEMPTS: '1' } },
  );
  await pipeline.sync();
  // Usage as a complete usage listing records it (src/sql/recordUsage.ts): listed for 200 days; the sample image
  // in use by an instance, the big one until 100 days ago, the one deleted below still in use as it goes.
  await pipeline.services.sql`
    INSERT INTO usage_coverage (project_id, region_id, first_listed_at, listed_at) VALUES (1, 7, now() - interval '200 days', now())`;
  await pipeline.services.sql`
    INSERT INTO image_usage_history (project_id, region_id, image_id, consumer_kind, consumer_id, consumer_name, valid_from, valid_to)
    VALUES (1, 7, ${SAMPLE_TRIPLE.imageId}, 'instance', 'server-1', 'web-1', now() - interval '30 days', NULL),
      (1, 7, ${BIG.imageId}, 'volume', 'volume-1', 'data', now() - interval '150 days', now() - interval '100 days'),
      (1, 7, ${GONE.imageId}, 'volume', 'volume-2', 'old-root', now() - interval '10 days', NULL)`;
  await takeSnapshot(pipeline.services.sql, 'cookbook-1');
  fake.updateImage(SAMPLE_TRIPLE, { name: 'renamed', tags: [{ key: 'team', value: 'security', read_only: false }] });
  fake.deleteImage(GONE);
  fake.setFault(FAILING, { kind: 'status', status: 503 });
  await pipeline.sync();
  await takeSnapshot(pipeline.services.sql, 'cookbook-2');
  // The usage above is current: the latest listing of a scope lists 1/7's usage (only after the syncs, which list it
  // through no scope, so the usage written by hand stands).
  await pipeline.services.sql`
    WITH scope AS (
      INSERT INTO scopes (key, definition, schedule_key, interval_seconds)
      SELECT 'cookbook', '{"projects": [1], "regions": [7], "filters": {}}', schedule_key, 3600 FROM targets LIMIT 1
      RETURNING key),
    listing AS (
      INSERT INTO listings (run_id, scope_key, status, started_at, finished_at)
      SELECT r.id, scope.key, 'complete', r.started_at, r.started_at FROM sync_runs r, scope ORDER BY r.id DESC LIMIT 1
      RETURNING id, scope_key, started_at),
    latest AS (INSERT INTO latest_listings (scope_key, listing_id, started_at) SELECT scope_key, id, started_at FROM listing)
    INSERT INTO usage_listings (listing_id, project_id, region_id, started_at, status, requests, consumers, opened, closed)
    SELECT id, 1, 7, started_at, 'complete', 4, 2, 0, 0 FROM listing`;
  // Alice's rename and retag, as the audit-log follower stores it, in the window of the change the second sync saw.
  await pipeline.services.sql`
    INSERT INTO image_actions (action_id, accounts, acted_at, api_group, action_type, email, project_id, region_id, image_id, raw)
    SELECT 'seed-1', ARRAY['default'], c.changed_at - interval '1 millisecond', 'image', 'update', 'alice@example.com',
      c.project_id, c.region_id, c.image_id, '{}'
    FROM image_changes c WHERE c.change_type = 'updated' ORDER BY c.id LIMIT 1`;
});

afterAll(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

describe('docs/sql-cookbook.md', () => {
  it('holds at least ten queries', () => {
    expect(queries.length).toBeGreaterThanOrEqual(10);
  });

  it('runs every query against seeded data', async () => {
    const results: Record<string, number> = {};
    for (const query of queries) results[query.title] = (await pipeline.services.sql.unsafe(query.sql)).length;
    expect(results).toMatchObject({
      'Inventory by region and OS': 2,
      'Images and changes per account': 1,
      'Images with a given tag': 4,
      'What changed in the last week': 12,
      'Who changed what in the last day': 3,
      'Every action on one image, and the change each one explains': 1,
      'Tag changes: which tags changed, from what to what': 2,
      'Deleted images, with their last known name': 1,
      // The big image (unused since 100 days), the GPU and the failing one (since usage listing began).
      'Images unused for 90 days': 3,
      'What uses this image': 1,
      'Images deleted while in use': 1,
      'What differs between the two latest audit snapshots': 2,
      'Stale images: not seen lately, or failing': 1,
      'Images larger than 10 GiB': 3,
      'GPU images by driver and version': 1,
      'GPU images by CUDA version': 2,
      "Ours: the project's own images, not public or shared to it": 5,
      'The last sync runs and how they ended': 2,
      'Triples whose last refresh failed, with the error': 1,
      'The whole history of one image': 2,
    });
  });
});

describe('indexes for reports', () => {
  async function plan(query: string): Promise<string> {
    const rows = await pipeline.services.sql.unsafe(`EXPLAIN ${query}`);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  }

  it('as-of lookups and the change log by time use indexes, not scans of history', async () => {
    const sql = pipeline.services.sql;
    // Enough history that a sequential scan would be the planner's choice if no index served; each
    // version of an image stored (migration 0023's foreign keys), and the changes of one version of 'seed'.
    await sql`
      INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, seen_at, last_changed_at, deleted_at)
      SELECT 2, 2, id, 'ordinary', id, 'r', 'active', 'public', 'd', 'v', 'linux', 'qcow2', 0, 0, 2, 2, '2020-01-01', '2020-01-01', '{}', 'h',
        '2020-01-01', '2020-01-01', '2020-01-01', '2020-01-01'
      FROM (SELECT 'seed-' || n AS id FROM generate_series(1, 2000) n UNION ALL SELECT 'seed') ids`;
    await sql`
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
      VALUES (2, 2, 'seed', '2019-01-01', '2019-01-02', 'h', '{}')`;
    await sql`
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
      SELECT 2, 2, 'seed-' || n, timestamptz '2020-01-01' + v * interval '1 day', timestamptz '2020-01-01' + (v + 1) * interval '1 day',
        'h', '{}'::jsonb
      FROM generate_series(1, 2000) n, generate_series(1, 20) v`;
    await sql`
      INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, changed_at)
      SELECT 2, 2, 'seed', (SELECT id FROM image_versions WHERE image_id = 'seed'), 'updated', 'name', timestamptz '2020-01-01' + n * interval '1 minute'
      FROM generate_series(1, 40000) n`;
    await sql`ANALYZE image_versions`;
    await sql`ANALYZE image_changes`;
    // images_as_of is inlined into the query that calls it (migrations/objects/03_images_as_of.sql): its plan is
    // the query's. A day ago, the versions that ended since come from the index of validity (with the current
    // ones, from theirs); test/images-as-of.test.ts has the count in the middle of a history.
    const asOf = await plan(`SELECT count(*) FROM images_as_of(now() - interval '1 day')`);
    expect(asOf).toMatch(/Index (Only )?Scan (using|on) image_versions_valid_from_idx/);
    expect(asOf).not.toContain('Seq Scan on image_versions');
    const log = await plan(`SELECT * FROM image_change_log WHERE changed_at > now() - interval '1 day'`);
    expect(log).toMatch(/Index Scan( Backward)? using image_changes_changed_at_idx on image_changes/);
    expect(log).not.toContain('Seq Scan on image_changes');
    const stale = await plan('SELECT * FROM stale_images');
    expect(stale).not.toMatch(/Seq Scan on image_(versions|changes)/);
  });
});
