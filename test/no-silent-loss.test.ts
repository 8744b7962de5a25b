// Every refresh ends in stored data or a recorded failure, one bad image never
// harms another, and the key never leaves the process: hostile answers through
// the real worker, Postgres and Redis.
import { UnrecoverableError } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { Triple } from '../src/interfaces.js';
import { invariantViolations } from './support/invariants.js';
import { startScenario, withWorker, type Scenario } from './support/pipeline.js';

const triplesOf = (count: number): Triple[] =>
  Array.from({ length: count }, (_, n) => ({ projectId: 3, regionId: 9, imageId: sampleImageId(n + 1) }));

const scenarios: Scenario[] = [];
async function scenario(count: number, env: Record<string, string> = {}, noWorker = false): Promise<Scenario> {
  const started = await startScenario(triplesOf(count), { env, noWorker });
  scenarios.push(started);
  return started;
}
afterEach(async () => {
  for (const s of scenarios.splice(0)) {
    expect(await invariantViolations(s.pipeline.services.sql, s.pipeline.services.queues)).toEqual([]);
    await s.close();
  }
});

async function failures(s: Scenario) {
  return s.pipeline.services.sql<{ image_id: string; status: number | null; error_class: string; message: string; attempts: number }[]>`
    SELECT image_id, status, error_class, message, attempts FROM sync_failures ORDER BY image_id`;
}

/** Every row of every table, as text: where a secret would show if it had leaked into Postgres. */
async function everyStoredText(s: Scenario): Promise<string> {
  const { sql } = s.pipeline.services;
  const tables = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
  const texts = await Promise.all(
    tables.map(({ name }) => sql<{ text: string | null }[]>`SELECT string_agg(t::text, ' ') AS text FROM ${sql(name)} t`),
  );
  return texts.map(([row]) => row?.text ?? '').join('\n');
}

