// One deployment's processes must agree on where the queues are: a worker with
// REDIS_URL and one without would each take the other's queued refreshes for
// lost and queue them again. Each worker marks its kind of store in the
// database; both say so in the log, on /readyz and in `status`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { sparePort, throwawayRedis, waitFor, type ThrowawayRedis } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const T: Triple = { projectId: 8, regionId: 1, imageId: sampleImageId(1) };
const MIXED =
  "the workers of this database use different queue stores (postgres and redis): some have REDIS_URL set and some not, so each takes the other's " +
  'queued refreshes for lost and queues them again; give every process of this deployment the same REDIS_URL';

let env: TestEnv;
let fake: FakeGcore;
let ownRedis: ThrowawayRedis | undefined;
const workers: ChildProcess[] = [];
let settings: Record<string, string>;

beforeAll(async () => {
  env = await createTestEnv();
  if (!inject('redisUrl')) ownRedis = await throwawayRedis();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(T, sampleImage(T));
  await fake.start();
  const file = await writeTargetsFile(`targets:\n  - { project_id: 8, region_id: 1, image_ids: [${T.imageId}] }\n`);
  settings = { PATH: process.env.PATH!, ...env.env, GCORE_BASE_URL: fake.url, TARGETS_FILE: file };
  delete settings.REDIS_URL;
});

afterAll(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  await fake?.stop();
  await ownRedis?.stop();
  await env?.cleanup();
});

async function startWorker(extra: Record<string, string>) {
  const exited = () => new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const port = await sparePort();
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...settings, ...extra, HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  workers.push(child);
  const log: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout }).on('line', (line) => log.push(JSON.parse(line)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the worker to serve /healthz', async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true);
  return {
    log,
    readyz: async () => (await fetch(`${base}/readyz`)).json(),
    async stop() {
      const code = exited();
      child.kill('SIGTERM');
      return code;
    },
  };
}

it('a worker with REDIS_URL and one without, on one database, each say that the deployment is split', async () => {
  const redisUrl = inject('redisUrl') || ownRedis!.url;
  const onPostgres = await startWorker({});
  const onRedis = await startWorker({ REDIS_URL: redisUrl });
  // The newcomer says so at once in its log; both say so on /readyz (the one already running logs it at its next heartbeat).
  await waitFor('the second worker to see the other store', () => onRedis.log.some((line) => line.msg === MIXED));
  expect(onRedis.log.filter((line) => line.msg === MIXED)).toEqual([
    expect.objectContaining({ level: 50, queue_stores: ['postgres', 'redis'] }),
  ]);
  for (const worker of [onPostgres, onRedis]) {
    expect(await worker.readyz()).toEqual({ postgres: 'ok', queues: 'ok', deployment: MIXED, api_key: 'ok' });
  }
  const status = async () => JSON.parse((await promisify(execFile)(process.execPath, [CLI, 'status', '--json'], { env: settings })).stdout);
  expect((await status()).deployment).toMatchObject({ queue_stores: ['postgres', 'redis'], problem: MIXED });
  // A worker that stops cleanly takes its mark back: moving every process to one store raises no alarm meanwhile.
  expect(await onRedis.stop()).toBe(0);
  expect((await status()).deployment).toMatchObject({ queue_stores: ['postgres'], problem: null });
});

it("refreshes whose jobs are in the other store (a deployment moved from one to the other) are done by a worker's start, not at the next tick", async () => {
  const redisUrl = inject('redisUrl') || ownRedis!.url;
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    // Queued on Redis, where no worker will run again; their claims in the database a minute old.
    const queued = await promisify(execFile)(process.execPath, [CLI, 'sync'], { env: { ...settings, REDIS_URL: redisUrl } });
    const [run] = await sql<{ id: number }[]>`SELECT max(id)::int AS id FROM sync_runs`;
    expect(queued.stderr).toContain(`run ${run!.id}: queued 1 refresh`);
    await sql`UPDATE targets SET queued_at = queued_at - interval '2 minutes' WHERE queued_job IS NOT NULL`;
    const worker = await startWorker({});
    await waitFor(
      'the run to finish',
      async () => (await sql`SELECT 1 FROM sync_runs WHERE id = ${run!.id} AND finished_at IS NOT NULL`).length === 1,
    );
    expect(worker.log.filter((line) => line.msg === 'queued again the refreshes of open runs whose jobs were lost')).toMatchObject([
      { queued: 1 },
    ]);
    expect(await sql`SELECT status, planned, unchanged + changed AS done FROM sync_runs WHERE id = ${run!.id}`).toEqual([
      { status: 'finished', planned: 1, done: 1 },
    ]);
  } finally {
    await sql.end();
  }
});
