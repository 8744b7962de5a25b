// What the benchmark scenarios share: a fresh database per run, with the queues
// on Redis (a key prefix of its own) or in that database, the fake Gcore API and
// the workers as child processes (as in production), and timing of a sync from
// request to the last outcome.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { loadConfig, type Config } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { spreadTriples } from '../src/fake-gcore/fixtures.js';
import { createLogger } from '../src/ops/logger.js';
import { startManualSync, waitForRun } from '../src/work/manual-sync.js';
import { reconcile } from '../src/schedule/reconcile.js';
import { openServices, type Services } from '../src/queues/services.js';
import type { RunProgress } from '../src/sql/getRun.js';
import { parseTargets } from '../src/config/targets.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const API_KEY = 'bench-key';
/**
 * Without a cap V8 grows the heap lazily towards gigabytes, and Node 24 sizes
 * the young generation larger than Node 20 did (+100 MB of RSS): these keep RSS
 * flat and under 250 MB.
 */
const WORKER_HEAP_ARGS = ['--max-old-space-size=256', '--max-semi-space-size=16'];

/** Where a scenario's queues (and request timeline) live: backend.ts decides by REDIS_URL alone. */
export type QueueStore = 'redis' | 'postgres';

export const STORE_NAMES: Record<QueueStore, string> = { redis: 'Redis', postgres: 'Postgres' };

/** REDIS_URL as the product reads it (blank counts as unset): without it only the Postgres store can run. */
export function benchRedisUrl(): string | undefined {
  return loadConfig().redisUrl;
}

export interface BenchContext {
  config: Config;
  services: Services;
  /** The benchmark's own Redis connection (cleanup, memory), when the queues run on Redis. */
  redis: Redis | undefined;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A database of its own (created on DATABASE_URL's server) and queues of its
 * own on `store`: a Redis prefix, or the queue schema of that database (the
 * workers and the benchmark get no REDIS_URL); `settings` are the SYNC_*
 * settings the workers will run with.
 */
export async function openContext(store: QueueStore, settings: Record<string, string> = {}): Promise<BenchContext> {
  const base = loadConfig();
  // Each run makes and drops a database of its own, on a server it names.
  if (base.databaseUrl === undefined)
    throw new ConfigError('environment', ['DATABASE_URL: the benchmark needs a PostgreSQL server it may create databases on']);
  if (store === 'redis' && base.redisUrl === undefined)
    throw new ConfigError('environment', ['REDIS_URL: a scenario with its queues on Redis needs a Redis server']);
  const { databaseUrl } = base;
  const redisUrl = store === 'redis' ? base.redisUrl : undefined;
  const suffix = `${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const name = `gis_bench_${suffix}`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: url.toString(),
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    QUEUE_PREFIX: `gis-bench-${suffix}`,
    GCORE_API_KEY: API_KEY,
    LOG_LEVEL: 'warn',
    SYNC_RATE_LIMIT_PER_SECOND: '0',
    // Only the audit-log row follows the log: in the others its requests would count against the limit.
    AUDIT_LOG_POLL_SECONDS: '0',
    ...settings,
  };
  const config = loadConfig(env);
  const services = await openServices(config);
  const redis = redisUrl ? new Redis(redisUrl) : undefined;
  return {
    config,
    services,
    redis,
    env,
    async close() {
      // Every key under this run's prefix: both queues, the baseline's, the rate limiter's. On Postgres
      // the queues go with the database.
      let cursor = '0';
      while (redis) {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.QUEUE_PREFIX}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
        if (cursor === '0') break;
      }
      redis?.disconnect();
      await services.close();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** A schedule that never comes round in a benchmark: every refresh measured is one the benchmark asks for. */
const YEARLY = '{ cron: "0 0 1 1 *" }';

/**
 * The fake API's generated images (`fake-api --images`: spreadTriples), one target entry per project and
 * region, on `schedule` (YAML; yearly unless given); with `accountOf`, each entry of the account it names for
 * its project (the file's `accounts` are the caller's).
 */
export function targetsYaml(
  count: number,
  { accountOf, schedule = YEARLY }: { accountOf?: (projectId: number) => string; schedule?: string } = {},
): string {
  const ids = new Map<string, string[]>();
  for (const { projectId, regionId, imageId } of spreadTriples(count)) {
    const account = accountOf ? `account: ${accountOf(projectId)}\n    ` : '';
    const pair = `${account}project_id: ${projectId}\n    region_id: ${regionId}`;
    if (!ids.has(pair)) ids.set(pair, []);
    ids.get(pair)!.push(imageId);
  }
  const entries = [...ids].map(([pair, imageIds]) => `  - ${pair}\n    image_ids: [${imageIds.join(', ')}]\n`);
  return `schedule: ${schedule}\ntargets:\n${entries.join('')}`;
}

export async function configureTargets(ctx: BenchContext, count: number, schedule?: string): Promise<void> {
  await reconcile(ctx.services.sql, ctx.services.queues, parseTargets(targetsYaml(count, { schedule }), 'bench'));
}

/** Children still running, stopped when the benchmark exits. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/**
 * Stops `child` when the benchmark process exits: a scenario that fails before
 * its own cleanup (a worker that does not start) must not leave the fake API or
 * workers running after it.
 */
export function stopOnExit<T extends ChildProcess>(child: T): T {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Resolves the first match of `pattern` in what the child prints. */
function waitForLine(child: ChildProcess, pattern: RegExp, stream: 'stdout' | 'stderr'): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child[stream]!.on('data', (chunk) => {
      seen += chunk;
      const match = pattern.exec(seen);
      if (match) resolve(match);
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing ${pattern}: ${seen.slice(-500)}`)));
  });
}

