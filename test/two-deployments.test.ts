// Two deployments (two databases) left on one Redis and one QUEUE_PREFIX: each
// worker hands the other's jobs back untouched, so neither writes into the
// other's database, and both say what is wrong in the log, in `status` and on
// /readyz. A job queued by an older release names no deployment and is done as
// before. Queues in a deployment's own database (no REDIS_URL) cannot be
// shared this way, so these deployments always use a Redis: the suite's, or
// one of their own when the suite runs without.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { REFRESH_JOB, SNAPSHOT_JOB } from '../src/queues/queue.js';
import { schedulerId } from '../src/schedule/schedule.js';
import type { ManualRun } from '../src/work/manual-sync.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, startScenario, type Pipeline, type Scenario } from './support/pipeline.js';
import { sparePort, throwawayRedis, waitFor, type ThrowawayRedis } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const TRIPLES_A: Triple[] = [1, 2].map((n) => ({ projectId: 1, regionId: 1, imageId: sampleImageId(n) }));
const TRIPLES_B: Triple[] = [3, 4].map((n) => ({ projectId: 2, regionId: 1, imageId: sampleImageId(n) }));

type LogLine = { level: number; msg: string } & Record<string, unknown>;

interface WorkerProcess {
  child: ChildProcess;
  log: LogLine[];
  readyz(): Promise<[number, unknown]>;
}

interface Deployment {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
  /** Its database's identity. */
  id: string;
  /** Environment of its `worker` and `status` processes. */
  processEnv: Record<string, string>;
  worker?: WorkerProcess;
}

