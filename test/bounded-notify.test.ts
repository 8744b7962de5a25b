// The change notification against real Postgres, as an attacker with legal
// tags would try it: pg_notify refuses 8000 bytes, so a payload measured in
// characters, or before JSON escaping, failed the refresh and froze the
// image's history. Every update below must store its version, and its
// notification must arrive whole (parseable, under the limit) and name the
// rows a listener reads for the fields that did not fit.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import type { TestEnv } from './support/env.js';
import { startScenario, type Pipeline, type Scenario } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const A: Triple = { projectId: 12, regionId: 5, imageId: sampleImageId(1) };
const LIMIT = 8000;

interface Notice {
  bytes: number;
  body: Record<string, unknown>;
}

let scenario: Scenario;
let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let listener: postgres.Sql;
const notices: Notice[] = [];

beforeAll(async () => {
  scenario = await startScenario([A], { env: { SYNC_ATTEMPTS: '1' } });
  ({ env, fake, pipeline } = scenario);
  listener = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  await listener.listen('image_changes', (payload) =>
    notices.push({ bytes: Buffer.byteLength(payload), body: JSON.parse(payload) as Record<string, unknown> }),
  );
  expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
  await waitFor('the first sighting notified', () => notices.length === 1);
});

afterAll(async () => {
  await listener?.end();
  await scenario?.close();
});

/** 60 tags whose keys are `key(i)`, replacing the image's tags. */
const sixtyTags = (key: (i: number) => string) => Array.from({ length: 60 }, (_, i) => ({ key: key(i), value: `v${i}`, read_only: false }));

/** Applies `tags`, syncs, and returns the notification of the update with the rows it names. */
async function update(tags: Array<{ key: string; value: string; read_only: boolean }>) {
  const seen = notices.length;
  const versions = await pipeline.services.sql`SELECT count(*)::int AS n FROM image_versions WHERE image_id = ${A.imageId}`;
  fake.updateImage(A, { tags });
  expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
  expect(await pipeline.services.sql`SELECT count(*)::int AS n FROM image_versions WHERE image_id = ${A.imageId}`).toEqual([
    { n: versions[0]!.n + 1 },
  ]);
  const stored = await pipeline.services.sql`SELECT key FROM image_tags WHERE image_id = ${A.imageId} ORDER BY key`;
  expect(stored.map((t) => t.key)).toEqual(tags.map((t) => t.key).sort());
  await waitFor('the notification of the update', () => notices.length === seen + 1);
  const notice = notices.at(-1)!;
  const named = await pipeline.services.sql<Array<{ field: string }>>`
    SELECT field FROM image_changes
    WHERE (project_id, region_id, image_id) = (${A.projectId}, ${A.regionId}, ${A.imageId})
      AND id BETWEEN ${notice.body.first_change_id as number} AND ${notice.body.last_change_id as number}
    ORDER BY id`;
  return { notice, named: named.map((row) => row.field) };
}