describe('nothing lost in silence', () => {
  it('a batch of 30 where Postgres refuses one image and another carries NUL and big integers: 29 stored, 1 failure', async () => {
    const s = await scenario(30);
    const triples = triplesOf(30);
    expect(await s.pipeline.sync()).toMatchObject({ changed: 30, failed: 0 });
    // A value Postgres refuses: made real by a constraint, as a column type or a trigger would refuse it.
    await s.pipeline.services.sql`ALTER TABLE image_rows ADD CONSTRAINT refuse_poison CHECK (name <> 'poison')`;
    triples.forEach((triple, n) => s.fake.updateImage(triple, { name: `renamed-${n}` }));
    s.fake.updateImage(triples[4]!, { name: 'poison' });
    s.fake.updateImage(triples[8]!, { name: 'odd', description: 'nul\u0000here', min_ram: 4294967296, display_order: 3000000000 });
    expect(await s.pipeline.sync()).toMatchObject({ planned: 30, changed: 29, failed: 1, unchanged: 0 });
    const [failure] = await failures(s);
    expect(failure).toMatchObject({ image_id: triples[4]!.imageId, status: 200, error_class: 'UnstorableImageError', attempts: 1 });
    expect(failure!.message).toContain('violates check constraint "refuse_poison"');
    const rows = await s.pipeline.services.sql`
      SELECT image_id, name, description, min_ram, display_order FROM images WHERE image_id IN (${triples[4]!.imageId}, ${triples[8]!.imageId}, ${triples[0]!.imageId})
      ORDER BY image_id`;
    expect(rows).toEqual([
      { image_id: triples[0]!.imageId, name: 'renamed-0', description: null, min_ram: 1024, display_order: null },
      { image_id: triples[4]!.imageId, name: sampleImage(triples[4]!).name, description: null, min_ram: 1024, display_order: null },
      { image_id: triples[8]!.imageId, name: 'odd', description: 'nul\uFFFDhere', min_ram: 4294967296, display_order: 3000000000 },
    ]);
    const warnings = s.pipeline.logLines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'stored with a warning');
    expect(warnings.map((e) => [e.image_id, e.warning])).toEqual([
      [triples[8]!.imageId, 'description: NUL or lone surrogate characters stored as U+FFFD (Postgres cannot hold them)'],
    ]);
  });

  it('an error body that quotes the key, with NUL bytes, leaves no trace of the key in any table or log line', async () => {
    const s = await scenario(4, { SYNC_ATTEMPTS: '1' });
    const key = s.env.env.GCORE_API_KEY!;
    const [a, b, c, d] = triplesOf(4) as [Triple, Triple, Triple, Triple];
    const echo = `debug: headers={authorization=APIKey ${key}} host=api`;
    s.fake.setFault(a, { kind: 'status', status: 500, body: `\u0000\u001f\u008b gzip ${echo}` });
    s.fake.setFault(b, { kind: 'status', status: 404, body: `<html>${echo}</html>` });
    s.fake.setFault(c, { kind: 'status', status: 200, body: `not json ${encodeURIComponent(key)} ${echo}` });
    // A JSON answer that spells the key with escapes, inside a field that would be stored.
    const escaped = [...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    s.fake.setFault(d, {
      kind: 'status',
      status: 200,
      body: JSON.stringify(sampleImage(d, { description: 'KEY' })).replace('"KEY"', `"${escaped}"`),
    });
    expect(await s.pipeline.sync()).toMatchObject({ planned: 4, changed: 1, failed: 3 });
    const recorded = await failures(s);
    expect(recorded.map((f) => [f.image_id, f.error_class])).toEqual([
      [a.imageId, 'TransientApiError'],
      [b.imageId, 'RouteNotFoundError'],
      [c.imageId, 'MalformedAnswerError'],
    ]);
    for (const f of recorded) expect(f.message).toContain('APIKey [redacted]');
    const [stored] = await s.pipeline.services
      .sql`SELECT description, raw->>'description' AS raw FROM images WHERE image_id = ${d.imageId}`;
    expect(stored).toEqual({ description: '[redacted]', raw: '[redacted]' });
    const forms = [key, encodeURIComponent(key), JSON.stringify(key).slice(1, -1)];
    const everything = `${await everyStoredText(s)}\n${s.pipeline.logLines.join('\n')}`;
    for (const form of forms) expect(everything.includes(form)).toBe(false);
  });

  it('keeps numbers exactly in raw, tag keys named like object properties as data, and refuses impossible dates', async () => {
    const s = await scenario(2, { SYNC_ATTEMPTS: '1' });
    const [a, b] = triplesOf(2) as [Triple, Triple];
    const body = JSON.stringify(
      sampleImage(a, {
        tags: [
          { key: 'constructor', value: 'c', read_only: false },
          { key: '__proto__', value: 'p', read_only: true },
          { key: 'toString', value: 't', read_only: false },
        ],
      }),
    ).replace('{', '{"big":12345678901234567890123,"huge":1e400,"tiny":1e-400,');
    s.fake.setFault(a, { kind: 'status', status: 200, body });
    s.fake.setFault(b, { kind: 'status', status: 200, body: JSON.stringify(sampleImage(b, { created_at: '2023-02-30T00:00:00Z' })) });
    expect(await s.pipeline.sync()).toMatchObject({ changed: 1, failed: 1 });
    const [raw] = await s.pipeline.services.sql`
      SELECT raw->>'big' AS big, raw->'huge' = '1e400'::jsonb AS huge, raw->'tiny' = '1e-400'::jsonb AS tiny FROM images`;
    expect(raw).toEqual({ big: '12345678901234567890123', huge: true, tiny: true });
    const tags = await s.pipeline.services.sql`SELECT key, value, read_only FROM image_tags ORDER BY key`;
    expect(tags).toEqual([
      { key: '__proto__', value: 'p', read_only: true },
      { key: 'constructor', value: 'c', read_only: false },
      { key: 'toString', value: 't', read_only: false },
    ]);
    const [failure] = await failures(s);
    expect(failure).toMatchObject({ image_id: b.imageId, error_class: 'InvalidPayloadError' });
    expect(failure!.message).toContain('created_at: not a real ISO 8601 date-time: "2023-02-30T00:00:00Z"');
    // The same answers again: nothing changes, so exact numbers compare equal with what jsonb gave back.
    s.fake.setFault(a, { kind: 'status', status: 200, body });
    expect(await s.pipeline.sync()).toMatchObject({ unchanged: 1, changed: 0 });
  });

  it('Retry-After beyond the cap: the refresh ends as a recorded failure, and at once so does each that would wait through the pause', async () => {
    const s = await scenario(3, { SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '60', SYNC_CONCURRENCY: '1', SYNC_ATTEMPTS: '5' });
    s.fake.setFault('all', { kind: 'rateLimited', retryAfter: '999999' });
    expect(await s.pipeline.sync()).toMatchObject({ planned: 3, changed: 0, failed: 3 });
    // Only the first was sent: the others failed instead of waiting out the 60 s pause.
    expect(s.fake.requestTimes).toHaveLength(1);
    const recorded = await failures(s);
    expect(recorded.map((f) => [f.error_class, f.status, f.attempts]).sort()).toEqual([
      ['PausedPastCapError', null, 1],
      ['PausedPastCapError', null, 1],
      ['RateLimitedError', 429, 1],
    ]);
    for (const failure of recorded) expect(failure.message).toContain('Gcore asked to wait 999999 s, more than the 60 s cap');
  });

  it('a batch job that failed for good has its images refreshed again, or recorded once attempts are spent', async () => {
    for (const [attempts, outcome] of [
      ['3', { changed: 2, failed: 0 }],
      ['1', { changed: 0, failed: 2 }],
    ] as const) {
      const s = await scenario(2, { SYNC_ATTEMPTS: attempts }, true);
      const run = await s.pipeline.startSync();
      // Take the queued batch as a dying worker would, and fail it for good, as BullMQ does to a job stalled too often.
      const taker = s.pipeline.services.backend.worker(s.pipeline.services.queues.refresh, null, { autorun: false });
      const job = await taker.getNextJob('dying-worker');
      await job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'dying-worker', false);
      await taker.close();
      await withWorker(s.pipeline, async () => expect(await s.pipeline.waitForRun(run)).toMatchObject(outcome));
      const recorded = await failures(s);
      expect(recorded.map((f) => [f.error_class, f.message])).toEqual(
        attempts === '1' ? Array(2).fill(['BatchFailedError', 'its batch job failed: job stalled more than allowable limit']) : [],
      );
      expect(await s.pipeline.services.queues.refresh.getFailedCount()).toBe(0);
    }
  });

  it('a wait outlasts the queue store losing the queued jobs: the claims are freed and the refreshes queued again', async () => {
    const s = await scenario(6, { SYNC_BATCH_SIZE: '2' }, true);
    const run = await s.pipeline.startSync();
    expect(await s.pipeline.services.queues.refresh.getWaitingCount()).toBe(3);
    // The store loses every queued job of this deployment (a Redis restarted without persistence): their claims in Postgres remain.
    await s.env.loseQueuedJobs();
    await withWorker(s.pipeline, async () =>
      expect(await s.pipeline.waitForRun(run, 30_000)).toMatchObject({ status: 'finished', planned: 6, changed: 6, failed: 0 }),
    );
  });
});
