// End to end: targets file -> reconcile -> worker -> fake API -> Postgres, then
// a field change, a tag change, a deletion, a restore and a no-op refresh,
// each checked row by row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';

const A = SAMPLE_TRIPLE;
const B: Triple = { projectId: 1, regionId: 7, imageId: 'b0000000-0000-4000-8000-00000000000b' };

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;

const sql = () => pipeline.services.sql;

async function imageRows() {
  return sql()`
    SELECT image_id, name, size, owner_project_id, image_region_id, architecture, created_at::text, updated_at::text,
      deleted_at IS NOT NULL AS deleted, last_changed_at = first_seen_at AS never_changed
    FROM images ORDER BY image_id`;
}

async function tagRows() {
  return sql()`SELECT image_id, key, value, read_only FROM image_tags ORDER BY image_id, key`;
}

async function versionRows() {
  return sql()`
    SELECT v.image_id, v.valid_to IS NULL AS current, v.state->>'name' AS name, v.state->'tags' AS tags,
      v.valid_to = (SELECT min(n.valid_from) FROM image_versions n WHERE n.image_id = v.image_id AND n.valid_from > v.valid_from) AS closed_by_next
    FROM image_versions v ORDER BY v.image_id, v.valid_from`;
}

async function changeRows(sinceId = 0) {
  return sql()`
    SELECT image_id, change_type, field, old_value, new_value
    FROM image_changes WHERE id > ${sinceId} ORDER BY id`;
}

async function lastChangeId(): Promise<number> {
  const [row] = await sql()<{ id: number }[]>`SELECT coalesce(max(id), 0)::int AS id FROM image_changes`;
  return row!.id;
}

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(A, sampleImage(A));
  fake.putImage(B, sampleImage(B, { tags: undefined, tags_v2: [{ key: 'team', value: 'storage', read_only: false }] }));
  const url = await fake.start();
  pipeline = await startPipeline(
    env,
    url,
    `${QUIET_SCHEDULE}
targets:
  - project_id: 1
    region_id: 7
    image_ids: [${A.imageId}, ${B.imageId}]
`,
  );
});

