// Discovery end to end: scopes in the targets file, listed page by page from
// the fake API through the real workers into the real Postgres and Redis.
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, syncThroughKilledWorker, type Pipeline } from './support/pipeline.js';
import { startCli } from './support/cli.js';
import { throwawayPostgres, throwawayRedis, waitFor } from './support/throwaway.js';
import { replaceTargets } from '../src/sql/replaceTargets.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { sampleSize } from '../src/discovery/scope-sample.js';

interface World {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
}

let world: World | undefined;
/** Servers a test started of its own, stopped after the pipeline. */
const servers: Array<{ stop(): Promise<void> }> = [];

afterEach(async () => {
  await world?.pipeline.close();
  await world?.fake.stop();
  await world?.env.cleanup();
  world = undefined;
  for (const server of servers.splice(0)) await server.stop();
});

/** `count` images in project/region, ids sampleImageId(first..), every `bmEvery`-th one bare-metal (0: none). */
function putImages(fake: FakeGcore, projectId: number, regionId: number, first: number, count: number, bmEvery = 0): Triple[] {
  const triples: Triple[] = [];
  for (let n = first; n < first + count; n++) {
    const triple = { projectId, regionId, imageId: sampleImageId(n) };
    const baremetal = bmEvery > 0 && n % bmEvery === 0;
    fake.putImage(triple, sampleImage(triple, baremetal ? { is_baremetal: true, name: `bm-${n}` } : {}));
    triples.push(triple);
  }
  return triples;
}

async function begin(
  targetsYaml: string,
  setUp: (fake: FakeGcore) => void,
  env: Record<string, string> = {},
  noWorker = false,
): Promise<World> {
  const testEnv = await createTestEnv();
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  setUp(fake);
  await fake.start();
  const pipeline = await startPipeline(testEnv, fake.url, `${QUIET_SCHEDULE}\n${targetsYaml}`, { env, noWorker });
  world = { env: testEnv, fake, pipeline };
  return world;
}

const SCOPE_1_7 = 'targets:\n  - { project_id: 1, region_id: 7, discover: {} }\n';

async function counts(w: World) {
  const { sql } = w.pipeline.services;
  const [row] = await sql<{ images: number; live: number; created: number; deleted: number; targets: number }[]>`
    SELECT (SELECT count(*)::int FROM images) AS images, (SELECT count(*)::int FROM images WHERE deleted_at IS NULL) AS live,
      (SELECT count(*)::int FROM image_changes WHERE change_type = 'created') AS created,
      (SELECT count(*)::int FROM image_changes WHERE change_type = 'deleted') AS deleted,
      (SELECT count(*)::int FROM targets) AS targets`;
  return row!;
}

async function listings(w: World) {
  return w.pipeline.services.sql<
    { status: string; expected: number | null; listed: number | null; absent: number | null; error: string | null }[]
  >`
    SELECT status, expected, listed, absent, error FROM listings ORDER BY id`;
}

