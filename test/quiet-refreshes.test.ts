// A refresh that finds nothing changed writes nothing about the images it saw (issue 26): their sighting is
// the scope's latest complete listing, one row, and images.last_seen_at still says when each was last seen.
// The ids an open listing returned live in an UNLOGGED table: a crash that empties it ends the listing
// incomplete, never with every image taken for absent.
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Sql } from '../src/db/db.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { throwawayPostgres, waitFor } from './support/throwaway.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const LISTED = 1500;
const listed: Triple[] = Array.from({ length: LISTED }, (_, n) => ({ projectId: 1, regionId: 7, imageId: sampleImageId(n + 1) }));
const EXPLICIT: Triple = { projectId: 2, regionId: 3, imageId: sampleImageId(9001) };
const TARGETS = `${QUIET_SCHEDULE}
targets:
  - { project_id: 1, region_id: 7, discover: {} }
  - { project_id: 2, region_id: 3, image_ids: [${EXPLICIT.imageId}] }
`;

async function begin(env: Record<string, string> = {}): Promise<{ fake: FakeGcore; pipeline: Pipeline }> {
  const testEnv = await createTestEnv();
  cleanups.push(() => testEnv.cleanup());
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  for (const triple of [...listed, EXPLICIT]) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  const pipeline = await startPipeline(testEnv, fake.url, TARGETS, { env });
  cleanups.push(() => pipeline.close());
  return { fake, pipeline };
}

/** Every row of the image tables, as its physical version: a row written again (even to the same values) has another. */
async function rowVersions(sql: Sql): Promise<Record<string, Map<string, string>>> {
  const of = async (table: string, key: string) =>
    new Map(
      (await sql.unsafe<{ key: string; v: string }[]>(`SELECT ${key} AS key, xmin::text || ' ' || ctid::text AS v FROM ${table}`)).map(
        (row) => [row.key, row.v],
      ),
    );
  const triple = "project_id || '/' || region_id || '/' || image_id";
  return {
    targets: await of('targets', triple),
    image_rows: await of('image_rows', triple),
    image_tags: await of('image_tags', `${triple} || '/' || key`),
    image_versions: await of('image_versions', 'id::text'),
  };
}

/** The keys whose row was written between `before` and `after` (changed, added or gone). */
function written(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}

const keyOf = (t: Triple) => `${t.projectId}/${t.regionId}/${t.imageId}`;

async function latestListingStart(sql: Sql): Promise<string> {
  const [row] = await sql<{ at: string }[]>`SELECT started_at::text AS at FROM latest_listings`;
  return row!.at;
}

describe('a refresh that finds nothing changed', () => {
  it('writes no row of a listed image, only the explicit target its GET refreshed; last_seen_at is the listing start', async () => {
    const { fake, pipeline } = await begin();
    const { sql } = pipeline.services;
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: LISTED + 1, failed: 0, listingsFailed: 0 });
    const before = await rowVersions(sql);

    const second = await pipeline.sync();
    expect(second).toMatchObject({
      status: 'finished',
      planned: LISTED + 1,
      unchanged: LISTED + 1,
      changed: 0,
      failed: 0,
      listingsFailed: 0,
    });
    const after = await rowVersions(sql);
    expect({
      targets: written(before.targets!, after.targets!),
      image_rows: written(before.image_rows!, after.image_rows!),
      image_tags: written(before.image_tags!, after.image_tags!),
      image_versions: written(before.image_versions!, after.image_versions!),
    }).toEqual({ targets: [keyOf(EXPLICIT)], image_rows: [keyOf(EXPLICIT)], image_tags: [], image_versions: [] });

    // Every listed image was seen at the start of the listing that returned it; the explicit one at its GET.
    const started = await latestListingStart(sql);
    const seen = await sql<{ at: string; n: number }[]>`
      SELECT last_seen_at::text AS at, count(*)::int AS n FROM images WHERE project_id = 1 GROUP BY 1`;
    expect(seen).toEqual([{ at: started, n: LISTED }]);
    const [explicit] = await sql<{ later: boolean }[]>`
      SELECT last_seen_at > ${started}::text::timestamptz AND last_seen_at = (SELECT seen_at FROM image_rows WHERE image_id = ${EXPLICIT.imageId}) AS later
      FROM images WHERE image_id = ${EXPLICIT.imageId}`;
    expect(explicit).toEqual({ later: true });
    expect(await sql`SELECT count(*)::int AS n FROM stale_images`).toEqual([{ n: 0 }]);

    // One image gone from the list, one renamed: the gone one keeps the sighting of the listing that last returned it
    // (written into its row as it leaves the list), the renamed one is seen at its page, the others at the new start.
    const gone = listed[10]!;
    const renamed = listed[20]!;
    fake.deleteImage(gone);
    fake.putImage(renamed, sampleImage(renamed, { name: 'renamed' }));
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', unchanged: LISTED - 1, changed: 1, deleted: 1, failed: 0 });
    const third = await latestListingStart(sql);
    const [goneRow] = await sql<{ last_seen_at: string; seen_at: string; deleted: boolean }[]>`
      SELECT i.last_seen_at::text, r.seen_at::text, i.deleted_at IS NOT NULL AS deleted
      FROM images i JOIN image_rows r USING (project_id, region_id, image_id) WHERE image_id = ${gone.imageId}`;
    expect(goneRow).toEqual({ last_seen_at: started, seen_at: started, deleted: true });
    const [renamedRow] = await sql<{ later: boolean }[]>`
      SELECT last_seen_at > ${third}::text::timestamptz AS later FROM images WHERE image_id = ${renamed.imageId}`;
    expect(renamedRow).toEqual({ later: true });
    expect(await sql`SELECT count(*)::int AS n FROM images WHERE project_id = 1 AND last_seen_at::text = ${third}`).toEqual([
      { n: LISTED - 2 },
    ]);
    expect(await invariantViolations(sql, pipeline.services.queues)).toEqual([]);
  }, 120_000);
});

