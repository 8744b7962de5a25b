// History moves only when something changed: a field the API starts sending as
// null, or a hash stored by an older release, writes no version.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { Triple } from '../src/interfaces.js';
import { startScenario, type Scenario } from './support/pipeline.js';

const triples: Triple[] = Array.from({ length: 50 }, (_, n) => ({ projectId: 1, regionId: 7, imageId: sampleImageId(n + 1) }));
let scenario: Scenario;

async function counts() {
  const [row] = await scenario.pipeline.services.sql<{ versions: number; changes: number }[]>`
    SELECT (SELECT count(*)::int FROM image_versions) AS versions, (SELECT count(*)::int FROM image_changes) AS changes`;
  return row!;
}

beforeAll(async () => {
  scenario = await startScenario(triples);
  const run = await scenario.pipeline.sync();
  expect(run.changed).toBe(50);
});
afterAll(() => scenario.close());

describe('history stability', () => {
  it('a field the API starts sending as null writes no version; a value in it does', async () => {
    const before = await counts();
    const lastChanged = await scenario.pipeline.services.sql`SELECT max(last_changed_at) AS at FROM images`;
    for (const triple of triples) scenario.fake.updateImage(triple, { brand_new_field: null, gpu_driver: null });
    const quiet = await scenario.pipeline.sync();
    expect([quiet.changed, quiet.unchanged]).toEqual([0, 50]);
    expect(await counts()).toEqual(before);
    expect(await scenario.pipeline.services.sql`SELECT max(last_changed_at) AS at FROM images`).toEqual(lastChanged);

    scenario.fake.updateImage(triples[0]!, { brand_new_field: 'now set' });
    const one = await scenario.pipeline.sync();
    expect([one.changed, one.unchanged]).toEqual([1, 49]);
    expect(await counts()).toEqual({ versions: before.versions + 1, changes: before.changes + 1 });
    const [change] = await scenario.pipeline.services.sql`
      SELECT field, old_value, new_value FROM image_changes WHERE change_type = 'updated'`;
    expect(change).toEqual({ field: 'brand_new_field', old_value: null, new_value: 'now set' });
  });

  it('hashes stored by an older release (nulls hashed as members) cause no version', async () => {
    const { sql } = scenario.pipeline.services;
    // The hash as releases before this one made it: canonical JSON with null members kept.
    const legacy = (state: unknown): string => {
      const canonical = (value: unknown): string =>
        Array.isArray(value)
          ? `[${value.map(canonical).join(',')}]`
          : value !== null && typeof value === 'object'
            ? `{${Object.keys(value)
                .sort()
                .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
                .join(',')}}`
            : JSON.stringify(value);
      return createHash('sha256').update(canonical(state)).digest('hex');
    };
    const versions = await sql<
      { id: number; state: Record<string, unknown> }[]
    >`SELECT id, state FROM image_versions WHERE valid_to IS NULL`;
    for (const { id, state } of versions) {
      const hash = legacy({ ...state, description: null, task_id: null });
      await sql`UPDATE image_versions SET content_hash = ${hash} WHERE id = ${id}`;
      await sql`UPDATE images i SET content_hash = ${hash} FROM image_versions v
        WHERE v.id = ${id} AND (i.project_id, i.region_id, i.image_id) = (v.project_id, v.region_id, v.image_id)`;
    }
    const before = await counts();
    const run = await scenario.pipeline.sync();
    expect([run.changed, run.unchanged, run.failed]).toEqual([0, 50, 0]);
    expect(await counts()).toEqual(before);
    // The stored hashes were brought up to date, so the next refresh takes the one-statement path again.
    const [stale] = await sql`
      SELECT count(*)::int AS n FROM images i JOIN image_versions v
        ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
      WHERE i.content_hash <> v.content_hash OR i.content_hash = ${legacy({ description: null })}`;
    expect(stale).toEqual({ n: 0 });
    const again = await scenario.pipeline.sync();
    expect([again.changed, again.unchanged]).toEqual([0, 50]);
    expect(await counts()).toEqual(before);
  });
});
