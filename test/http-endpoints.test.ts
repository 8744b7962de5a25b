// /healthz, /readyz and /metrics of a running worker process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { startHttpServer } from '../src/ops/http-server.js';
import type { Triple } from '../src/interfaces.js';
import { createMetrics } from '../src/ops/metrics.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, withWorker, type Pipeline } from './support/pipeline.js';
import { sparePort, throwawayRedis, waitFor, type ThrowawayRedis } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const triples: Triple[] = [1, 2].map((n) => ({ projectId: 6, regionId: 2, imageId: sampleImageId(n) }));

let env: TestEnv;
let fake: FakeGcore;
let redis: ThrowawayRedis;
let pipeline: Pipeline;
let worker: ChildProcess;
let base: string;

beforeAll(async () => {
  env = await createTestEnv();
  redis = await throwawayRedis();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 6, region_id: 2, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`,
    { noWorker: true, env: { REDIS_URL: redis.url } },
  );
  const port = await sparePort();
  base = `http://127.0.0.1:${port}`;
  worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      PATH: process.env.PATH!,
      ...env.env,
      REDIS_URL: redis.url,
      GCORE_BASE_URL: fake.url,
      HTTP_PORT: String(port),
      QUEUE_DASHBOARD: '1',
    },
    stdio: 'ignore',
  });
  await waitFor('the HTTP server', async () => (await fetch(`${base}/healthz`)).ok);
});

/** `status` as another process runs it, in text and in JSON. */
async function status(): Promise<{ text: string; json: { api_key: { rejected_by: Array<Record<string, string | number>> } } }> {
  const settings = { env: { PATH: process.env.PATH!, ...env.env, REDIS_URL: redis.url } };
  const [text, json] = await Promise.all([
    promisify(execFile)(process.execPath, [CLI, 'status'], settings),
    promisify(execFile)(process.execPath, [CLI, 'status', '--json'], settings),
  ]);
  return { text: text.stdout, json: JSON.parse(json.stdout) };
}

afterAll(async () => {
  worker?.kill('SIGKILL');
  await pipeline?.close();
  await fake?.stop();
  await redis?.stop();
  await env?.cleanup();
});

describe('HTTP endpoints', () => {
  it('serve health, readiness and Prometheus metrics of the refreshes', async () => {
    await pipeline.sync();
    const health = await fetch(`${base}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { postgres: 'ok', queues: 'ok', deployment: 'ok', api_key: 'ok' }]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('image_sync_refreshes_total{account="default",outcome="changed"} 2');
    expect(metrics).toContain('image_sync_api_answers_total{account="default",status="200"} 2');
    expect(metrics).toContain('image_sync_fetch_seconds_count 2');

    expect(metrics).toContain('image_sync_rate_limit_slots_given_up_total 0');
    expect(metrics).toContain('image_sync_queue_jobs{queue="refresh",account="default",state="waiting"} 0');
    expect(metrics).toContain('image_sync_queue_jobs{queue="schedule",account="",state="delayed"} 2');
    const lastSuccess = Number(/^image_sync_last_success_timestamp_seconds (\S+)$/m.exec(metrics)![1]);
    expect(Date.now() / 1000 - lastSuccess).toBeLessThan(60);
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('serves the queue dashboard at /queues when QUEUE_DASHBOARD=1, and not otherwise', async () => {
    const page = await fetch(`${base}/queues`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const api = (await (await fetch(`${base}/queues/api/queues`)).json()) as { queues: Array<{ name: string }> };
    expect(api.queues.map((q) => q.name).sort()).toEqual(['image-list', 'image-refresh', 'image-schedule']);
    const plain = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      {
        sql: pipeline.services.sql,
        backend: pipeline.services.backend,
        metrics: createMetrics(pipeline.services.queues, pipeline.services.sql),
      },
    );
    try {
      expect((await fetch(`http://127.0.0.1:${plain.port}/queues`)).status).toBe(404);
    } finally {
      await plain.close();
    }
  });

  it('/readyz answers 503 naming Redis while it is down', async () => {
    await redis.kill();
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      503,
      { postgres: 'ok', queues: 'no answer in 2 s', deployment: 'no answer in 2 s', api_key: 'ok' },
    ]);
    await redis.start();
    await waitFor('Redis to be back', async () => (await fetch(`${base}/readyz`)).status === 200);
  });

  it('/readyz answers 503 naming the rejected key once the API has answered 401 (last: this worker then takes no jobs)', async () => {
    fake.setFault('all', { kind: 'unauthorized' });
    const run = await pipeline.startSync();
    await waitFor('the 401 to be seen', async () => (await fetch(`${base}/readyz`)).status === 503);
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      503,
      {
        postgres: 'ok',
        queues: 'ok',
        deployment: 'ok',
        api_key:
          'rejected: account default: the API answered 401 to GCORE_API_KEY; this process takes none of its jobs until restarted with a valid key',
      },
    ]);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Another process sees it in `status`, while the rejected worker runs, and no longer once it has stopped.
    const rejected = await status();
    expect(rejected.json.api_key).toEqual({
      rejected_by: [{ account: 'default', at: expect.any(String), worker: expect.any(String), hostname: hostname(), pid: worker.pid }],
    });
    const [entry] = rejected.json.api_key.rejected_by;
    expect(rejected.text).toContain(
      'api key: REJECTED (401) in 1 running worker(s), which take no jobs until restarted with a valid key\n' +
        `  worker ${entry!.worker} on ${hostname()} (pid ${worker.pid}) since ${entry!.at}\n`,
    );
    // A worker with a working key beside it changes nothing: the rejected one still takes no jobs.
    fake.clearFaults();
    expect(run.planned).toBe(2);
    await withWorker(pipeline, () => pipeline.sync());
    expect((await status()).json.api_key.rejected_by).toHaveLength(1);
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
    expect((await status()).json.api_key).toEqual({ rejected_by: [] });
  });
});