describe('bounded change notifications', () => {
  it('an update adding 60 tags with 59-character CJK keys stores all 60 and notifies under 8000 bytes', async () => {
    const tags = sixtyTags((i) => `${String.fromCodePoint(0x4e00 + i)}${'漢'.repeat(58)}`);
    const { notice, named } = await update(tags);
    // The old tags (os, team) are removed and the 60 added: 62 changed fields, one notification.
    expect(named).toHaveLength(62);
    expect(new Set(named)).toEqual(new Set([...tags.map((t) => `tags.${t.key}`), 'tags.os', 'tags.team']));
    expect(notice.bytes).toBeLessThan(LIMIT);
    expect(notice.body).toMatchObject({ project_id: 12, region_id: 5, image_id: A.imageId, change_type: 'updated', field_count: 62 });
    // Each field is 186 bytes in the payload: as many as fit, whole, in the order they were written.
    const fields = notice.body.fields as string[];
    expect(fields.length).toBeGreaterThan(30);
    expect(fields.length).toBeLessThan(62);
    expect(fields).toEqual(named.slice(0, fields.length));
  });

  it('quote- and backslash-heavy 255-character ASCII keys, which double once escaped, notify under 8000 bytes', async () => {
    const tags = sixtyTags((i) => `${String(i).padStart(2, '0')}${'"\\'.repeat(126)}x`);
    expect(tags[0]!.key).toHaveLength(255);
    const { notice, named } = await update(tags);
    expect(named).toHaveLength(120);
    expect(notice.bytes).toBeLessThan(LIMIT);
    const fields = notice.body.fields as string[];
    expect(notice.body.field_count).toBe(120);
    expect(fields.length).toBeGreaterThan(10);
    expect(fields).toEqual(named.slice(0, fields.length));
  });

  it('a notification that cannot be built is a warning and never fails the write', async () => {
    const sql = pipeline.services.sql;
    await sql`ALTER FUNCTION bounded_change_payload(jsonb, text[], int) RENAME TO bounded_change_payload_away`;
    try {
      fake.updateImage(A, { name: 'renamed while notifications fail' });
      expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
    } finally {
      await sql`ALTER FUNCTION bounded_change_payload_away(jsonb, text[], int) RENAME TO bounded_change_payload`;
    }
    expect(await sql`SELECT name FROM images WHERE image_id = ${A.imageId}`).toEqual([{ name: 'renamed while notifications fail' }]);
    // Notifications arrive in commit order: the next change's is the first after the failed one.
    const seen = notices.length;
    fake.updateImage(A, { name: 'renamed again' });
    expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
    await waitFor('the next notification', () => notices.length > seen);
    expect(notices.slice(seen).map((n) => n.body.fields)).toEqual([['name']]);
  });
});

describe('bounded_change_payload', () => {
  const payload = async (change: object, fields: string[] | null, maxBytes: number) => {
    const [row] = await pipeline.services.sql<Array<{ text: string }>>`
      SELECT bounded_change_payload(${JSON.stringify(change)}::text::jsonb, ${fields}::text[], ${maxBytes}) AS text`;
    return row!.text;
  };
  const change = {
    project_id: 1,
    region_id: 2,
    image_id: 'i',
    change_type: 'updated',
    field_count: 3,
    first_change_id: 7,
    last_change_id: 9,
  };
  const all = (fields: string[]) => JSON.stringify({ ...change, fields });

  it('keeps every field that fits, whole and in order, and measures bytes after escaping', async () => {
    const fields = ['name', 'tags."q"', 'tags.é'];
    const whole = await payload(change, fields, 7999);
    expect(JSON.parse(whole)).toEqual(JSON.parse(all(fields)));
    const bytes = Buffer.byteLength(whole);
    // One byte less and the last field ("tags.é", 9 bytes with quotes and ", ") no longer fits.
    expect(JSON.parse(await payload(change, fields, bytes))).toEqual(JSON.parse(all(fields)));
    expect(JSON.parse(await payload(change, fields, bytes - 1))).toEqual(JSON.parse(all(fields.slice(0, 2))));
    expect(Buffer.byteLength(await payload(change, fields, bytes - 1))).toBeLessThanOrEqual(bytes - 1);
    expect(JSON.parse(await payload(change, null, 7999))).toEqual(JSON.parse(all([])));
  });

  it('drops members that do not name the rows when even no fields do not fit', async () => {
    const long = { ...change, actor_email: 'x'.repeat(200) };
    const ids = await payload(long, ['name'], 170);
    expect(JSON.parse(ids)).toEqual({
      project_id: 1,
      region_id: 2,
      image_id: 'i',
      change_type: 'updated',
      field_count: 3,
      first_change_id: 7,
      last_change_id: 9,
      fields: [],
    });
    expect(Buffer.byteLength(ids)).toBeLessThanOrEqual(170);
  });
});
