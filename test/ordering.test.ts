// Races and reordering at the store: refreshes of one triple racing, and an
// older answer committed after a newer one.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectPostgres, type Sql } from '../src/db/db.js';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { contentHash } from '../src/images/image-diff.js';
import { ORDINARY } from '../src/images/image-kinds.js';
import { validateImage } from '../src/images/image-payload.js';
import type { Observation } from '../src/interfaces.js';
import { recordDeletion } from '../src/sql/recordDeletion.js';
import { recordChanges, type ObservationResult } from '../src/sql/recordChanges.js';
import { tripleKey } from '../src/images/triple.js';
import { recordUnchanged } from '../src/sql/recordUnchanged.js';
import { createTestEnv, type TestEnv } from './support/env.js';

let env: TestEnv;
let sql: Sql;

function observation(at: number, overrides: Record<string, unknown> = {}): Observation {
  const raw = sampleImage(SAMPLE_TRIPLE, overrides);
  const { snapshot, warnings } = validateImage(raw, SAMPLE_TRIPLE);
  return {
    triple: SAMPLE_TRIPLE,
    account: 'default',
    kind: ORDINARY,
    snapshot,
    contentHash: contentHash(snapshot),
    raw,
    warnings,
    observedAt: new Date(at),
  };
}

async function history() {
  const versions = await sql`
    SELECT state->>'name' AS name, valid_from, valid_to FROM image_versions ORDER BY valid_from`;
  const changes = await sql`SELECT change_type, field, new_value FROM image_changes ORDER BY id`;
  const [image] = await sql`SELECT name, deleted_at, last_seen_at FROM images`;
  return { versions, changes, image };
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** One answer through the store as a worker stores a batch of one. */
async function recordObservation(db: Sql, o: Observation): Promise<ObservationResult> {
  if ((await recordUnchanged(db, [o], 'answer')).length > 0) return 'unchanged';
  return (await recordChanges(db, [o])).get(tripleKey(o.triple))!;
}

beforeAll(async () => {
  env = await createTestEnv();
  sql = await connectPostgres(env.databaseUrl, { max: 20 });
});
beforeEach(async () => {
  await sql`DELETE FROM image_changes`;
  await sql`DELETE FROM image_tags`;
  await sql`DELETE FROM image_versions`;
  await sql`DELETE FROM images`;
});
afterAll(async () => {
  await sql?.end();
  await env?.cleanup();
});

describe('ordering and concurrency', () => {
  it('an older answer committed after a newer one does not roll the state back', async () => {
    await recordObservation(sql, observation(T0, { name: 'v1' }));
    await recordObservation(sql, observation(T0 + 2000, { name: 'v3' }));
    expect(await recordObservation(sql, observation(T0 + 1000, { name: 'v2' }))).toBe('unchanged');
    const { versions, changes, image } = await history();
    expect(versions.map((v) => v.name)).toEqual(['v1', 'v3']);
    expect(changes.map((c) => [c.change_type, c.field, c.new_value])).toEqual([
      ['created', null, expect.objectContaining({ name: 'v1' })],
      ['updated', 'name', 'v3'],
    ]);
    expect(image).toMatchObject({ name: 'v3', deleted_at: null });
    expect(new Date(image!.last_seen_at).getTime()).toBe(T0 + 2000);
  });

  it('an answer older than a recorded deletion does not restore the image', async () => {
    await recordObservation(sql, observation(T0, { name: 'v1' }));
    expect(await recordDeletion(sql, SAMPLE_TRIPLE, new Date(T0 + 2000))).toBe('deleted');
    expect(await recordObservation(sql, observation(T0 + 1000, { name: 'v2' }))).toBe('unchanged');
    expect(await recordDeletion(sql, SAMPLE_TRIPLE, new Date(T0 + 3000))).toBe('unchanged');
    const { versions, changes, image } = await history();
    expect(versions.map((v) => [v.name, new Date(v.valid_to).getTime()])).toEqual([['v1', T0 + 2000]]);
    expect(changes.map((c) => c.change_type)).toEqual(['created', 'deleted']);
    expect(new Date(image!.deleted_at).getTime()).toBe(T0 + 2000);
  });

  it('a deletion older than the newest sighting is not applied', async () => {
    await recordObservation(sql, observation(T0 + 5000, { name: 'v1' }));
    expect(await recordDeletion(sql, SAMPLE_TRIPLE, new Date(T0 + 1000))).toBe('unchanged');
    expect((await history()).image).toMatchObject({ deleted_at: null });
  });

  it('twenty racing refreshes of one new state write one version and one change set', async () => {
    await recordObservation(sql, observation(T0, { name: 'v1' }));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, n) => recordObservation(sql, observation(T0 + 1000 + n, { name: 'v2' }))),
    );
    expect(results.filter((r) => r === 'changed')).toHaveLength(1);
    const { versions, changes } = await history();
    expect(versions.map((v) => v.name)).toEqual(['v1', 'v2']);
    expect(changes.map((c) => [c.change_type, c.field])).toEqual([
      ['created', null],
      ['updated', 'name'],
    ]);
  });

  it('racing refreshes of alternating states leave an unbroken chain ending in the newest', async () => {
    await Promise.all(Array.from({ length: 30 }, (_, n) => recordObservation(sql, observation(T0 + n * 1000, { name: `v${n % 3}` }))));
    const { versions, image } = await history();
    for (let n = 1; n < versions.length; n++) {
      expect(versions[n - 1]!.valid_to).toEqual(versions[n]!.valid_from);
      expect(versions[n - 1]!.name).not.toBe(versions[n]!.name);
    }
    expect(versions.at(-1)!.valid_to).toBeNull();
    expect(versions.at(-1)!.name).toBe(image!.name);
    expect(image!.name).toBe('v2');
    expect(new Date(image!.last_seen_at).getTime()).toBe(T0 + 29_000);
  });
});
