// `status` against a running pipeline: queues, rate limiting, the deployment, the last run, failing and stale triples.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { ApiRateLimiter } from '../src/gcore/rate-limiter.js';
import type { TestEnv } from './support/env.js';
import { startScenario, type Pipeline, type Scenario } from './support/pipeline.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const A: Triple = { projectId: 3, regionId: 1, imageId: sampleImageId(1) };
const B: Triple = { projectId: 3, regionId: 1, imageId: sampleImageId(2) };

let scenario: Scenario;
let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;

const status = async (...args: string[]) =>
  (await promisify(execFile)(process.execPath, [CLI, 'status', ...args], { env: { PATH: process.env.PATH!, ...env.env } })).stdout;

beforeAll(async () => {
  scenario = await startScenario([A, B], { env: { SYNC_ATTEMPTS: '1' } });
  ({ env, fake, pipeline } = scenario);
  await pipeline.sync();
  fake.setFault(B, { kind: 'status', status: 500 });
  await pipeline.sync();
});

afterAll(() => scenario?.close());

describe('gcore-image-sync status', () => {
  it('reports the last run, the failing triple, and no rate limit', async () => {
    const report = JSON.parse(await status('--json'));
    expect(report.queues.refresh).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, failed: 0 });
    expect(report.queues.schedule.delayed).toBe(2);
    expect(report.rate_limited).toBeNull();
    expect(report.api_key).toEqual({ rejected_by: [] });
    expect(report.accounts.default.audit_log).toBeNull();
    expect(report.deployment).toEqual({ id: pipeline.services.deployment, others: [], queue_stores: [env.queueStore], problem: null });
    expect(report.last_run).toEqual({
      id: 2,
      status: 'finished',
      kind: 'manual',
      account: null,
      schedule: null,
      started_at: expect.any(String),
      finished_at: expect.any(String),
      planned: 2,
      discovered: 0,
      changed: 0,
      created: 0,
      unchanged: 1,
      deleted: 0,
      failed: 1,
      listed: 0,
      marked_left: 0,
      listings_failed: 0,
      unattempted: 0,
      listings_unfinished: 0,
      error: null,
    });
    expect(report.failing).toEqual([expect.objectContaining({ image_id: B.imageId, last_status: 500, last_error: '500: injected 500' })]);
    expect(report.stale).toEqual({
      total: 1,
      rows: [{ project_id: 3, region_id: 1, image_id: B.imageId, reason: 'last refresh failed: 500: injected 500' }],
    });
  });

  it('says until when requests are held back after a 429, in plain text', async () => {
    await new ApiRateLimiter(pipeline.services.backend.timeline('default'), 0).pause(30_000);
    const [data, ...text] = (await status()).split('\n');
    expect(data).toMatch(/^data: postgres:\/\/\S+ \(DATABASE_URL\)$/);
    expect(text[0]).toBe('queues:');
    expect(text[1]).toBe('  refresh   waiting 0  active 0  delayed 0  prioritized 0  failed 0');
    expect(text[3]).toBe('  list      waiting 0  active 0  delayed 0  prioritized 0  failed 0');
    expect(text[4]).toMatch(/^rate limited: yes, requests held back until \d{4}-\d\d-\d\dT/);
    const until = Date.parse(text[4]!.slice('rate limited: yes, requests held back until '.length));
    expect(until - Date.now()).toBeGreaterThan(20_000);
    expect(text[5]).toBe('api key: no running worker has had it rejected');
    expect(text[6]).toBe('audit log: not followed (AUDIT_LOG_POLL_SECONDS=0, or no worker has started)');
    expect(text[7]).toBe(`deployment: database ${pipeline.services.deployment}, alone on ${env.queuesWhere}`);
    expect(text[8]).toMatch(
      /^last run: #2 finished \(manual\), started \S+, finished \S+: 2 planned, 0 changed, 1 unchanged, 0 deleted, 1 failed$/,
    );
    expect(text.slice(9)).toEqual([
      'scopes: 0',
      'failing: 1',
      `  3/1/${B.imageId}  500  500: injected 500`,
      'to retry now: `gcore-image-sync sync --wait` (or restart `start`, which at once retries what last failed with the API unreachable, a 5xx or a refused key)',
      'stale: 1',
      `  3/1/${B.imageId}  last refresh failed: 500: injected 500`,
      '',
    ]);
  });
});