afterAll(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

describe('pipeline, end to end', () => {
  it('creates images, tags, a first version and a created change for each image', async () => {
    const run = await pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', planned: 2, changed: 2, unchanged: 0, deleted: 0, failed: 0 });
    expect(await imageRows()).toEqual([
      {
        image_id: A.imageId,
        name: 'ubuntu-22.04-x64-4bd6',
        size: 2361393152,
        owner_project_id: 1,
        image_region_id: 7,
        architecture: 'x86_64',
        created_at: '2024-05-05 14:51:26.570866+00',
        updated_at: '2024-05-06 09:12:00+00',
        deleted: false,
        never_changed: true,
      },
      {
        image_id: B.imageId,
        name: 'ubuntu-22.04-x64-000b',
        size: 2361393152,
        owner_project_id: 1,
        image_region_id: 7,
        architecture: 'x86_64',
        created_at: '2024-05-05 14:51:26.570866+00',
        updated_at: '2024-05-06 09:12:00+00',
        deleted: false,
        never_changed: true,
      },
    ]);
    expect(await tagRows()).toEqual([
      { image_id: A.imageId, key: 'os', value: 'ubuntu', read_only: true },
      { image_id: A.imageId, key: 'team', value: 'platform', read_only: false },
      { image_id: B.imageId, key: 'team', value: 'storage', read_only: false },
    ]);
    expect(await versionRows()).toEqual([
      {
        image_id: A.imageId,
        current: true,
        name: 'ubuntu-22.04-x64-4bd6',
        tags: { os: { value: 'ubuntu', read_only: true }, team: { value: 'platform', read_only: false } },
        closed_by_next: null,
      },
      {
        image_id: B.imageId,
        current: true,
        name: 'ubuntu-22.04-x64-000b',
        tags: { team: { value: 'storage', read_only: false } },
        closed_by_next: null,
      },
    ]);
    const changes = await changeRows();
    expect(changes.map((c) => [c.image_id, c.change_type, c.field, c.old_value])).toEqual([
      [expect.any(String), 'created', null, null],
      [expect.any(String), 'created', null, null],
    ]);
    expect(changes.map((c) => c.image_id).sort()).toEqual([A.imageId, B.imageId]);
    const [rawA] = await sql()`SELECT raw FROM images WHERE image_id = ${A.imageId}`;
    expect(rawA!.raw).toEqual(sampleImage(A));
  });

  it('records a field change as one change row per field and a new version', async () => {
    const since = await lastChangeId();
    fake.updateImage(A, { name: 'ubuntu-22.04-hardened', updated_at: '2024-06-01T10:00:00.25Z' });
    expect(await pipeline.sync()).toMatchObject({ planned: 2, changed: 1, unchanged: 1 });
    expect(await changeRows(since)).toEqual([
      {
        image_id: A.imageId,
        change_type: 'updated',
        field: 'name',
        old_value: 'ubuntu-22.04-x64-4bd6',
        new_value: 'ubuntu-22.04-hardened',
      },
      {
        image_id: A.imageId,
        change_type: 'updated',
        field: 'updated_at',
        old_value: '2024-05-06T09:12:00Z',
        new_value: '2024-06-01T10:00:00.25Z',
      },
    ]);
    expect((await versionRows()).filter((v) => v.image_id === A.imageId)).toEqual([
      expect.objectContaining({ current: false, name: 'ubuntu-22.04-x64-4bd6', closed_by_next: true }),
      expect.objectContaining({ current: true, name: 'ubuntu-22.04-hardened', closed_by_next: null }),
    ]);
    const [row] = await imageRows();
    expect(row).toMatchObject({ name: 'ubuntu-22.04-hardened', updated_at: '2024-06-01 10:00:00.25+00', never_changed: false });
  });

  it('records a tag change per key and replaces the current tags', async () => {
    const since = await lastChangeId();
    fake.updateImage(A, {
      tags: [
        { key: 'team', value: 'security', read_only: false },
        { key: 'env', value: 'prod', read_only: false },
      ],
    });
    expect(await pipeline.sync()).toMatchObject({ changed: 1, unchanged: 1 });
    expect(await changeRows(since)).toEqual([
      { image_id: A.imageId, change_type: 'updated', field: 'tags.env', old_value: null, new_value: { value: 'prod', read_only: false } },
      { image_id: A.imageId, change_type: 'updated', field: 'tags.os', old_value: { value: 'ubuntu', read_only: true }, new_value: null },
      {
        image_id: A.imageId,
        change_type: 'updated',
        field: 'tags.team',
        old_value: { value: 'platform', read_only: false },
        new_value: { value: 'security', read_only: false },
      },
    ]);
    expect((await tagRows()).filter((t) => t.image_id === A.imageId)).toEqual([
      { image_id: A.imageId, key: 'env', value: 'prod', read_only: false },
      { image_id: A.imageId, key: 'team', value: 'security', read_only: false },
    ]);
    expect((await versionRows()).filter((v) => v.image_id === A.imageId).map((v) => v.current)).toEqual([false, false, true]);
  });

  it('marks a deleted image, closes its version and keeps its history', async () => {
    const since = await lastChangeId();
    const stateBefore = (await sql()`SELECT state FROM image_versions WHERE image_id = ${B.imageId} AND valid_to IS NULL`)[0]!.state;
    const payloadB = fake.deleteImage(B)!;
    expect(await pipeline.sync()).toMatchObject({ changed: 0, unchanged: 1, deleted: 1, failed: 0 });
    expect(await changeRows(since)).toEqual([
      { image_id: B.imageId, change_type: 'deleted', field: null, old_value: stateBefore, new_value: null },
    ]);
    expect((await imageRows()).find((r) => r.image_id === B.imageId)).toMatchObject({ deleted: true, name: 'ubuntu-22.04-x64-000b' });
    expect((await tagRows()).filter((t) => t.image_id === B.imageId)).toEqual([]);
    expect((await versionRows()).filter((v) => v.image_id === B.imageId)).toEqual([
      expect.objectContaining({ current: false, name: 'ubuntu-22.04-x64-000b', closed_by_next: null }),
    ]);
    fake.putImage(B, payloadB);
  });

  it('restores an image that comes back, with a restored change and a new version', async () => {
    const since = await lastChangeId();
    expect(await pipeline.sync()).toMatchObject({ changed: 1, unchanged: 1 });
    const [change] = await changeRows(since);
    expect(change).toMatchObject({ image_id: B.imageId, change_type: 'restored', field: null });
    expect(change!.old_value).toEqual(change!.new_value);
    expect((await imageRows()).find((r) => r.image_id === B.imageId)).toMatchObject({ deleted: false });
    expect((await tagRows()).filter((t) => t.image_id === B.imageId)).toEqual([
      { image_id: B.imageId, key: 'team', value: 'storage', read_only: false },
    ]);
    expect((await versionRows()).filter((v) => v.image_id === B.imageId).map((v) => v.current)).toEqual([false, true]);
  });

  it('writes no version and no change when nothing changed, but advances last_seen_at', async () => {
    const since = await lastChangeId();
    const before = await sql()`SELECT image_id, last_seen_at FROM images ORDER BY image_id`;
    const versions = await versionRows();
    expect(await pipeline.sync()).toMatchObject({ planned: 2, unchanged: 2, changed: 0, deleted: 0, failed: 0 });
    expect(await changeRows(since)).toEqual([]);
    expect(await versionRows()).toEqual(versions);
    const after = await sql()`SELECT image_id, last_seen_at FROM images ORDER BY image_id`;
    after.forEach((row, n) => expect(new Date(row.last_seen_at).getTime()).toBeGreaterThan(new Date(before[n]!.last_seen_at).getTime()));
  });

  it('logs one line per refresh outcome with the triple, and never the API key', async () => {
    const outcomes = pipeline.logLines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'refresh');
    expect(outcomes).toHaveLength(12);
    expect(outcomes[0]).toMatchObject({
      project_id: 1,
      region_id: 7,
      image_id: expect.any(String),
      job_id: expect.any(String),
      outcome: 'changed',
    });
    expect(pipeline.logLines.join('\n')).not.toContain(env.env.GCORE_API_KEY);
  });
});