describe('discovery', () => {
  it('discovers a scope of three pages and its bare-metal images without a single-image GET, then a new and a deleted image', async () => {
    const w = await begin(SCOPE_1_7, (fake) => {
      putImages(fake, 1, 7, 1, 2500);
      putImages(fake, 1, 7, 5001, 40, 1);
    });
    const first = await w.pipeline.sync();
    expect(first).toMatchObject({ status: 'finished', planned: 0, failed: 0, listingsFailed: 0 });
    expect(await counts(w)).toEqual({ images: 2540, live: 2540, created: 2540, deleted: 0, targets: 2540 });
    expect(w.fake.requestsByEndpoint).toMatchObject({ image: 0, images: 3, bmimages: 1 });
    expect(await listings(w)).toEqual([{ status: 'complete', expected: 2540, listed: 2540, absent: 0, error: null }]);
    const [bm] = await w.pipeline.services.sql`SELECT count(*)::int AS n FROM images WHERE is_baremetal`;
    expect(bm!.n).toBe(40);

    // A new image is created at the next listing; a deleted one is confirmed by one GET and marked.
    putImages(w.fake, 1, 7, 9001, 1);
    const gone = { projectId: 1, regionId: 7, imageId: sampleImageId(17) };
    w.fake.deleteImage(gone);
    const second = await w.pipeline.sync();
    expect(second).toMatchObject({ status: 'finished', planned: 2540, unchanged: 2539, deleted: 1, failed: 0, listingsFailed: 0 });
    expect(await counts(w)).toEqual({ images: 2541, live: 2540, created: 2541, deleted: 1, targets: 2541 });
    expect(w.fake.requestsByEndpoint).toMatchObject({ image: 1, images: 6, bmimages: 2 });
    const [deleted] = await w.pipeline.services.sql`
      SELECT deleted_at IS NOT NULL AS deleted FROM images WHERE image_id = ${gone.imageId}`;
    expect(deleted!.deleted).toBe(true);

    // The deletion is kept without another request.
    const third = await w.pipeline.sync();
    expect(third).toMatchObject({ status: 'finished', planned: 2541, unchanged: 2541, deleted: 0, failed: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(1);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('deletes nothing when the second page fails after every retry, and reports the scope as failed', async () => {
    const w = await begin(SCOPE_1_7, (fake) => putImages(fake, 1, 7, 1, 2500), { SYNC_ATTEMPTS: '2' });
    await w.pipeline.sync();
    w.fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(2400) });
    w.fake.setListFault({ endpoint: 'images', offset: 1000 }, { kind: 'status', status: 503 });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 1, deleted: 0 });
    // The pages that answered were stored; the images they did not return (1,000 on the failed page, and the deleted one) record the failure.
    expect(run.failed).toBe(1001);
    const [last] = (await listings(w)).slice(-1);
    expect(last).toMatchObject({ status: 'incomplete', absent: 0 });
    expect(last!.error).toMatch(/^images 1\/7 offset 1000: 503/);
    expect(await counts(w)).toMatchObject({ live: 2500, deleted: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(0);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('notices a server that ignores offset, and deletes nothing', async () => {
    const w = await begin(SCOPE_1_7, (fake) => putImages(fake, 1, 7, 1, 2500));
    await w.pipeline.sync();
    w.fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(2400) });
    w.fake.ignoreOffset = true;
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ listingsFailed: 1, deleted: 0 });
    const [last] = (await listings(w)).slice(-1);
    expect(last).toMatchObject({ status: 'incomplete', absent: 0 });
    expect(last!.error).toContain('does the server honour offset?');
    expect(await counts(w)).toMatchObject({ live: 2500, deleted: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(0);
  });

  it('notices images that change between pages, and deletes nothing', async () => {
    const w = await begin(SCOPE_1_7, (fake) => putImages(fake, 1, 7, 1, 2500));
    await w.pipeline.sync();
    // After the first page, an image of it goes: every later page shifts by one and one image is never listed.
    w.fake.afterListPage({ endpoint: 'images', offset: 0 }, () =>
      w.fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(1) }),
    );
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ listingsFailed: 1, deleted: 0 });
    const [last] = (await listings(w)).slice(-1);
    expect(last).toMatchObject({ status: 'incomplete' });
    expect(await counts(w)).toMatchObject({ live: 2500, deleted: 0 });
  });

  it('does not delete an image that left the filter: it is stored, and no longer refreshed through the scope', async () => {
    const yaml = 'targets:\n  - project_id: 1\n    region_id: 7\n    discover: { visibility: [private], baremetal: false }\n';
    const w = await begin(yaml, (fake) => putImages(fake, 1, 7, 1, 30));
    await w.pipeline.sync();
    const shared = { projectId: 1, regionId: 7, imageId: sampleImageId(5) };
    w.fake.updateImage(shared, { visibility: 'shared' });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', planned: 30, unchanged: 29, changed: 1, deleted: 0, failed: 0 });
    expect(w.fake.requestsByEndpoint).toMatchObject({ image: 1, images: 2, bmimages: 0 });
    const [row] = await w.pipeline.services.sql`
      SELECT i.visibility, i.deleted_at, t.left_scope_at IS NOT NULL AS left FROM images i JOIN targets t USING (project_id, region_id, image_id)
      WHERE i.image_id = ${shared.imageId}`;
    expect(row).toEqual({ visibility: 'shared', deleted_at: null, left: true });
    const changes = await w.pipeline.services
      .sql`SELECT change_type, field FROM image_changes WHERE image_id = ${shared.imageId} ORDER BY id`;
    expect(changes.map((c) => `${c.change_type}:${c.field}`)).toEqual(['created:null', 'updated:visibility']);
    // The next run neither plans nor fetches it.
    const next = await w.pipeline.sync();
    expect(next).toMatchObject({ planned: 29, unchanged: 29 });
    expect(w.fake.requestsByEndpoint.image).toBe(1);
    // Listed by id in the file, it is refreshed again: with its own GET.
    const file = parseTargetsFile(`${yaml}  - { project_id: 1, region_id: 7, image_ids: [${shared.imageId}] }\n`, 'test');
    await replaceTargets(w.pipeline.services.sql, file.targets, file.scopes);
    const pinned = await w.pipeline.sync();
    expect(pinned).toMatchObject({ planned: 30, unchanged: 30 });
    expect(w.fake.requestsByEndpoint.image).toBe(2);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('a count too low, then an empty list, for a 1,500-image region: nothing marked left or deleted, one sample of GETs each', async () => {
    const w = await begin(SCOPE_1_7.replace('{}', '{ baremetal: false }'), (fake) => putImages(fake, 1, 7, 1, 1500));
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    const { sql } = w.pipeline.services;

    // The list says 1,000 and returns 1,000: it agrees with itself, not with the 1,500 stored.
    w.fake.setListLie({ endpoint: 'images', projectId: 1, regionId: 7 }, { kind: 'shortCount', count: 1000 });
    const short = await w.pipeline.sync();
    expect(short).toMatchObject({
      status: 'finished',
      listingsFailed: 1,
      deleted: 0,
      unchanged: 1000 + sampleSize(500),
      failed: 500 - sampleSize(500),
    });
    expect(w.fake.requestsByEndpoint.image).toBe(sampleSize(500));

    w.fake.clearFaults();
    w.fake.setListLie({ endpoint: 'images', projectId: 1, regionId: 7 }, { kind: 'empty' });
    const empty = await w.pipeline.sync();
    expect(empty).toMatchObject({
      status: 'finished',
      listingsFailed: 1,
      deleted: 0,
      unchanged: sampleSize(1500),
      failed: 1500 - sampleSize(1500),
    });
    // 23 + 39 single GETs in all, where believing the lists would have cost 2,000.
    expect(w.fake.requestsByEndpoint.image).toBe(sampleSize(500) + sampleSize(1500));
    expect(w.fake.requestsByEndpoint.image).toBeLessThanOrEqual(150);

    expect(await counts(w)).toMatchObject({ images: 1500, live: 1500, deleted: 0, targets: 1500 });
    const [left] = await sql`SELECT count(*)::int AS n FROM targets WHERE left_scope_at IS NOT NULL`;
    expect(left!.n).toBe(0);
    const recorded = await sql`
      SELECT status, suspect, sampled, sample_contradicted, marked_left, absent, error FROM listings ORDER BY id`;
    expect(recorded.slice(1)).toEqual([
      {
        status: 'incomplete',
        suspect: '1/7 counts 1000 images where 1500 are stored',
        sampled: sampleSize(500),
        sample_contradicted: sampleSize(500),
        marked_left: 0,
        absent: 500,
        error: `suspect: 1/7 counts 1000 images where 1500 are stored; of a sample of ${sampleSize(500)} images it did not return, ${sampleSize(500)} are still in the scope or did not answer: nothing else was confirmed, and nothing marked left`,
      },
      {
        status: 'incomplete',
        suspect: '1/7 answered an empty list where 1500 images are stored',
        sampled: sampleSize(1500),
        sample_contradicted: sampleSize(1500),
        marked_left: 0,
        absent: 1500,
        error: expect.stringMatching(/^suspect: 1\/7 answered an empty list where 1500 images are stored; of a sample of 39 /),
      },
    ]);
    // The images it did not confirm say why in their failure, so a run says what it could not check.
    const [failure] = await sql`SELECT last_error FROM targets WHERE last_outcome = 'failed' LIMIT 1`;
    expect(failure!.last_error).toMatch(/^the listing of its scope was incomplete: suspect: 1\/7 answered an empty list/);
    expect(w.pipeline.logLines.filter((line) => line.includes('suspect listing not believed'))).toHaveLength(2);
    expect(await sql`SELECT * FROM listing_samples`).toEqual([]);
    expect(await invariantViolations(sql, w.pipeline.services.queues)).toEqual([]);

    // An honest listing afterwards takes every image as listed, with no GET.
    w.fake.clearFaults();
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0, unchanged: 1500, failed: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(sampleSize(500) + sampleSize(1500));
  });

  it('believes a suspect listing whose sample finds only deletions: the sample records them, then the rest are confirmed', async () => {
    const w = await begin(SCOPE_1_7.replace('{}', '{ baremetal: false }'), (fake) => putImages(fake, 1, 7, 1, 60));
    await w.pipeline.sync();
    // Every image goes: the empty list is the truth.
    for (let n = 1; n <= 60; n++) w.fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(n) });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 0, deleted: 60, failed: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(60);
    expect(await counts(w)).toMatchObject({ images: 60, live: 0, deleted: 60 });
    const [listing] = await w.pipeline.services.sql`
      SELECT status, suspect, sampled, sample_contradicted, absent, error FROM listings ORDER BY id DESC LIMIT 1`;
    expect(listing).toEqual({
      status: 'complete',
      suspect: '1/7 answered an empty list where 60 images are stored',
      sampled: sampleSize(60),
      sample_contradicted: 0,
      absent: 60,
      error: null,
    });
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('believes nothing when the sample gets no answer: no deletion from an empty list the GETs could not check', async () => {
    const w = await begin(SCOPE_1_7.replace('{}', '{ baremetal: false }'), (fake) => putImages(fake, 1, 7, 1, 60), { SYNC_ATTEMPTS: '1' });
    await w.pipeline.sync();
    for (let n = 1; n <= 60; n++) w.fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(n) });
    w.fake.setFault('all', { kind: 'status', status: 503 });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 1, deleted: 0, failed: 60 });
    expect(w.fake.requestsByEndpoint.image).toBe(sampleSize(60));
    expect(await counts(w)).toMatchObject({ live: 60, deleted: 0 });
    const [listing] = await w.pipeline.services.sql`SELECT status, sample_contradicted FROM listings ORDER BY id DESC LIMIT 1`;
    expect(listing).toEqual({ status: 'incomplete', sample_contradicted: sampleSize(60) });
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('a 200 for an image the listing did not return: out of the filter it leaves, still in it it stays', async () => {
    const yaml = 'targets:\n  - project_id: 1\n    region_id: 7\n    discover: { tag_key_value: { team: platform }, baremetal: false }\n';
    const w = await begin(yaml, (fake) => putImages(fake, 1, 7, 1, 30));
    await w.pipeline.sync();
    const retagged = { projectId: 1, regionId: 7, imageId: sampleImageId(5) };
    const hidden = { projectId: 1, regionId: 7, imageId: sampleImageId(6) };
    w.fake.updateImage(retagged, { tags: [{ key: 'team', value: 'data', read_only: false }] });
    // The list does not return an image that still matches: a lie about one image.
    w.fake.setListLie({ endpoint: 'images' }, { kind: 'omit', ids: [hidden.imageId] });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 0, deleted: 0, failed: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(2);
    const targets = await w.pipeline.services.sql`
      SELECT image_id, left_scope_at IS NOT NULL AS left FROM targets WHERE image_id IN (${retagged.imageId}, ${hidden.imageId}) ORDER BY image_id`;
    expect(targets).toEqual([
      { image_id: retagged.imageId, left: true },
      { image_id: hidden.imageId, left: false },
    ]);
    // Two absences: too few to sample, each judged by the scope.
    const [listing] = await w.pipeline.services
      .sql`SELECT status, suspect, sampled, marked_left, absent FROM listings ORDER BY id DESC LIMIT 1`;
    expect(listing).toEqual({ status: 'complete', suspect: null, sampled: null, marked_left: 1, absent: 2 });
    expect(w.pipeline.logLines.filter((line) => line.includes('kept in its scope') && line.includes(hidden.imageId))).toHaveLength(1);

    // The kept image is still refreshed through its scope at the next listing that returns it.
    w.fake.clearFaults();
    expect(await w.pipeline.sync()).toMatchObject({ planned: 29, unchanged: 29, failed: 0 });
    expect(w.fake.requestsByEndpoint.image).toBe(2);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('keeps an image where the server may read a filter otherwise, and says so once for the scope and filter', async () => {
    const yaml = 'targets:\n  - project_id: 1\n    region_id: 7\n    discover: { tag_key: [Team], baremetal: false }\n';
    const w = await begin(yaml, (fake) => {
      putImages(fake, 1, 7, 1, 3);
      for (let n = 1; n <= 3; n++)
        fake.updateImage(
          { projectId: 1, regionId: 7, imageId: sampleImageId(n) },
          { tags: [{ key: 'Team', value: 'x', read_only: false }] },
        );
    });
    await w.pipeline.sync();
    expect(await counts(w)).toMatchObject({ images: 3, targets: 3 });
    // The tag key's case changes: this worker matches keys exactly, a server might not; the list (exact, as the fake is) drops them.
    for (let n = 1; n <= 3; n++)
      w.fake.updateImage(
        { projectId: 1, regionId: 7, imageId: sampleImageId(n) },
        { tags: [{ key: 'team', value: 'x', read_only: false }] },
      );
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 0, changed: 3, failed: 0 });
    const [left] = await w.pipeline.services.sql`SELECT count(*)::int AS n FROM targets WHERE left_scope_at IS NOT NULL`;
    expect(left!.n).toBe(0);
    const [unsure] = await w.pipeline.services.sql`SELECT count(*)::int AS n FROM targets WHERE filter_unsure_at IS NOT NULL`;
    expect(unsure!.n).toBe(3);
    expect(w.pipeline.logLines.filter((line) => line.includes('the server may read this filter otherwise'))).toHaveLength(1);
    // Not returned again, they make no listing suspect: each is confirmed again, and stays.
    const again = await w.pipeline.sync();
    expect(again).toMatchObject({ status: 'finished', listingsFailed: 0, unchanged: 3 });
    const [listing] = await w.pipeline.services.sql`SELECT suspect FROM listings ORDER BY id DESC LIMIT 1`;
    expect(listing).toEqual({ suspect: null });
    expect(w.fake.requestsByEndpoint.image).toBe(6);
    // Listed again (the key's case back), they are no longer unsure: a listing that drops them later is judged as for any image.
    for (let n = 1; n <= 3; n++)
      w.fake.updateImage(
        { projectId: 1, regionId: 7, imageId: sampleImageId(n) },
        { tags: [{ key: 'Team', value: 'x', read_only: false }] },
      );
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0, changed: 3, failed: 0 });
    const [cleared] = await w.pipeline.services.sql`SELECT count(*)::int AS n FROM targets WHERE filter_unsure_at IS NOT NULL`;
    expect(cleared!.n).toBe(0);
  });

  it('a projects list that omits a project with tracked images marks none of them left', async () => {
    const yaml = 'targets:\n  - { project_id: all, region_id: [7], discover: { baremetal: false } }\n';
    const w = await begin(yaml, (fake) => {
      fake.putProject({ id: 1 });
      fake.putProject({ id: 2 });
      putImages(fake, 1, 7, 1, 30);
      putImages(fake, 2, 7, 101, 30);
    });
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    w.fake.setListLie({ endpoint: 'projects' }, { kind: 'omit', ids: [2] });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', listingsFailed: 1, deleted: 0, failed: 30 - sampleSize(30) });
    expect(w.fake.requestsByEndpoint.image).toBe(sampleSize(30));
    const [left] = await w.pipeline.services.sql`SELECT count(*)::int AS n FROM targets WHERE left_scope_at IS NOT NULL`;
    expect(left!.n).toBe(0);
    const [listing] = await w.pipeline.services.sql`SELECT status, suspect, sample_contradicted FROM listings ORDER BY id DESC LIMIT 1`;
    expect(listing).toEqual({
      status: 'incomplete',
      suspect: '2/7 holds 30 stored images but was not listed (missing from the projects or regions list)',
      sample_contradicted: sampleSize(30),
    });
    expect(await counts(w)).toMatchObject({ live: 60, deleted: 0 });
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('lists every project and every active region for `all`, skipping deleted projects and inactive regions', async () => {
    const yaml = 'targets:\n  - { project_id: all, region_id: all, discover: {} }\n';
    const w = await begin(yaml, (fake) => {
      fake.putProject({ id: 1, name: 'one' });
      fake.putProject({ id: 2, name: 'two' });
      fake.putProject({ id: 3, name: 'gone', deleted_at: '2026-01-01T00:00:00Z', state: 'DELETED' });
      fake.putRegion({ id: 7, display_name: 'Luxembourg', state: 'ACTIVE', has_baremetal: true });
      fake.putRegion({ id: 8, display_name: 'Frankfurt', state: 'ACTIVE', has_baremetal: false });
      fake.putRegion({ id: 9, display_name: 'Paris', state: 'INACTIVE', has_baremetal: true });
      putImages(fake, 1, 7, 1, 10, 5);
      putImages(fake, 1, 8, 101, 10);
      putImages(fake, 2, 7, 201, 10);
      putImages(fake, 3, 7, 301, 10);
      putImages(fake, 1, 9, 401, 10);
    });
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    const seen = await w.pipeline.services.sql<{ key: string; n: number }[]>`
      SELECT project_id || '/' || region_id AS key, count(*)::int AS n FROM images GROUP BY 1 ORDER BY 1`;
    expect(seen).toEqual([
      { key: '1/7', n: 10 },
      { key: '1/8', n: 10 },
      { key: '2/7', n: 10 },
    ]);
    // Two projects times two regions, and bare-metal lists only where the region has them.
    expect(w.fake.requestsByEndpoint).toMatchObject({ projects: 1, regions: 1, images: 4, bmimages: 2, image: 0 });
  });

  it('keeps a triple that is both explicit and discovered as one target, refreshed by its own GET too', async () => {
    const explicit = sampleImageId(3);
    const yaml = `targets:\n  - { project_id: 1, region_id: 7, image_ids: [${explicit}] }\n  - { project_id: 1, region_id: 7, discover: { baremetal: false } }\n`;
    const w = await begin(yaml, (fake) => putImages(fake, 1, 7, 1, 20));
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', planned: 1, failed: 0 });
    expect(await counts(w)).toMatchObject({ images: 20, created: 20, targets: 20 });
    const [target] = await w.pipeline.services
      .sql`SELECT explicit, scope_key IS NOT NULL AS scoped FROM targets WHERE image_id = ${explicit}`;
    expect(target).toEqual({ explicit: true, scoped: true });
    expect(w.fake.requestsByEndpoint).toMatchObject({ image: 1, images: 1 });
  });

  it('shares the pages of a large scope between two worker processes', async () => {
    const w = await begin(SCOPE_1_7.replace('{}', '{ baremetal: false }'), (fake) => putImages(fake, 1, 7, 1, 8000), {}, true);
    w.fake.latencyMs = 100;
    const workers = [0, 1].map(() => startCli(['worker'], { ...w.env.env, GCORE_BASE_URL: w.fake.url, LOG_LEVEL: 'debug' }));
    try {
      const run = await w.pipeline.waitForRun(await w.pipeline.startSync(), 120_000);
      expect(run).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
      expect(await counts(w)).toMatchObject({ images: 8000, created: 8000 });
      const pagesBy = (out: string) => out.split('\n').filter((line) => line.includes('"msg":"listing page"')).length;
      const pages = await Promise.all(workers.map(async (p) => pagesBy((await p.stop()).stdout)));
      expect(pages[0]! + pages[1]!).toBe(8);
      expect(pages[0]).toBeGreaterThan(0);
      expect(pages[1]).toBeGreaterThan(0);
    } finally {
      await Promise.all(workers.map((p) => p.stop()));
    }
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('stores the rest of a page when one listed image is invalid, and records that image alone', async () => {
    const w = await begin(SCOPE_1_7, (fake) => {
      const [bad] = putImages(fake, 1, 7, 1, 1200);
      fake.updateImage(bad!, { created_at: '2023-02-30T00:00:00Z' });
    });
    const run = await w.pipeline.sync();
    // The run counts what its listing found: 1,199 images created, the invalid one failed.
    expect(run).toMatchObject({
      status: 'finished',
      discovered: 1200,
      listed: 1200,
      changed: 1199,
      created: 1199,
      failed: 1,
      listingsFailed: 0,
    });
    expect(await counts(w)).toMatchObject({ images: 1199, created: 1199, targets: 1200 });
    const [failure] = await w.pipeline.services.sql`SELECT image_id, error_class, message FROM sync_failures`;
    expect(failure).toMatchObject({ image_id: sampleImageId(1), error_class: 'InvalidPayloadError' });
    expect(failure!.message).toContain('created_at');
    expect(await listings(w)).toEqual([{ status: 'complete', expected: 1200, listed: 1200, absent: 0, error: null }]);
    // The next run plans it, and it fails again for the same reason rather than passing unseen.
    const again = await w.pipeline.sync();
    expect(again).toMatchObject({ planned: 1200, unchanged: 1199, failed: 1 });
  });

  it('fails the listing on a page that is not a list, or that counts more images than one region may hold', async () => {
    const w = await begin(SCOPE_1_7, (fake) => putImages(fake, 1, 7, 1, 10));
    w.fake.setListFault({ endpoint: 'images' }, { kind: 'malformed' }, 1);
    w.fake.setListFault({ endpoint: 'bmimages' }, { kind: 'status', status: 200, body: '{"count": 1000000000, "results": []}' }, 1);
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', planned: 0, listingsFailed: 1 });
    const [listing] = await listings(w);
    expect(listing).toMatchObject({ status: 'incomplete', absent: 0 });
    expect(listing!.error).toMatch(/^images 1\/7 offset 0: 200 with a body that is not a list page/);
    const pages = await w.pipeline.services.sql`SELECT endpoint, status, error FROM listing_pages ORDER BY part, page`;
    expect(pages.map((p) => [p.endpoint, p.status])).toEqual([
      ['images', 'failed'],
      ['bmimages', 'failed'],
      // The scope's usage part, whose answer holds no image.
      ['usage', 'done'],
    ]);
    expect(pages[1]!.error).toBe('the API counts 1000000000 images, more than the 10000000 one project and region may hold here');
    expect(await counts(w)).toMatchObject({ images: 0, targets: 0 });
  });

  it('finishes a listing whose worker was killed with SIGKILL mid-page, through another worker', async () => {
    const w = await begin(
      SCOPE_1_7.replace('{}', '{ baremetal: false }'),
      (fake) => putImages(fake, 1, 7, 1, 4000),
      { SYNC_JOB_LOCK_MS: '2000' },
      true,
    );
    const env = { ...w.env.env, GCORE_BASE_URL: w.fake.url, SYNC_JOB_LOCK_MS: '2000' };
    // Killed while it holds pages: at least one answered, more in flight.
    const done = await syncThroughKilledWorker(w.pipeline, w.fake, env, () => w.fake.requestsByEndpoint.images >= 3);
    expect(done).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await counts(w)).toMatchObject({ images: 4000, created: 4000, targets: 4000 });
    expect(await listings(w)).toEqual([{ status: 'complete', expected: 4000, listed: 4000, absent: 0, error: null }]);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('lists a scope at every tick of its schedule: a new image shows up at the next tick as created', async () => {
    const yaml = 'targets:\n  - { project_id: 1, region_id: 7, discover: { baremetal: false }, schedule: { every: 1s } }\n';
    const w = await begin(yaml, (fake) => putImages(fake, 1, 7, 1, 5));
    const created = async () =>
      (await w.pipeline.services.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM image_changes WHERE change_type = 'created'`)[0]!.n;
    await expect.poll(created, { timeout: 20_000, interval: 100 }).toBe(5);
    putImages(w.fake, 1, 7, 6, 1);
    await expect.poll(created, { timeout: 20_000, interval: 100 }).toBe(6);
    const [run] = await w.pipeline.services.sql`
      SELECT kind, schedule_key IS NOT NULL AS grouped FROM sync_runs r JOIN listings l ON l.run_id = r.id ORDER BY r.id LIMIT 1`;
    expect(run).toEqual({ kind: 'scheduled', grouped: true });
  });

  it.each(['Postgres', 'Redis'] as const)('completes a listing through a %s restart in the middle of it', async (service) => {
    const server = service === 'Postgres' ? await throwawayPostgres() : await throwawayRedis();
    servers.push(server);
    const url: Record<string, string> = { [service === 'Postgres' ? 'DATABASE_URL' : 'REDIS_URL']: server.url };
    const w = await begin(SCOPE_1_7.replace('{}', '{ baremetal: false }'), (fake) => putImages(fake, 1, 7, 1, 4000), {
      ...url,
      SYNC_JOB_LOCK_MS: '2000',
    });
    w.fake.latencyMs = 150;
    const run = await w.pipeline.startSync();
    await waitFor('two pages', () => w.fake.requestsByEndpoint.images >= 2);
    if ('restart' in server) await server.restart();
    else {
      await server.kill();
      await server.start();
    }
    const done = await w.pipeline.waitForRun(run, 60_000);
    expect(done).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await counts(w)).toMatchObject({ images: 4000, live: 4000, created: 4000, targets: 4000 });
    expect(await listings(w)).toEqual([{ status: 'complete', expected: 4000, listed: 4000, absent: 0, error: null }]);
    expect(await invariantViolations(w.pipeline.services.sql, w.pipeline.services.queues)).toEqual([]);
  });
});
