// Every kind of API answer, through the real worker, ending in correct data or
// a clearly recorded failure: never in wrong data.
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { runCli, type CliResult } from './support/cli.js';
import { QUIET_SCHEDULE, startPipeline, writeTargetsFile, type Pipeline } from './support/pipeline.js';
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
    // The batch's other images go back to the queue once the rejection is handled. Whichever state the queue shows
    // them in when looked at (a worker may be taking the job as it pauses), they are queued, unattempted, and asked for no more.
    const queued = async () =>
      (await pipeline.services.queues.refresh.getJobs(['waiting', 'prioritized', 'delayed', 'active']))
        .flatMap((job) => job.data.items)
        .map((item) => [item.imageId, item.attempt])
        .sort();
    const handedBack = JSON.stringify([
      [B.imageId, 0],
      [C.imageId, 0],
    ]);
    // A worker taking the job as it pauses hands the images back again under a new job, which claims them a moment
    // before it is queued: the hand-back is done once the images are queued under the very job that claims them.
    await waitFor(
      'the other images to be handed back, unattempted, under the job that claims them',
      async () =>
        JSON.stringify(await queued()) === handedBack &&
        (await invariantViolations(pipeline.services.sql, pipeline.services.queues)).length === 0,
    );
    expect(fake.requestCount).toBe(1);
    expect(pipeline.logLines.filter((l) => l.includes('rejected GCORE_API_KEY'))).toHaveLength(1);
  });
});

/**
 * `sync --wait` through the built CLI (npm run build first), against a fake
 * API whose every answer to `triples` is `fault`, with the workers' default
 * rate and cap unless `settings` says otherwise.
 */
async function syncThroughFaults(
  triples: Triple[],
  targets: string,
  fault: (fake: FakeGcore) => void,
  settings: Record<string, string> = {},
): Promise<{ fake: FakeGcore; result: CliResult; failures: Array<Record<string, unknown>>; listings: Array<Record<string, unknown>> }> {
  const testEnv = await createTestEnv();
  cleanups.push(() => testEnv.cleanup());
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  fault(fake);
  const result = await runCli(['sync', '--wait'], {
    ...testEnv.env,
    TARGETS_FILE: await writeTargetsFile(`${QUIET_SCHEDULE}\ntargets:\n${targets}`),
    GCORE_BASE_URL: fake.url,
    SYNC_RATE_LIMIT_PER_SECOND: '10',
    ...settings,
  });
  const sql = postgres(testEnv.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    return {
      fake,
      result,
      failures: await sql`SELECT image_id, status, error_class, message, attempts FROM sync_failures ORDER BY id`,
      listings: await sql`SELECT status, error FROM listings ORDER BY id`,
    };
  } finally {
    await sql.end();
  }
}

