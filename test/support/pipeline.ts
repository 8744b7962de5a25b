// The real pipeline wired for a test: targets file -> reconcile -> worker ->
// fake API -> Postgres, with the logs captured.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { withKeys, type KeyedAccount } from '../../src/config/accounts.js';
import type { Config } from '../../src/config/config.js';
import { createLogger, type Logger } from '../../src/ops/logger.js';
import { startManualSync, waitForRun, type ManualRun } from '../../src/work/manual-sync.js';
import { reconcile } from '../../src/schedule/reconcile.js';
import { openServices, type Services } from '../../src/queues/services.js';
import { startCli } from './cli.js';
import type { RunProgress } from '../../src/sql/getRun.js';
import { loadTargetsFile } from '../../src/config/targets.js';
import { startWorker, type RunningWorker } from '../../src/work/worker.js';
import { sampleImage } from '../../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../../src/fake-gcore/server.js';
import type { Triple } from '../../src/interfaces.js';
import { createTestEnv, type TestEnv } from './env.js';

/** A schedule that does not fire during a test, so only manual syncs refresh. */
export const QUIET_SCHEDULE = 'schedule: { cron: "0 0 1 1 *", tz: UTC }';

export interface Pipeline {
  /** The targets file's accounts, with their keys from the test's environment. */
  accounts: KeyedAccount[];
  config: Config;
  services: Services;
  logLines: string[];
  /** A manual sync through the worker, resolved once every target has an outcome. */
  sync(): Promise<RunProgress>;
  /** Queues a manual sync and returns its run without waiting. */
  startSync(): Promise<ManualRun>;
  waitForRun(run: ManualRun, timeoutMs?: number): Promise<RunProgress>;
  close(): Promise<void>;
}

export async function writeTargetsFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gis-targets-'));
  const path = join(dir, 'targets.yaml');
  await writeFile(path, content);
  return path;
}

export interface PipelineOptions {
  /** Environment overrides (REDIS_URL, DATABASE_URL, SYNC_*). */
  env?: Record<string, string>;
  /** Start no worker in this process (another process works the queue). */
  noWorker?: boolean;
}

/** A logger at debug level whose lines are kept, for a test to read. */
export function capturedLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    }),
  );
  return { logger, lines };
}

export async function startPipeline(env: TestEnv, baseUrl: string, targetsYaml: string, options: PipelineOptions = {}): Promise<Pipeline> {
  const overrides = options.env ?? {};
  const config = env.config({ GCORE_BASE_URL: baseUrl, TARGETS_FILE: await writeTargetsFile(targetsYaml), ...overrides });
  const { logger, lines: logLines } = capturedLogger();
  const services = await openServices(config);
  const file = await loadTargetsFile(config.targetsFile);
  await reconcile(services.sql, services.queues, file.targets, { scopes: file.scopes, accounts: file.accounts });
  const accounts = withKeys(file.accounts, { ...env.env, ...overrides }, config.targetsFile);
  const worker: RunningWorker | undefined = options.noWorker ? undefined : startWorker({ config, accounts, logger, ...services });
  const startSync = () => startManualSync(services.sql, services.queues, config.batchSize);
  const waitRun = (run: ManualRun, timeoutMs = 90_000) =>
    waitForRun(services.sql, services.queues, run, () => {}, {
      logger,
      batchSize: config.batchSize,
      pollMs: 50,
      signal: AbortSignal.timeout(timeoutMs),
    });
  return {
    config,
    accounts,
    services,
    logLines,
    startSync,
    waitForRun: waitRun,
    sync: async () => waitRun(await startSync()),
    async close() {
      await worker?.close();
      await services.close();
    },
  };
}

/** Runs `body` while a worker (logging nothing) works this pipeline's queues, as one started later would. */
export async function withWorker<T>(pipeline: Pipeline, body: () => Promise<T>): Promise<T> {
  const worker = startWorker({
    config: pipeline.config,
    accounts: pipeline.accounts,
    logger: createLogger('silent'),
    ...pipeline.services,
  });
  try {
    return await body();
  } finally {
    await worker.close();
  }
}

export interface Scenario {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
  close(): Promise<void>;
}

/**
 * A fresh database and key prefix, the fake API serving a sample image for
 * each triple, and the pipeline tracking them on a schedule that stays quiet.
 */
export async function startScenario(triples: Triple[], options: PipelineOptions = {}): Promise<Scenario> {
  const env = await createTestEnv();
  const fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const entries = triples.map((t) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
  const pipeline = await startPipeline(env, fake.url, `${QUIET_SCHEDULE}\ntargets:\n${entries.join('\n')}\n`, options);
  return {
    env,
    fake,
    pipeline,
    async close() {
      await pipeline.close();
      await fake.stop();
      await env.cleanup();
    },
  };
}

/**
 * A manual sync worked by a worker process killed with SIGKILL once `killWhen` holds (the fake answering
 * slowly until then), then by another: what the run came to. The pipeline must start no worker of its own.
 */
export async function syncThroughKilledWorker(
  pipeline: Pipeline,
  fake: FakeGcore,
  env: Record<string, string>,
  killWhen: () => boolean,
): Promise<RunProgress> {
  fake.latencyMs = 300;
  const doomed = startCli(['worker'], env);
  const run = await pipeline.startSync();
  await expect.poll(killWhen, { timeout: 20_000, interval: 20 }).toBe(true);
  process.kill(doomed.pid, 'SIGKILL');
  expect((await doomed.exited).code).toBe(null);
  fake.latencyMs = 0;
  const survivor = startCli(['worker'], env);
  try {
    return await pipeline.waitForRun(run, 60_000);
  } finally {
    await survivor.stop();
  }
}