describe('a crash that empties the listed ids', () => {
  it('ends the open listing incomplete, deletes and confirms nothing, and the next listing is whole again', async () => {
    const postgres = await throwawayPostgres();
    cleanups.push(() => postgres.stop());
    const { fake, pipeline } = await begin({ DATABASE_URL: postgres.url, SYNC_ATTEMPTS: '20' });
    const { sql } = pipeline.services;
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: LISTED + 1, listingsFailed: 0 });

    // The second page waits (503 until cleared) while the first is stored; then Postgres crashes.
    fake.setListFault({ endpoint: 'images', projectId: 1, regionId: 7, offset: 1000 }, { kind: 'status', status: 503 });
    const run = await pipeline.startSync();
    await waitFor('the first page of the listing stored', async () => {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM listing_pages p JOIN listings l ON l.id = p.listing_id
        WHERE l.run_id = ${run.id} AND p.endpoint = 'images' AND p.page = 0 AND p.status = 'done'`;
      return row!.n === 1;
    });
    await postgres.crash();
    await waitFor(
      'Postgres back',
      async () => (await sql`SELECT count(*)::int AS n FROM listing_ids`.catch(() => [{ n: -1 }]))[0]!.n === 0,
    );
    fake.clearFaults();

    const crashed = await pipeline.waitForRun(run, 60_000);
    // The 1,000 ids of the first page were lost: those images record the failure; the second page's 500 were listed.
    expect(crashed).toMatchObject({ status: 'finished', unchanged: 501, changed: 0, deleted: 0, failed: 1000, listingsFailed: 1 });
    const [listing] = await sql<{ status: string; error: string }[]>`
      SELECT status, error FROM listings WHERE run_id = ${run.id}`;
    expect(listing).toEqual({ status: 'incomplete', error: expect.stringContaining('the ids it had listed were lost') });
    expect(fake.requestsByEndpoint.image).toBe(2);
    expect(await sql`SELECT count(*)::int AS n FROM images WHERE deleted_at IS NOT NULL`).toEqual([{ n: 0 }]);
    expect(await sql`SELECT count(*)::int AS n FROM targets WHERE off_list OR left_scope_at IS NOT NULL`).toEqual([{ n: 0 }]);

    expect(await pipeline.sync()).toMatchObject({ status: 'finished', unchanged: LISTED + 1, failed: 0, listingsFailed: 0 });
    expect(await sql`SELECT count(*)::int AS n FROM targets WHERE last_outcome = 'failed'`).toEqual([{ n: 0 }]);
    expect(await invariantViolations(sql, pipeline.services.queues)).toEqual([]);
  }, 180_000);
});