/** A `worker` process as an operator runs it, with its JSON log collected and its HTTP port open. */
async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const port = await sparePort();
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { PATH: process.env.PATH!, ...env, HTTP_PORT: String(port), LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const log: LogLine[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => log.push(JSON.parse(line)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the worker to serve /healthz', async () => (await fetch(`${base}/healthz`)).ok);
  return {
    child,
    log,
    async readyz() {
      const answer = await fetch(`${base}/readyz`);
      return [answer.status, await answer.json()];
    },
  };
}

async function stopWorkerProcess(worker: WorkerProcess | undefined): Promise<void> {
  if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = once(worker.child, 'exit');
  worker.child.kill('SIGKILL');
  await exited;
}

let prefix: string;
let redisUrl: string;
let ownRedis: ThrowawayRedis | undefined;
const envs: TestEnv[] = [];
let a: Deployment;
let b: Deployment;

async function startDeployment(env: TestEnv, triples: Triple[], schedule: string): Promise<Deployment> {
  const fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  // Both APIs serve every image: a refresh done by the wrong deployment would land, visibly, in its database.
  for (const triple of [...TRIPLES_A, ...TRIPLES_B]) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const settings = { QUEUE_PREFIX: prefix, REDIS_URL: redisUrl, SYNC_BATCH_SIZE: '1' };
  const entries = triples.map((t) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
  const pipeline = await startPipeline(env, fake.url, `${schedule}\ntargets:\n${entries.join('\n')}\n`, { noWorker: true, env: settings });
  return { env, fake, pipeline, id: pipeline.services.deployment, processEnv: { ...env.env, ...settings, GCORE_BASE_URL: fake.url } };
}

beforeAll(async () => {
  envs.push(await createTestEnv(), await createTestEnv());
  if (!inject('redisUrl')) ownRedis = await throwawayRedis();
  redisUrl = inject('redisUrl') || ownRedis!.url;
  // B uses A's prefix (its own stays empty), so cleaning up A's removes every key of both.
  prefix = envs[0]!.queuePrefix;
  a = await startDeployment(envs[0]!, TRIPLES_A, QUIET_SCHEDULE);
  // B's refreshes are also scheduled every 2 s, so that schedule ticks cross over as well as refreshes.
  b = await startDeployment(envs[1]!, TRIPLES_B, 'schedule: { every: 2s }');
});

afterAll(async () => {
  for (const deployment of [a, b]) {
    await stopWorkerProcess(deployment?.worker);
    await deployment?.pipeline.close();
    await deployment?.fake.stop();
  }
  for (const env of envs) await env.cleanup();
  await ownRedis?.stop();
});

const status = async (deployment: Deployment, ...args: string[]) =>
  (await promisify(execFile)(process.execPath, [CLI, 'status', ...args], { env: { PATH: process.env.PATH!, ...deployment.processEnv } }))
    .stdout;

async function imageRows(deployment: Deployment) {
  return deployment.pipeline.services.sql`SELECT project_id, image_id FROM images ORDER BY project_id, image_id`;
}

async function runRows(deployment: Deployment) {
  return deployment.pipeline.services.sql<{ kind: string; status: string }[]>`SELECT kind, status FROM sync_runs ORDER BY id`;
}

function rows(triples: Triple[]) {
  return triples.map((t) => ({ project_id: t.projectId, image_id: t.imageId }));
}

/** What `own` is told about `other` on /readyz, in `status`, and in the log when it sees the other's mark. */
function sharing(own: Deployment, other: Deployment): string {
  return (
    `another deployment (database ${other.id}) uses this Redis and QUEUE_PREFIX "${prefix}" too (this one is database ${own.id}): ` +
    "each hands the other's jobs back instead of doing them, which holds up both; give each deployment its own QUEUE_PREFIX or Redis database"
  );
}

/** What `own` logs the first time it is given a job of `other`. */
function refusal(own: Deployment, other: Deployment): string {
  return (
    `refused a job of another deployment (database ${other.id}) that uses this Redis and QUEUE_PREFIX "${prefix}" too ` +
    `(this one is database ${own.id}): its jobs are handed back for its own workers, not done here; ` +
    'give each deployment its own QUEUE_PREFIX or Redis database'
  );
}

function errors(worker: WorkerProcess) {
  return worker.log
    .filter((line) => line.level >= 50)
    .map(({ msg, deployment, other_deployment, queue_prefix }) => ({ msg, deployment, other_deployment, queue_prefix }));
}

describe('two deployments on one Redis and one QUEUE_PREFIX', () => {
  let runB: ManualRun;

  it('keep their job schedulers side by side', async () => {
    const ids = (await a.pipeline.services.queues.schedule.getJobSchedulers(0, -1)).map((s) => s.key).sort();
    expect(ids).toEqual(
      [
        `audit-snapshot-${a.id}`,
        `${schedulerId('cron 0 0 1 1 * UTC')}-${a.id}`,
        `audit-snapshot-${b.id}`,
        `${schedulerId('every 2000ms')}-${b.id}`,
      ].sort(),
    );
  });

  it("a worker hands the other deployment's refreshes and ticks back untouched, and says so once", async () => {
    a.worker = await startWorkerProcess(a.processEnv);
    runB = await b.pipeline.startSync();
    const claims = (await b.pipeline.services.sql<{ queued_job: string }[]>`SELECT queued_job FROM targets ORDER BY queued_job`).map(
      (row) => row.queued_job,
    );
    expect(claims).toHaveLength(2);
    const handedBack = () =>
      a.worker!.log.filter((line) => line.msg === 'handed back a job of another deployment').map((line) => line.job_id as string);
    await waitFor("A to hand back each of B's refreshes twice, and a tick of B's", () => {
      const ids = handedBack();
      return claims.every((claim) => ids.filter((id) => id === claim).length >= 2) && ids.some((id) => id.includes(b.id));
    });

    // Left for B: still queued under the ids B's database claimed them with, no attempt spent.
    const jobs = await Promise.all(claims.map((id) => b.pipeline.services.queues.refresh.getJob(id)));
    expect(jobs.map((job) => [job?.data.deployment, job?.attemptsMade])).toEqual([
      [b.id, 0],
      [b.id, 0],
    ]);
    for (const job of jobs) expect(['waiting', 'delayed', 'active']).toContain(await job!.getState());
    expect(await imageRows(a)).toEqual([]);
    expect(await imageRows(b)).toEqual([]);
    expect(await runRows(a)).toEqual([]);
    expect(await runRows(b)).toEqual([{ kind: 'manual', status: 'running' }]);

    expect(errors(a.worker)).toEqual([{ msg: refusal(a, b), deployment: a.id, other_deployment: b.id, queue_prefix: prefix }]);
    expect(await a.worker.readyz()).toEqual([503, { postgres: 'ok', queues: 'ok', deployment: sharing(a, b), api_key: 'ok' }]);
    // B runs no process, yet its `status` names A, and A's names B.
    expect(JSON.parse(await status(b, '--json')).deployment).toEqual({
      id: b.id,
      others: [a.id],
      queue_stores: [],
      problem: sharing(b, a),
    });
    expect((await status(a)).split('\n').find((line) => line.startsWith('deployment:'))).toBe(
      `deployment: database ${a.id}; ERROR: ${sharing(a, b)}`,
    );
  }, 180_000);

  it('each does its own refreshes and ticks, into its own database only, once both work', async () => {
    b.worker = await startWorkerProcess(b.processEnv);
    expect(await b.pipeline.waitForRun(runB)).toMatchObject({ status: 'finished', planned: 2, deleted: 0, failed: 0 });
    expect(await a.pipeline.sync()).toMatchObject({ status: 'finished', planned: 2, changed: 2, unchanged: 0, deleted: 0, failed: 0 });
    await waitFor('a scheduled run of B to finish', async () =>
      (await runRows(b)).some((r) => r.kind === 'scheduled' && r.status === 'finished'),
    );

    expect(await imageRows(a)).toEqual(rows(TRIPLES_A));
    expect(await imageRows(b)).toEqual(rows(TRIPLES_B));
    for (const deployment of [a, b]) {
      const { sql } = deployment.pipeline.services;
      expect(await sql`SELECT DISTINCT project_id, image_id FROM image_changes ORDER BY project_id, image_id`).toEqual(
        await imageRows(deployment),
      );
      expect(await sql`SELECT image_id FROM sync_failures`).toEqual([]);
    }
    // None of B's ticks opened a run in A's database.
    expect(await runRows(a)).toEqual([{ kind: 'manual', status: 'finished' }]);

    // B heard of A from A's mark in Redis as it started, before any job of A's could reach it.
    const heard = errors(b.worker);
    expect(heard[0]).toEqual({ msg: sharing(b, a), deployment: b.id, other_deployment: a.id, queue_prefix: prefix });
    // Whether A's sync sent B one of A's jobs is up to the queue: if it did, one more line says so, however many.
    expect(heard.slice(1).map((line) => line.msg)).toEqual(heard.length > 1 ? [refusal(b, a)] : []);
    expect(errors(a.worker!)).toEqual([{ msg: refusal(a, b), deployment: a.id, other_deployment: b.id, queue_prefix: prefix }]);

    expect(await b.worker.readyz()).toEqual([503, { postgres: 'ok', queues: 'ok', deployment: sharing(b, a), api_key: 'ok' }]);
    expect(await a.worker!.readyz()).toEqual([503, { postgres: 'ok', queues: 'ok', deployment: sharing(a, b), api_key: 'ok' }]);
    expect((await status(b)).split('\n').find((line) => line.startsWith('deployment:'))).toBe(
      `deployment: database ${b.id}; ERROR: ${sharing(b, a)}`,
    );
    expect(JSON.parse(await status(a, '--json')).deployment).toEqual({
      id: a.id,
      others: [b.id],
      queue_stores: ['redis'],
      problem: sharing(a, b),
    });
  }, 60_000);
});

describe('a job queued by an older release, which names no deployment', () => {
  const T: Triple = { projectId: 5, regionId: 1, imageId: sampleImageId(9) };
  let scenario: Scenario;

  beforeAll(async () => {
    scenario = await startScenario([T]);
  });

  afterAll(() => scenario?.close());

  it('is done by the worker as one of its own', async () => {
    const { queues, sql } = scenario.pipeline.services;
    await queues.refresh.add(REFRESH_JOB, { items: [{ ...T, attempt: 0 }] }, { jobId: 'refresh-of-an-older-release' });
    await waitFor('the refresh', async () => (await sql`SELECT 1 FROM images`).length === 1);
    await queues.schedule.add(SNAPSHOT_JOB, {}, { jobId: 'snapshot-of-an-older-release' });
    await waitFor('the snapshot', async () => (await sql`SELECT 1 FROM audit_snapshots`).length === 1);

    expect(await sql`SELECT project_id, image_id, last_outcome FROM targets`).toEqual([
      { project_id: 5, image_id: T.imageId, last_outcome: 'changed' },
    ]);
    expect(await sql`SELECT trigger, image_count FROM audit_snapshots`).toEqual([
      { trigger: 'tick:snapshot-of-an-older-release', image_count: 1 },
    ]);
    const log = scenario.pipeline.logLines.map((line) => JSON.parse(line) as LogLine);
    expect(log.filter((line) => line.level >= 50)).toEqual([]);
    expect(log.filter((line) => line.msg === 'refresh').map((line) => [line.job_id, line.outcome])).toEqual([
      ['refresh-of-an-older-release', 'changed'],
    ]);
  });
});