interface FakeStats {
  requests: number;
  perSecond: Record<string, number>;
  /** By account name (with --account), then by second. */
  perSecondByAccount: Record<string, Record<string, number>>;
  /** By endpoint: image (the single-image GET), images, bmimages, projects, regions, user_actions, and each consumer list's (volumes, ...). */
  byEndpoint: Record<string, number>;
}

export interface FakeApiProcess {
  url: string;
  stats(): Promise<FakeStats>;
  touchAll(): Promise<void>;
  resetStats(): Promise<void>;
  /** Deletes every n-th image; resolves how many. */
  deleteEvery(n: number): Promise<number>;
  /** Renames every image as the user with this email, one audit-log entry each; resolves how many. */
  renameAll(email: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The fake API in a process of its own, serving `images` generated images (spread as `spread` says, else its default,
 * with `spread.volumes` volumes made from them: fake-api --volumes),
 * to the bench key or, given `accounts` (`NAME:KEY:PROJECTS`, as fake-api --account takes them), to each account's.
 */
export async function startFakeApi(
  images: number,
  latencyMs = 0,
  spread?: { projects: number; regions: number; volumes?: number },
  accounts: string[] = [],
): Promise<FakeApiProcess> {
  const layout = spread ? ['--projects', String(spread.projects), '--regions', String(spread.regions)] : [];
  if (spread?.volumes !== undefined) layout.push('--volumes', String(spread.volumes));
  const child = stopOnExit(
    spawn(
      process.execPath,
      [
        CLI,
        'fake-api',
        // A free port the system picks: a random one collided with other processes' ephemeral ports.
        '--port',
        '0',
        '--images',
        String(images),
        '--api-key',
        API_KEY,
        '--latency-ms',
        String(latencyMs),
        ...layout,
        ...accounts.flatMap((account) => ['--account', account]),
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    ),
  );
  const url = (await waitForLine(child, /fake Gcore API on (\S+)/, 'stderr'))[1]!;
  const control = async (path: string, method = 'POST', body?: unknown) =>
    (await fetch(`${url}/__fake/${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })).json();
  return {
    url,
    stats: () => control('stats', 'GET') as Promise<FakeStats>,
    touchAll: async () => void (await control('touch-all')),
    resetStats: async () => void (await control('reset-stats')),
    deleteEvery: async (n) => ((await control('delete', 'POST', { every: n })) as { deleted: number }).deleted,
    renameAll: async (email) => ((await control('rename-all', 'POST', { email })) as { renamed: number }).renamed,
    stop: () => stopChild(child),
  };
}

export interface WorkerProcess {
  pid: number;
  /** Resident set size now, in MB (from /proc). */
  rssMb(): number;
  stop(): Promise<void>;
}

export async function startWorkerProcess(ctx: BenchContext, apiUrl: string, settings: Record<string, string>): Promise<WorkerProcess> {
  // The heap cap the README documents for workers; BENCH_WORKER_NODE_ARGS (e.g.
  // "--cpu-prof --cpu-prof-dir=/tmp/prof") adds to it, to profile the workers alone.
  const nodeArgs = [...WORKER_HEAP_ARGS, ...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  const child = stopOnExit(
    spawn(process.execPath, [...nodeArgs, CLI, 'worker'], {
      env: { ...ctx.env, GCORE_BASE_URL: apiUrl, LOG_LEVEL: 'info', ...settings },
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await waitForLine(child, /"msg":"worker started"/, 'stdout');
  // Per-refresh info lines are not what is measured here: drain them unread.
  child.stdout.resume();
  return {
    pid: child.pid!,
    rssMb() {
      // Gone (exited, or killed from outside): no reading, rather than an error thrown from a sampling timer.
      if (child.exitCode !== null || child.signalCode !== null) return Number.NaN;
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : Number.NaN;
    },
    stop: () => stopChild(child),
  };
}

/** Stops `child` and resolves once it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export interface TimedSync {
  run: RunProgress;
  seconds: number;
  perSecond: number;
}

/**
 * A manual sync of every target, timed from the request to the last outcome. The wait reads only whether
 * the run has closed (every 250 ms, as `sync --wait` does), never its live counts: a scheduled refresh has
 * no one waiting, and counting an open run reads every target in its scope.
 */
export async function timedSync(ctx: BenchContext, { timeoutMs = 30 * 60_000 }: { timeoutMs?: number } = {}): Promise<TimedSync> {
  const started = performance.now();
  const { sql, queues } = ctx.services;
  const manual = await startManualSync(sql, queues, ctx.config.batchSize);
  const run = await waitForRun(sql, queues, manual, null, {
    batchSize: ctx.config.batchSize,
    logger: createLogger('warn'),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const seconds = (performance.now() - started) / 1000;
  const done = run.unchanged + run.changed + run.deleted + run.failed;
  if (run.failed > 0) throw new Error(`benchmark sync had ${run.failed} failed refreshes`);
  return { run, seconds, perSecond: done / seconds };
}
