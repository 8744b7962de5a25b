// Several Gcore accounts in one deployment, through the real worker, Postgres
// and queue store: each account has its own key, request budget and failure
// domain, and its name (never its key) is stored with what it fetched.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { startManualSync, waitForRun } from '../src/work/manual-sync.js';
import { startWorker } from '../src/work/worker.js';
import { QUEUE_SCHEMA } from '../src/queues/postgres-backend.js';
import { rateLimitKey } from '../src/gcore/rate-limiter.js';
import { reconcile } from '../src/schedule/reconcile.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { capturedLogger, QUIET_SCHEDULE, startPipeline, withWorker, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';
import { runCli } from './support/cli.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));

const cleanups: Array<() => Promise<unknown>> = [];
const pipelines: Pipeline[] = [];
afterEach(async () => {
  for (const pipeline of pipelines.splice(0))
    expect(await invariantViolations(pipeline.services.sql, pipeline.services.queues)).toEqual([]);
  while (cleanups.length > 0) await cleanups.pop()!();
});

const images = (projectId: number, count: number, from = 1): Triple[] =>
  Array.from({ length: count }, (_, n) => ({ projectId, regionId: 7, imageId: sampleImageId(projectId * 1000 + from + n) }));

interface World {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
  /** The keys, which must never show anywhere but in the requests. */
  keys: { prod: string; staging: string; qa: string };
  /** The environment a worker process of this deployment gets. */
  processEnv: Record<string, string>;
}

/** Two accounts at the fake API: prod owns project 1, staging project 2 (discovered: every project and region it can see). */
async function setUp(
  prodImages: Triple[],
  stagingImages: Triple[],
  targets: string,
  noWorker = false,
  reach: { staging: number[] } = { staging: [2] },
): Promise<World> {
  const env = await createTestEnv();
  cleanups.push(() => env.cleanup());
  const keys = { prod: `prod-${randomUUID()}`, staging: `staging-${randomUUID()}`, qa: `qa-${randomUUID()}` };
  const fake = new FakeGcore({
    accounts: {
      prod: { apiKey: keys.prod, projects: [1] },
      staging: { apiKey: keys.staging, projects: reach.staging },
      qa: { apiKey: keys.qa, projects: [3] },
    },
  });
  fake.putProject({ id: 1, name: 'prod' });
  fake.putProject({ id: 2, name: 'staging' });
  fake.putRegion({ id: 7, display_name: 'Luxembourg', state: 'ACTIVE', has_baremetal: false });
  for (const triple of [...prodImages, ...stagingImages]) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  const keyEnv = { GCORE_API_KEY_PROD: keys.prod, GCORE_API_KEY_STAGING: keys.staging, GCORE_API_KEY_QA: keys.qa };
  const pipeline = await startPipeline(env, fake.url, `${QUIET_SCHEDULE}\n${targets}`, { env: keyEnv, noWorker });
  cleanups.push(() => pipeline.close());
  pipelines.push(pipeline);
  const processEnv = {
    ...env.env,
    ...keyEnv,
    PATH: process.env.PATH!,
    GCORE_BASE_URL: fake.url,
    TARGETS_FILE: pipeline.config.targetsFile,
  };
  return { env, fake, pipeline, keys, processEnv };
}

const accountsYaml = (prodRate = 0, stagingRate = 0) => `accounts:
  prod: { api_key_env: GCORE_API_KEY_PROD, rate_limit_per_second: ${prodRate} }
  staging: { api_key_env: GCORE_API_KEY_STAGING, rate_limit_per_second: ${stagingRate} }
`;

const PROD = images(1, 3);
const STAGING = images(2, 3);
const QA = images(3, 1);
// Three accounts: on the Postgres queue store, seven queue workers each hold a connection of one pool.
const SIDE_BY_SIDE = `${accountsYaml()}  qa: { api_key_env: GCORE_API_KEY_QA }
targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${PROD.map((t) => t.imageId).join(', ')}] }
  - { account: staging, project_id: all, region_id: all, discover: {} }
  - { account: qa, project_id: 3, region_id: 7, image_ids: [${QA[0]!.imageId}] }
`;

