// Every kind of API answer, through the real worker, ending in correct data or
// a clearly recorded failure: never in wrong data.
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const triples: Triple[] = [1, 2, 3].map((n) => ({ projectId: 4, regionId: 2, imageId: sampleImageId(n) }));
const [A, B, C] = triples as [Triple, Triple, Triple];
const targetsYaml = `${QUIET_SCHEDULE}
targets:
  - { project_id: 4, region_id: 2, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`;

const cleanups: Array<() => Promise<unknown>> = [];
const pipelines: Pipeline[] = [];
afterEach(async () => {
  // Whatever the fault did, the history stays sound.
  for (const pipeline of pipelines.splice(0))
    expect(await invariantViolations(pipeline.services.sql, pipeline.services.queues)).toEqual([]);
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setUp(env: Record<string, string> = {}): Promise<{ fake: FakeGcore; pipeline: Pipeline }> {
  const testEnv = await createTestEnv();
  cleanups.push(() => testEnv.cleanup());
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  const pipeline = await startPipeline(testEnv, fake.url, targetsYaml, { env });
  cleanups.push(() => pipeline.close());
  pipelines.push(pipeline);
  return { fake, pipeline };
}

/** Everything a report could see, to prove a failure changed none of it. */
async function storedState(pipeline: Pipeline) {
  const sql = pipeline.services.sql;
  return {
    images: await sql`SELECT image_id, name, content_hash, deleted_at, last_changed_at FROM images ORDER BY image_id`,
    versions: await sql`SELECT id, image_id, valid_from, valid_to, content_hash FROM image_versions ORDER BY id`,
    changes: await sql`SELECT id FROM image_changes ORDER BY id`,
    tags: await sql`SELECT * FROM image_tags ORDER BY image_id, key`,
  };
}

async function failures(pipeline: Pipeline) {
  return pipeline.services.sql`SELECT image_id, status, error_class, message, attempts FROM sync_failures ORDER BY id`;
}

describe('API faults', () => {
  it('a bare 404 for every image is a failure, never a deletion', async () => {
    const { fake, pipeline } = await setUp({ SYNC_ATTEMPTS: '1' });
    await pipeline.sync();
    const before = await storedState(pipeline);
    fake.setFault('all', { kind: 'bare404' });
    expect(await pipeline.sync()).toMatchObject({ planned: 3, failed: 3, deleted: 0, changed: 0 });
    expect(await storedState(pipeline)).toEqual(before);
    const [deleted] = await pipeline.services.sql`
      SELECT (SELECT count(*)::int FROM images WHERE deleted_at IS NOT NULL) AS images,
             (SELECT count(*)::int FROM image_changes WHERE change_type = 'deleted') AS changes`;
    expect(deleted).toEqual({ images: 0, changes: 0 });
    expect((await failures(pipeline)).map((f) => [f.error_class, f.status, f.attempts])).toEqual([
      ['RouteNotFoundError', 404, 1],
      ['RouteNotFoundError', 404, 1],
      ['RouteNotFoundError', 404, 1],
    ]);
  });

  it('an image the API has never had is recorded on its target as not existing, with no history', async () => {
    const { fake, pipeline } = await setUp();
    fake.deleteImage(C);
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 2, deleted: 1, failed: 0 });
    const sql = pipeline.services.sql;
    expect(await sql`SELECT last_outcome, last_status, last_error FROM targets WHERE image_id = ${C.imageId}`).toEqual([
      { last_outcome: 'deleted', last_status: 404, last_error: 'the API says this image does not exist (404 NotFoundError)' },
    ]);
    expect(await sql`SELECT count(*)::int AS n FROM images WHERE image_id = ${C.imageId}`).toEqual([{ n: 0 }]);
    expect(await sql`SELECT count(*)::int AS n FROM image_changes WHERE image_id = ${C.imageId}`).toEqual([{ n: 0 }]);
  });

  it('malformed JSON, a body that does not fit, or another id: recorded with an excerpt, last good state kept', async () => {
    const { fake, pipeline } = await setUp();
    await pipeline.sync();
    const before = await storedState(pipeline);
    fake.setFault(A, { kind: 'malformed' });
    fake.updateImage(B, { min_ram: 'lots', name: 'should-not-be-stored' });
    fake.updateImage(C, { id: 'someone-else', name: 'should-not-be-stored' });
    expect(await pipeline.sync()).toMatchObject({ planned: 3, failed: 3 });
    expect(await storedState(pipeline)).toEqual(before);
    const recorded = await failures(pipeline);
    expect(recorded.map((f) => [f.image_id, f.error_class, f.status, f.attempts])).toEqual(
      expect.arrayContaining([
        [A.imageId, 'MalformedAnswerError', 200, 1],
        [B.imageId, 'InvalidPayloadError', 200, 1],
        [C.imageId, 'InvalidPayloadError', 200, 1],
      ]),
    );
    const byImage = Object.fromEntries(recorded.map((f) => [f.image_id, f.message]));
    expect(byImage[A.imageId]).toBe('200 with a body that is not JSON: {"id": "truncated');
    expect(byImage[B.imageId]).toMatch(/^answer does not fit the image schema: min_ram: expected number, received string; body: \{"id":"/);
    expect(byImage[C.imageId]).toMatch(
      /^answer is for image "someone-else", not the requested 00000000-0000-4000-8000-000000000003; body: /,
    );
  });

  it('5xx answers are retried with backoff and succeed when the API recovers', async () => {
    const { fake, pipeline } = await setUp({ SYNC_ATTEMPTS: '3' });
    fake.setFault(A, { kind: 'status', status: 502 }, 2);
    fake.setFault(B, { kind: 'status', status: 403, body: '{"exception_class":"ForbiddenError","message":"no capacity"}' }, 1);
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 3, failed: 0 });
    expect(await failures(pipeline)).toEqual([]);
    expect(fake.requestCount).toBe(6);
    const retries = pipeline.logLines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'refresh attempt failed; will retry');
    expect(retries.map((e) => [e.image_id, e.attempt, e.status])).toEqual(
      expect.arrayContaining([
        [A.imageId, 1, 502],
        [A.imageId, 2, 502],
        [B.imageId, 1, 403],
      ]),
    );
  });

  it('after the last attempt a transient error is recorded; x-should-retry: false stops retries at once', async () => {
    const { fake, pipeline } = await setUp({ SYNC_ATTEMPTS: '2' });
    fake.setFault(A, { kind: 'status', status: 500 });
    fake.setFault(B, { kind: 'status', status: 503, headers: { 'x-should-retry': 'false' } });
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 1, failed: 2 });
    expect((await failures(pipeline)).map((f) => [f.image_id, f.error_class, f.status, f.message, f.attempts])).toEqual(
      expect.arrayContaining([
        [A.imageId, 'TransientApiError', 500, '500: injected 500', 2],
        [B.imageId, 'TransientApiError', 503, '503: injected 503', 1],
      ]),
    );
  });

  it('429 pauses the whole queue for Retry-After without spending attempts', async () => {
    const { fake, pipeline } = await setUp({ SYNC_ATTEMPTS: '1', SYNC_CONCURRENCY: '1' });
    fake.setFault('all', { kind: 'rateLimited', retryAfter: '1' }, 2);
    const started = Date.now();
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 3, failed: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(fake.requestCount).toBe(5);
    expect(fake.requestsPerSecond.size).toBeGreaterThanOrEqual(3);
    expect(await failures(pipeline)).toEqual([]);
    const pauses = pipeline.logLines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'rate limited by the API: pausing the queue');
    expect(pauses.map((e) => e.wait_ms)).toEqual([1000, 1000]);
  });

  it('401 is recorded once, not retried, and stops this worker taking refreshes', async () => {
    const { fake, pipeline } = await setUp({ SYNC_ATTEMPTS: '3', SYNC_CONCURRENCY: '1' });
    fake.setFault('all', { kind: 'unauthorized' });
    await pipeline.startSync();
    await waitFor('the rejected key to be logged', () => pipeline.logLines.some((l) => l.includes('rejected GCORE_API_KEY')));
    expect(await failures(pipeline)).toEqual([expect.objectContaining({ status: 401, error_class: 'AuthenticationError', attempts: 1 })]);
    expect(fake.requestCount).toBe(1);
    // The batch's other images go back to the queue once the rejection is handled.
    const waiting = async () => (await pipeline.services.queues.refresh.getWaiting()).flatMap((job) => job.data.items);
    await waitFor('the other images to be handed back', async () => (await waiting()).length === 2);
    const handedBack = await waiting();
    expect(handedBack.map((item) => [item.imageId, item.attempt]).sort()).toEqual([
      [B.imageId, 0],
      [C.imageId, 0],
    ]);
    expect(pipeline.logLines.filter((l) => l.includes('rejected GCORE_API_KEY'))).toHaveLength(1);
  });
});
