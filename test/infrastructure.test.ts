// Real infrastructure faults, done to real services: Redis killed and
// restarted, Postgres restarted, a worker process killed mid-job. After
// recovery every triple is synced once, with no version lost or duplicated.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { throwawayPostgres, throwawayRedis, waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const COUNT = 30;
const triples: Triple[] = Array.from({ length: COUNT }, (_, n) => ({ projectId: 5, regionId: 3, imageId: sampleImageId(n + 1) }));
const targetsYaml = `${QUIET_SCHEDULE}
targets:
  - { project_id: 5, region_id: 3, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setUp(latencyMs: number): Promise<{ env: TestEnv; fake: FakeGcore }> {
  const env = await createTestEnv();
  cleanups.push(() => env.cleanup());
  const fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY, latencyMs });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  return { env, fake };
}

/** Every triple has exactly one image row, one version and one `created` change. */
async function expectSyncedOnce(pipeline: Pipeline): Promise<void> {
  const sql = pipeline.services.sql;
  const [counts] = await sql`
    SELECT (SELECT count(*)::int FROM images WHERE deleted_at IS NULL) AS images,
           (SELECT count(*)::int FROM image_versions) AS versions,
           (SELECT count(DISTINCT (project_id, region_id, image_id))::int FROM image_versions) AS versioned,
           (SELECT count(*)::int FROM image_changes WHERE change_type = 'created') AS created,
           (SELECT count(*)::int FROM image_changes) AS changes`;
  expect(counts).toEqual({ images: COUNT, versions: COUNT, versioned: COUNT, created: COUNT, changes: COUNT });
  expect(await invariantViolations(sql, pipeline.services.queues)).toEqual([]);
}

/** A worker process and the signal that ended it, for tests that kill workers mid-job. */
function spawnWorker(workerEnv: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'worker'], { env: workerEnv, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { child, exited };
}

describe('infrastructure faults', () => {
  it('Redis killed and restarted in the middle of a run: the run completes, nothing lost or doubled', async () => {
    const { env, fake } = await setUp(40);
    const redis = await throwawayRedis();
    cleanups.push(() => redis.stop());
    const pipeline = await startPipeline(env, fake.url, targetsYaml, {
      env: { REDIS_URL: redis.url, SYNC_CONCURRENCY: '2', SYNC_BATCH_SIZE: '2', SYNC_JOB_LOCK_MS: '2000' },
    });
    cleanups.push(() => pipeline.close());
    const run = await pipeline.startSync();
    await waitFor('a third of the refreshes', () => fake.requestCount >= COUNT / 3);
    await redis.kill();
    await redis.start();
    const finished = await pipeline.waitForRun(run, 60_000);
    expect(finished).toMatchObject({ status: 'finished', planned: COUNT, changed: COUNT, failed: 0 });
    await expectSyncedOnce(pipeline);
  });

  // With the queues in the restarted server too (no Redis), these two take about 20 s rather than 5 s
  // (measured; the queues' own recovery after the restart), hence their longer limits.
  it('Postgres restarted in the middle of a run: refreshes wait for it and the run completes', async () => {
    const { env, fake } = await setUp(40);
    const postgres = await throwawayPostgres();
    cleanups.push(() => postgres.stop());
    const pipeline = await startPipeline(env, fake.url, targetsYaml, {
      env: { DATABASE_URL: postgres.url, SYNC_CONCURRENCY: '2', SYNC_BATCH_SIZE: '2' },
    });
    cleanups.push(() => pipeline.close());
    const run = await pipeline.startSync();
    await waitFor('a third of the refreshes', () => fake.requestCount >= COUNT / 3);
    await postgres.restart();
    const finished = await pipeline.waitForRun(run, 60_000);
    expect(finished).toMatchObject({ status: 'finished', planned: COUNT, changed: COUNT, failed: 0 });
    await expectSyncedOnce(pipeline);
    expect(pipeline.logLines.some((line) => line.includes('Postgres unavailable: the batch will run again'))).toBe(true);
  }, 90_000);

  it('sync --wait through a Postgres restart: it waits for Postgres and ends with the run', async () => {
    const { env, fake } = await setUp(60);
    const postgres = await throwawayPostgres();
    cleanups.push(() => postgres.stop());
    const { writeTargetsFile } = await import('./support/pipeline.js');
    const childEnv = {
      ...env.env,
      PATH: process.env.PATH!,
      DATABASE_URL: postgres.url,
      GCORE_BASE_URL: fake.url,
      TARGETS_FILE: await writeTargetsFile(targetsYaml),
      SYNC_CONCURRENCY: '2',
      SYNC_BATCH_SIZE: '2',
    };
    const child = spawn(process.execPath, [CLI, 'sync', '--wait'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor('a third of the refreshes', () => fake.requestCount >= COUNT / 3);
    await postgres.restart();
    expect(await exited).toBe(0);
    expect(output).toContain(`${COUNT}/${COUNT} refreshed: ${COUNT} changed`);
  }, 90_000);

  it('two worker processes killed one after the other holding the same jobs: a third finishes them', async () => {
    const { env, fake } = await setUp(300);
    const pipeline = await startPipeline(env, fake.url, targetsYaml, { noWorker: true });
    cleanups.push(() => pipeline.close());
    const workerEnv = {
      ...env.env,
      PATH: process.env.PATH!,
      GCORE_BASE_URL: fake.url,
      SYNC_JOB_LOCK_MS: '1000',
      SYNC_CONCURRENCY: '30',
      SYNC_BATCH_SIZE: '30',
    };
    const run = await pipeline.startSync();
    // One batch of all 30: each doomed worker holds it when it dies, so the job stalls twice.
    for (const requests of [1, COUNT + 1]) {
      const doomed = spawnWorker(workerEnv);
      await waitFor('a worker to be mid-job', () => fake.requestCount >= requests);
      doomed.child.kill('SIGKILL');
      expect(await doomed.exited).toBe('SIGKILL');
    }
    const survivor = spawn(process.execPath, [CLI, 'worker'], { env: workerEnv, stdio: 'ignore' });
    cleanups.push(async () => {
      if (survivor.exitCode === null) survivor.kill('SIGKILL');
    });
    const finished = await pipeline.waitForRun(run, 60_000);
    expect(finished).toMatchObject({ status: 'finished', planned: COUNT, changed: COUNT, failed: 0 });
    await expectSyncedOnce(pipeline);
  });

  it('a worker process killed with SIGKILL mid-job: another worker finishes its jobs', async () => {
    const { env, fake } = await setUp(150);
    const pipeline = await startPipeline(env, fake.url, targetsYaml, { noWorker: true });
    cleanups.push(() => pipeline.close());
    const workerEnv = {
      ...env.env,
      PATH: process.env.PATH!,
      GCORE_BASE_URL: fake.url,
      SYNC_JOB_LOCK_MS: '1500',
      SYNC_CONCURRENCY: '3',
      SYNC_BATCH_SIZE: '3',
    };
    const run = await pipeline.startSync();

    const doomed = spawnWorker(workerEnv);
    await waitFor('the first worker to be mid-job', () => fake.requestCount >= 5);
    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toBe('SIGKILL');

    const survivor = spawn(process.execPath, [CLI, 'worker'], { env: workerEnv, stdio: 'ignore' });
    const survivorExit = new Promise<number | null>((resolve) => survivor.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (survivor.exitCode === null) survivor.kill('SIGKILL');
    });
    const finished = await pipeline.waitForRun(run, 60_000);
    expect(finished).toMatchObject({ status: 'finished', planned: COUNT, changed: COUNT, failed: 0 });
    await expectSyncedOnce(pipeline);
    expect(survivor.exitCode).toBeNull();
    survivor.kill('SIGTERM');
    expect(await survivorExit).toBe(0);
  });
});

describe('stopping', () => {
  async function startWorkerProcess(env: TestEnv, fake: FakeGcore, extra: Record<string, string>) {
    const child = spawn(process.execPath, [CLI, 'worker'], {
      env: { ...env.env, PATH: process.env.PATH!, GCORE_BASE_URL: fake.url, ...extra },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return { child, exited, output: () => stdout };
  }

  it('SIGINT lets the refreshes in flight finish, then exits 0', async () => {
    const { env, fake } = await setUp(800);
    const pipeline = await startPipeline(env, fake.url, targetsYaml, { noWorker: true });
    cleanups.push(() => pipeline.close());
    await pipeline.startSync();
    const worker = await startWorkerProcess(env, fake, { SYNC_CONCURRENCY: '2', SYNC_BATCH_SIZE: '2', LOG_LEVEL: 'debug' });
    await waitFor('two refreshes in flight', () => fake.requestCount >= 2);
    worker.child.kill('SIGINT');
    expect(await worker.exited).toBe(0);
    const refreshed = worker
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"refresh"'));
    expect(refreshed.length).toBeGreaterThanOrEqual(2);
    const [stored] = await pipeline.services.sql`SELECT count(*)::int AS n FROM images`;
    expect(stored!.n).toBe(refreshed.length);
    expect(fake.requestCount).toBe(refreshed.length);
  });

  it('SIGTERM with refreshes slower than the shutdown bound hands them back and exits 0 in time', async () => {
    // Refreshes a minute long: an exit well inside that minute did not wait for them, however busy the machine.
    const { env, fake } = await setUp(60_000);
    const pipeline = await startPipeline(env, fake.url, targetsYaml, { noWorker: true });
    cleanups.push(() => pipeline.close());
    await pipeline.startSync();
    const worker = await startWorkerProcess(env, fake, { SYNC_CONCURRENCY: '2', SYNC_BATCH_SIZE: '2', SYNC_SHUTDOWN_TIMEOUT_MS: '500' });
    await waitFor('two refreshes in flight', () => fake.requestCount >= 2);
    const signalled = Date.now();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(30_000);
    expect(worker.output()).toContain('handing them back to other workers');
    // Handed back: still active in Redis until their locks lapse, then retried by another worker.
    expect(await pipeline.services.queues.refresh.getActiveCount()).toBeGreaterThan(0);
  });
});