const BOTH_NAMED = `${accountsYaml()}targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${PROD.map((t) => t.imageId).join(', ')}] }
  - { account: staging, project_id: 2, region_id: 7, image_ids: [${images(2, 3)
    .map((t) => t.imageId)
    .join(', ')}] }
`;

const cli = async (w: World, ...args: string[]) =>
  (await promisify(execFile)(process.execPath, [CLI, ...args], { env: w.processEnv })).stdout;

describe('accounts', () => {
  it('three accounts sync side by side, each with its own key, and every row says whose it is', async () => {
    const w = await setUp(PROD, [...STAGING, ...QA], SIDE_BY_SIDE);
    const run = await w.pipeline.sync();
    expect(run).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    const { sql } = w.pipeline.services;
    const stored = await sql<{ project_id: number; account: string; n: number }[]>`
      SELECT project_id, account, count(*)::int AS n FROM current_images GROUP BY 1, 2 ORDER BY 1`;
    expect(stored).toEqual([
      { project_id: 1, account: 'prod', n: 3 },
      { project_id: 2, account: 'staging', n: 3 },
      { project_id: 3, account: 'qa', n: 1 },
    ]);
    expect(await sql`SELECT DISTINCT account FROM image_change_log ORDER BY 1`).toEqual([
      { account: 'prod' },
      { account: 'qa' },
      { account: 'staging' },
    ]);
    expect(await sql`SELECT account, count(*)::int AS n FROM targets GROUP BY 1 ORDER BY 1`).toEqual([
      { account: 'prod', n: 3 },
      { account: 'qa', n: 1 },
      { account: 'staging', n: 3 },
    ]);
    expect(await sql`SELECT name, api_key_env, rate_limit_per_second FROM accounts ORDER BY name`).toEqual([
      { name: 'prod', api_key_env: 'GCORE_API_KEY_PROD', rate_limit_per_second: 0 },
      { name: 'qa', api_key_env: 'GCORE_API_KEY_QA', rate_limit_per_second: null },
      { name: 'staging', api_key_env: 'GCORE_API_KEY_STAGING', rate_limit_per_second: 0 },
    ]);
    // Each key reached only its own projects: the fake answers 403 to any other, which would be a failure.
    expect(await sql`SELECT count(*)::int AS n FROM sync_failures`).toEqual([{ n: 0 }]);
    expect(await sql`SELECT account, status FROM listings`).toEqual([{ account: 'staging', status: 'complete' }]);
    expect(await sql`SELECT account FROM sync_runs`).toEqual([{ account: null }]);
    expect(await sql`SELECT account, count(*)::int AS n FROM images GROUP BY 1 ORDER BY 1`).toEqual([
      { account: 'prod', n: 3 },
      { account: 'qa', n: 1 },
      { account: 'staging', n: 3 },
    ]);
    expect([...w.fake.requestsPerSecondByAccount.keys()].sort()).toEqual(['prod', 'qa', 'staging']);

    const status = JSON.parse(await cli(w, 'status', '--json', '--account', 'staging'));
    expect(Object.keys(status.accounts)).toEqual(['staging']);
    expect(status.accounts.staging).toMatchObject({ rate_limited: null, api_key: { rejected_by: [] } });
    expect(status.scopes).toEqual([expect.objectContaining({ account: 'staging', status: 'complete', listed: 3 })]);
    const text = (await cli(w, 'status')).split('\n');
    expect(text[1]).toBe('queues: (accounts prod, qa, staging)');
    expect(text).toContain('  refresh staging waiting 0  active 0  delayed 0  prioritized 0  failed 0');
    expect(text).toContain('  list qa         waiting 0  active 0  delayed 0  prioritized 0  failed 0');
    expect(text.find((line) => / of account staging {2}\d+ targets/.test(line))).toMatch(
      /^ {2}all projects, all regions of account staging {2}3 targets; last listing complete/,
    );
    const changes = JSON.parse(await cli(w, 'changes', '--account', 'prod', '--json')) as Array<{ account: string; image_id: string }>;
    expect(changes.map((c) => c.account)).toEqual(['prod', 'prod', 'prod']);
    expect(changes.map((c) => c.image_id).sort()).toEqual(PROD.map((t) => t.imageId).sort());
  });

  it("follows each account's audit log with its key: each change names who made it, each account has its own cursor", async () => {
    const staging = images(2, 3);
    const w = await setUp(PROD, staging, BOTH_NAMED, true);
    const { sql } = w.pipeline.services;
    await withWorker(w.pipeline, () => w.pipeline.sync());
    w.fake.renameImageAs({ email: 'alice@example.com' }, PROD[0]!, 'prod-golden');
    w.fake.renameImageAs({ email: 'bob@example.com' }, staging[0]!, 'staging-golden');
    const { logger } = capturedLogger();
    const worker = startWorker({
      config: { ...w.pipeline.config, auditLogPollSeconds: 1 },
      accounts: w.pipeline.accounts,
      logger,
      ...w.pipeline.services,
    });
    cleanups.push(() => worker.close());
    const named = () => sql`
      SELECT account, image_id, actor_email FROM image_change_log WHERE field = 'name' ORDER BY account`;
    await waitFor('both renames put down to who made them', async () => (await named()).length === 2);
    expect(await named()).toEqual([
      { account: 'prod', image_id: PROD[0]!.imageId, actor_email: 'alice@example.com' },
      { account: 'staging', image_id: staging[0]!.imageId, actor_email: 'bob@example.com' },
    ]);
    expect(await sql`SELECT accounts, action_id, email FROM image_actions ORDER BY action_id`).toEqual([
      { accounts: ['prod'], action_id: '1', email: 'alice@example.com' },
      { accounts: ['staging'], action_id: '2', email: 'bob@example.com' },
    ]);
    expect((await sql`SELECT account FROM audit_log_cursors ORDER BY account`).map((r) => r.account)).toEqual(['prod', 'staging']);
    // Each account's log was read with its own key only.
    expect(w.fake.requestsPerSecondByAccount.get('prod')?.size).toBeGreaterThan(0);
    expect(w.fake.requestsPerSecondByAccount.get('staging')?.size).toBeGreaterThan(0);
  });

  it("a 401 for one account stops that account's requests in the process, and the other goes on syncing", async () => {
    const staging = images(2, 3);
    const w = await setUp(PROD, staging, BOTH_NAMED, true);
    const { sql, queues } = w.pipeline.services;
    await withWorker(w.pipeline, () => w.pipeline.sync());
    w.fake.rejectAccount('staging');
    w.fake.updateImage(PROD[0]!, { name: 'prod-renamed' });
    w.fake.updateImage(staging[0]!, { name: 'staging-renamed' });
    const worker = startWorkerHere(w);
    const all = await startManualSync(sql, queues, w.pipeline.config.batchSize);
    await waitFor('the rejected key of staging', async () => worker.accountProblems().length > 0);
    expect(worker.accountProblems()).toEqual([
      'rejected: account staging: the API answered 401 to GCORE_API_KEY_STAGING; this process takes none of its jobs until restarted with a valid key',
    ]);
    await waitFor('prod to store its change', async () => (await sql`SELECT 1 FROM images WHERE name = 'prod-renamed'`).length === 1);
    expect((await w.pipeline.services.backend.keyRejections()).map((r) => r.account)).toEqual(['staging']);
    // Each request that got the 401 is one recorded failure (those in flight together all got it); nothing else was tried.
    const failures = await sql`SELECT account, status, error_class, attempts FROM sync_failures`;
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures)
      expect(failure).toEqual({ account: 'staging', status: 401, error_class: 'AuthenticationError', attempts: 1 });
    const stagingRequests = () => [...(w.fake.requestsPerSecondByAccount.get('staging')?.values() ?? [])].reduce((a, b) => a + b, 0);
    const afterRejection = stagingRequests();

    // More staging work queued now is not taken here, while prod keeps syncing in the same process.
    await startManualSync(sql, queues, w.pipeline.config.batchSize, { account: 'staging' });
    w.fake.updateImage(PROD[1]!, { name: 'prod-renamed-again' });
    const prodOnly = await startManualSync(sql, queues, w.pipeline.config.batchSize, { account: 'prod' });
    const done = await waitForRun(sql, queues, prodOnly, () => {}, {
      logger: worker.logger,
      batchSize: w.pipeline.config.batchSize,
      pollMs: 50,
      signal: AbortSignal.timeout(30_000),
    });
    expect(done).toMatchObject({ planned: 3, changed: 1, unchanged: 2, failed: 0, account: 'prod' });
    expect(stagingRequests()).toBe(afterRejection);
    const waiting = await queues.forAccount('staging').refresh.getJobCounts('waiting', 'active', 'prioritized');
    expect(waiting.active).toBe(0);
    expect((waiting.waiting ?? 0) + (waiting.prioritized ?? 0)).toBeGreaterThan(0);
    expect(await sql`SELECT name FROM images WHERE image_id = ${staging[0]!.imageId}`).toEqual([{ name: sampleImage(staging[0]!).name }]);
    // The run of every account covers both; prod's part of it is done.
    expect(await sql`SELECT account FROM sync_runs WHERE id = ${all.id}`).toEqual([{ account: null }]);
    expect(
      await sql`SELECT count(*)::int AS n FROM targets WHERE account = 'prod' AND last_attempt_at < ${all.startedAt}::timestamptz`,
    ).toEqual([{ n: 0 }]);
    expect(worker.lines().filter((l) => l.includes('rejected GCORE_API_KEY_STAGING'))).toHaveLength(1);
  });

  it("sync --wait over two accounts, one key revoked mid-run: the other's images are all stored, the run is closed, exit 1", async () => {
    const prod = images(1, 300);
    const staging = images(2, 300);
    // prod paced at 100 a second takes at least 3 s; staging's key is revoked after its 100th request, well before that.
    const targets = `${accountsYaml(100, 0)}targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${prod.map((t) => t.imageId).join(', ')}] }
  - { account: staging, project_id: 2, region_id: 7, image_ids: [${staging.map((t) => t.imageId).join(', ')}] }
`;
    const w = await setUp(prod, staging, targets, true);
    const { sql, queues } = w.pipeline.services;
    w.fake.rejectAccount('staging', 100);
    const result = await runCli(['sync', '--wait'], w.processEnv);
    expect(result.code).toBe(1);

    // Every image of prod is stored; staging's first 100 answers are, and each request that got the 401 is one failure.
    const stored = await sql<{ account: string; n: number }[]>`SELECT account, count(*)::int AS n FROM images GROUP BY 1 ORDER BY 1`;
    expect(stored).toEqual([
      { account: 'prod', n: 300 },
      { account: 'staging', n: 100 },
    ]);
    const [failures] = await sql<{ n: number; first: Date }[]>`
      SELECT count(*)::int AS n, min(failed_at) AS first FROM sync_failures WHERE account = 'staging' AND status = 401`;
    expect(failures!.n).toBeGreaterThan(0);
    expect(await sql`SELECT count(*)::int AS n FROM sync_failures WHERE account <> 'staging' OR status <> 401`).toEqual([{ n: 0 }]);
    // Mid-run: prod went on storing after staging's key was rejected.
    const [prodLast] = await sql<{ at: Date }[]>`SELECT max(first_seen_at) AS at FROM images WHERE account = 'prod'`;
    expect(prodLast!.at.getTime()).toBeGreaterThan(failures!.first.getTime());

    // The run is closed, saying why and how much stays queued: staging's targets never tried, each still claimed by a queued job.
    const unattempted = 300 - 100 - failures!.n;
    expect(unattempted).toBeGreaterThan(0);
    const error = 'the API rejected GCORE_API_KEY_STAGING (401), the key of account staging';
    const [run] = await sql`
      SELECT id, status, finished_at IS NOT NULL AS closed, planned, changed, created, failed, unattempted, listings_unfinished, error
      FROM sync_runs`;
    expect(run).toEqual({
      id: 1,
      status: 'incomplete',
      closed: true,
      planned: 600,
      changed: 400,
      created: 400,
      failed: failures!.n,
      unattempted,
      listings_unfinished: 0,
      error,
    });
    const [queued] = await sql<{ n: number; tried: number }[]>`
      SELECT count(*) FILTER (WHERE queued_job IS NOT NULL)::int AS n,
        count(*) FILTER (WHERE last_attempt_at >= (SELECT started_at FROM sync_runs WHERE id = 1))::int AS tried
      FROM targets WHERE account = 'staging'`;
    expect(queued).toEqual({ n: unattempted, tried: 100 + failures!.n });
    const jobs = await queues.forAccount('staging').refresh.getJobCounts('waiting', 'delayed', 'prioritized', 'active');
    expect(jobs.active).toBe(0);
    expect((jobs.waiting ?? 0) + (jobs.delayed ?? 0) + (jobs.prioritized ?? 0)).toBeGreaterThan(0);
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      `run 1: ${400 + failures!.n}/600 refreshed: 400 changed (400 created), 0 unchanged, 0 deleted, ${failures!.n} failed; ` +
        `INCOMPLETE: ${error}: ${unattempted} refreshes not done stay queued for a worker with a valid key`,
    );
    const closed = result.stdout
      .split('\n')
      .filter((line) => line.includes('run closed incomplete'))
      .map((line) => JSON.parse(line));
    expect(closed).toEqual([expect.objectContaining({ run_id: 1, status: 'incomplete', unattempted, error, level: 50 })]);
    const status = (await cli(w, 'status')).split('\n');
    expect(status.find((line) => line.startsWith('last run:'))).toMatch(
      new RegExp(
        `^last run: #1 incomplete \\(manual\\), started \\S+, finished \\S+: 600 planned, 400 changed \\(400 created\\), .*; INCOMPLETE: ${error.replace(/[()]/g, '\\$&')}: ${unattempted} refreshes not done stay queued`,
      ),
    );
  }, 240_000);

  it("an image moved to another account while its refresh is queued is fetched with that account's key, and says so", async () => {
    const w = await setUp(PROD, STAGING, BOTH_NAMED, true, { staging: [1, 2] });
    const { sql, queues } = w.pipeline.services;
    await withWorker(w.pipeline, () => w.pipeline.sync());
    const queued = await w.pipeline.startSync();
    const moved = BOTH_NAMED.replace(
      `image_ids: [${PROD.map((t) => t.imageId).join(', ')}] }`,
      `image_ids: [${PROD.slice(1)
        .map((t) => t.imageId)
        .join(', ')}] }\n  - { account: staging, project_id: 1, region_id: 7, image_ids: [${PROD[0]!.imageId}] }`,
    );
    const file = parseTargetsFile(`${QUIET_SCHEDULE}\n${moved}`, 'moved.yaml');
    await reconcile(sql, queues, file.targets, { accounts: file.accounts });
    w.fake.resetStats();
    w.fake.updateImage(PROD[0]!, { name: 'moved-and-renamed' });
    await withWorker(w.pipeline, () => w.pipeline.waitForRun(queued));
    expect(await sql`SELECT account, name FROM images WHERE image_id = ${PROD[0]!.imageId}`).toEqual([
      { account: 'staging', name: 'moved-and-renamed' },
    ]);
    expect(await sql`SELECT account FROM targets WHERE image_id = ${PROD[0]!.imageId}`).toEqual([{ account: 'staging' }]);
    // prod's key asked only for prod's two images; staging's for its three and the moved one.
    const requests = (account: string) => [...(w.fake.requestsPerSecondByAccount.get(account)?.values() ?? [])].reduce((a, b) => a + b, 0);
    expect([requests('prod'), requests('staging')]).toEqual([2, 4]);
    expect(await sql`SELECT count(*)::int AS n FROM sync_failures`).toEqual([{ n: 0 }]);
  });

  it('holds each account to its own limit across three worker processes, and no key shows in logs, Postgres or the queue store', async () => {
    const prod = images(1, 80);
    const staging = images(2, 20);
    const targets = `${accountsYaml(20, 5)}targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${prod.map((t) => t.imageId).join(', ')}] }
  - { account: staging, project_id: 2, region_id: 7, image_ids: [${staging.map((t) => t.imageId).join(', ')}] }
`;
    const w = await setUp(prod, staging, targets, true);
    const workers = [1, 2, 3].map(() => spawnWorker(w));
    // Three node processes starting on a busy machine can take longer than the default.
    await waitFor(
      'three workers on each account',
      async () => {
        const counts = await Promise.all(
          ['prod', 'staging'].map((a) => w.pipeline.services.queues.forAccount(a).refresh.getWorkersCount()),
        );
        return counts.every((n) => n === 3);
      },
      90_000,
    );
    const started = Date.now();
    const run = await w.pipeline.sync();
    const tookMs = Date.now() - started;
    expect(run).toMatchObject({ planned: 100, changed: 100, failed: 0 });
    const perSecond = (account: string) => [...w.fake.requestsPerSecondByAccount.get(account)!.values()];
    expect(perSecond('prod').reduce((a, b) => a + b, 0)).toBe(80);
    expect(perSecond('staging').reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...perSecond('prod'))).toBeLessThanOrEqual(20);
    expect(Math.max(...perSecond('staging'))).toBeLessThanOrEqual(5);
    // 20 requests at 5 a second cannot take less than 19 slot widths: staging's own limit paced it.
    expect(tookMs).toBeGreaterThan(3800);
    // Each account has a timeline of its own in the store; the implied account's was never used.
    const timelines = w.env.redisUrl
      ? (await w.env.queueEntries()).filter((key) => key.includes(':api-rate'))
      : (await w.pipeline.services.sql<{ key: string }[]>`SELECT key FROM api_rate_timeline`).map((row) => row.key);
    const prefix = w.env.redisUrl ? w.env.queuePrefix : QUEUE_SCHEMA;
    const own = [rateLimitKey(prefix, 'prod'), rateLimitKey(prefix, 'staging')];
    // A Redis timeline lapses a second after its last slot (prod's may be gone by now, on a busy machine); a Postgres row stays.
    if (w.env.redisUrl) expect(own).toEqual(expect.arrayContaining(timelines));
    else expect(timelines.sort()).toEqual(own);

    for (const worker of workers) worker.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([0, 0, 0]);
    const logs = [...w.pipeline.logLines, ...workers.map((worker) => worker.output())].join('\n');
    expect(logs).toContain('"level":20');
    const stored = [await everyStoredText(w), await w.env.queueContents()].join('\n');
    expect(stored).toContain('GCORE_API_KEY_STAGING');
    for (const key of Object.values(w.keys)) {
      expect(logs).not.toContain(key);
      expect(stored).not.toContain(key);
    }
  }, 240_000);
});

/** A worker in this process on the world's accounts, its lines kept. */
function startWorkerHere(w: World) {
  const { logger, lines } = capturedLogger();
  const worker = startWorker({ config: w.pipeline.config, accounts: w.pipeline.accounts, logger, ...w.pipeline.services });
  cleanups.push(() => worker.close());
  return { ...worker, logger, lines: () => lines };
}

function spawnWorker(w: World) {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...w.processEnv, LOG_LEVEL: 'debug', SYNC_CONCURRENCY: '10', SYNC_BATCH_SIZE: '10' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited, output: () => output };
}

/** Every row of every table of the database (the queue schema's too, when the queues are there), as text. */
async function everyStoredText(w: World): Promise<string> {
  const { sql } = w.pipeline.services;
  const tables = await sql<{ schema: string; name: string }[]>`
    SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`;
  const texts = await Promise.all(
    tables.map(
      ({ schema, name }) => sql<{ text: string | null }[]>`SELECT string_agg(t::text, ' ') AS text FROM ${sql(schema)}.${sql(name)} t`,
    ),
  );
  return texts.map(([row]) => row?.text ?? '').join('\n');
}