describe('a 429 asking for more than the cap (SYNC_RATE_LIMIT_MAX_WAIT_SECONDS, 900 s)', () => {
  const ten: Triple[] = Array.from({ length: 10 }, (_, n) => ({ projectId: 4, regionId: 2, imageId: sampleImageId(100 + n) }));
  const tenTargets = `  - { project_id: 4, region_id: 2, image_ids: [${ten.map((t) => t.imageId).join(', ')}] }\n`;
  const cap = 'more than the 900 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS';

  // The test's timeout is the minute the refreshes must end in; the old limiter held them for the cap.
  it.each([
    ['99999999', '99999999 s'],
    ['1e400', 'without limit'],
    ['Infinity', 'without limit'],
    ['Fri, 01 Jan 2100 00:00:00 GMT', String.raw`\d{10} s`],
  ])(
    'Retry-After: %s ends `sync --wait` of 10 images with 10 failures that say what was asked, one request sent',
    async (retryAfter, asked) => {
      // One request at a time, in batches of 3: nine refreshes, in four batches, would wait through the pause.
      const {
        fake,
        result,
        failures: recorded,
      } = await syncThroughFaults(ten, tenTargets, (f) => f.setFault('all', { kind: 'rateLimited', retryAfter }), {
        SYNC_CONCURRENCY: '1',
        SYNC_BATCH_SIZE: '3',
      });
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr.trim().split('\n').at(-1)).toBe('run 1: 10/10 refreshed: 0 changed, 0 unchanged, 0 deleted, 10 failed');
      expect(fake.requestsByEndpoint.image).toBe(1);
      expect(recorded.map((f) => f.image_id).sort()).toEqual(ten.map((t) => t.imageId).sort());
      const said = new RegExp(`Gcore asked to wait ${asked}, ${cap}`);
      for (const failure of recorded) expect(failure.message).toMatch(said);
      expect(recorded.map((f) => [f.error_class, f.status, f.attempts]).sort()).toEqual([
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['PausedPastCapError', null, 1],
        ['RateLimitedError', 429, 1],
      ]);
      expect(recorded.find((f) => f.error_class === 'RateLimitedError')!.message).toMatch(
        new RegExp(`^429: Too many requests \\(Gcore asked to wait ${asked}, ${cap}\\)$`),
      );
      expect(recorded.filter((f) => f.error_class === 'PausedPastCapError').map((f) => f.message)).toEqual(
        Array.from({ length: 9 }, () =>
          expect.stringMatching(
            new RegExp(`^request not sent: Gcore asked to wait ${asked}, ${cap}; the account's requests are held back for \\d+ s more$`),
          ),
        ),
      );
    },
    60_000,
  );

  it('a Retry-After within the cap is waited out, and the refreshes succeed', async () => {
    const {
      fake,
      result,
      failures: recorded,
    } = await syncThroughFaults(ten, tenTargets, (f) => f.setFault('all', { kind: 'rateLimited', retryAfter: '2' }, 2), {
      SYNC_CONCURRENCY: '1',
      SYNC_BATCH_SIZE: '3',
      SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '2',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      'run 1: 10/10 refreshed: 10 changed (10 created), 0 unchanged, 0 deleted, 0 failed',
    );
    expect(recorded).toEqual([]);
    expect(fake.requestsByEndpoint.image).toBe(12);
    // Each 429 asked for the whole cap: no request went out before it had passed.
    const [first, second, third] = fake.requestTimes;
    expect(second! - first!).toBeGreaterThanOrEqual(1900);
    expect(third! - second!).toBeGreaterThanOrEqual(1900);
  }, 60_000);

  it("a scope's listing answered so ends at once as an incomplete listing saying what was asked", async () => {
    const { result, listings } = await syncThroughFaults(
      ten,
      '  - { project_id: 4, region_id: 2, discover: { baremetal: false } }\n',
      (f) => f.setListFault({ endpoint: 'images', projectId: 4, regionId: 2 }, { kind: 'rateLimited', retryAfter: '99999999' }),
    );
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      'run 1: 0/0 refreshed: 0 changed, 0 unchanged, 0 deleted, 0 failed; 1 scope listings incomplete (nothing deleted or confirmed there)',
    );
    expect(listings).toEqual([{ status: 'incomplete', error: expect.stringContaining(`Gcore asked to wait 99999999 s, ${cap}`) }]);
  }, 60_000);

  it('the audit-log follower answered so tries again at its next poll, failing at once while the pause lasts, then reads on', async () => {
    const { fake, pipeline } = await setUp({ AUDIT_LOG_POLL_SECONDS: '1', SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '10' });
    fake.setListFault({ endpoint: 'user_actions' }, { kind: 'rateLimited', retryAfter: '99999999' }, 1);
    const failedPolls = () =>
      pipeline.logLines
        .map((l) => JSON.parse(l))
        .filter((e) => e.msg === 'audit log: poll failed; will try again')
        .map((e) => e.error);
    await waitFor('a poll held back by the pause', () => failedPolls().some((error) => error.startsWith('request not sent')));
    expect(failedPolls()[0]).toBe('429: Too many requests');
    expect(failedPolls()[1]).toMatch(
      /^request not sent: Gcore asked to wait 99999999 s, more than the 10 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS; the account's requests are held back for \d+ s more$/,
    );
    expect(fake.requestsByEndpoint.user_actions).toBe(1);
    // Once the 10 s pause has passed, a poll is sent again and read.
    await waitFor('a poll after the pause', () => fake.requestsByEndpoint.user_actions >= 2, 60_000);
    await waitFor(
      'the poll to be read',
      async () => (await pipeline.services.sql`SELECT 1 FROM audit_log_cursors WHERE last_error IS NULL`).length === 1,
    );
  }, 90_000);
});
