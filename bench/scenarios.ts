// The benchmark's scenarios, each measured in its own fresh database.
import { Queue } from 'bullmq';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spreadTriples } from '../src/fake-gcore/fixtures.js';
import { QUEUE_SCHEMA } from '../src/queues/postgres-backend.js';
import { reconcile } from '../src/schedule/reconcile.js';
import { parseTargets, parseTargetsFile } from '../src/config/targets.js';
import {
  benchRedisUrl,
  configureTargets,
  openContext,
  startFakeApi,
  startWorkerProcess,
  stopChild,
  stopOnExit,
  STORE_NAMES,
  targetsYaml,
  timedSync,
  type BenchContext,
  type QueueStore,
  type TimedSync,
} from './harness.js';
import type { UiInventory } from './ui-seed.js';

/** The web view's row: the inventory seeded, and how many times each page shape is timed. */
export interface UiScale extends UiInventory {
  /** Timed requests per page shape, after the untimed warm-ups. */
  repeats: number;
}

export interface ManyImages {
  /** Images discovered, spread evenly over `scopes` region scopes of one project. */
  images: number;
  scopes: number;
}

export interface ManyConsumers {
  /** Images discovered, spread evenly over `scopes` region scopes of one project. */
  images: number;
  /** Volumes made from them (fake-api --volumes): two in three attached to an instance of their own. */
  volumes: number;
  scopes: number;
  /** Requests a second (SYNC_RATE_LIMIT_PER_SECOND). */
  rate: number;
}

export interface PushChanges {
  /** Images tracked, each renamed once at the API in each mode. */
  changes: number;
  /** Over how many seconds the renames are spread with pushes on (and polls 600 s apart). */
  pushSpanSeconds: number;
  /** AUDIT_LOG_POLL_SECONDS with no push, and over how many of its intervals the renames are spread then. */
  pollSeconds: number;
  pollIntervals: number;
}

export interface Scale {
  refreshes: number;
  limited: number;
  rateLimit: number;
  reconcile: number;
  soak: number;
  asOfImages: number;
  asOfVersions: number;
  /** Images discovered through region scopes, how many regions (one scope each) they are spread over, and the request rate. */
  discovered: number;
  discoveryRegions: number;
  discoveryRateLimit: number;
  /** Tracked images that one audit-log entry each names. */
  auditEntries: number;
  /** Issue 26's million images on one box, and the versions of each in the history its reporting reads are timed over. */
  million: ManyImages;
  millionVersions: number;
  /** Issue 26's "Done when": a refresh of this many unchanged images. */
  unchanged: ManyImages;
  /** Issue 27's row: images and the volumes made from them, listed with their usage. */
  usage: ManyConsumers;
  /** Issue 28's row: how soon a change is attributed, pushed against polled. */
  push: PushChanges;
  /** Issue 29's rows: the web view's pages over an inventory written by SQL. */
  ui: UiScale;
}

export const FULL: Scale = {
  refreshes: 20_000,
  limited: 2_000,
  // The issue's limit for the queue stores' comparison: 2,000 requests are 40 calendar seconds at it.
  rateLimit: 50,
  reconcile: 100_000,
  soak: 100_000,
  asOfImages: 100_000,
  asOfVersions: 20,
  discovered: 100_000,
  discoveryRegions: 10,
  discoveryRateLimit: 10,
  auditEntries: 10_000,
  million: { images: 1_000_000, scopes: 100 },
  millionVersions: 10,
  unchanged: { images: 100_000, scopes: 4 },
  usage: { images: 100_000, volumes: 300_000, scopes: 10, rate: 10 },
  // The issue's 200 changes: about 100 s with pushes; over three of the default 60 s polls without.
  push: { changes: 200, pushSpanSeconds: 100, pollSeconds: 60, pollIntervals: 3 },
  ui: { images: 1_000_000, versions: 1_000, repeats: 20 },
};
export const QUICK: Scale = {
  refreshes: 300,
  limited: 90,
  rateLimit: 30,
  reconcile: 2_000,
  soak: 500,
  asOfImages: 500,
  asOfVersions: 5,
  discovered: 3_000,
  discoveryRegions: 3,
  discoveryRateLimit: 100,
  auditEntries: 300,
  million: { images: 2_000, scopes: 4 },
  millionVersions: 5,
  unchanged: { images: 2_000, scopes: 4 },
  usage: { images: 2_000, volumes: 6_000, scopes: 3, rate: 100 },
  push: { changes: 10, pushSpanSeconds: 2, pollSeconds: 2, pollIntervals: 3 },
  ui: { images: 2_000, versions: 30, repeats: 2 },
};

/** The hand-written pipeline's queue, which bench/baseline-worker.ts is told to work. */
const BASELINE_QUEUE = 'baseline-refresh';

/** The settings the README documents for throughput on a small machine. */
const THROUGHPUT_SETTINGS = { SYNC_CONCURRENCY: '100', SYNC_BATCH_SIZE: '100', SYNC_RATE_LIMIT_PER_SECOND: '0' };

export interface Row {
  scenario: string;
  measured: string;
  target: string;
  /** null where the row has no target of its own (reported for a ratio). */
  met: boolean | null;
  values: Record<string, number>;
}

async function withContext<T>(store: QueueStore, settings: Record<string, string>, body: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const ctx = await openContext(store, settings);
  try {
    return await body(ctx);
  } finally {
    await ctx.close();
  }
}

const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} images/s`;

/** Why the benchmark cannot run `store` here, or undefined: only Redis needs a server of its own. */
function missing(store: QueueStore): string | undefined {
  return store === 'redis' && benchRedisUrl() === undefined ? 'not run: REDIS_URL is unset' : undefined;
}

/** The row a scenario would have written, saying why it did not run, so the table keeps its shape. */
function notRun({ scenario, target }: Pick<Row, 'scenario' | 'target'>, why: string): Row {
  return { scenario, measured: why, target, met: null, values: {} };
}

/** The hand-written pipeline, second pass over the same images (rows exist, as in steady state). */
export async function baseline(scale: Scale): Promise<Row> {
  const scenario = `baseline: hand-written pipeline, ${scale.refreshes.toLocaleString('en-US')} images (second pass)`;
  const target = 'reported, for the ratio';
  // Its hand-written worker queues on Redis, as the pipeline it stands for did.
  const why = missing('redis');
  if (why) return notRun({ scenario, target }, why);
  return withContext('redis', {}, async (ctx) => {
    const fake = await startFakeApi(scale.refreshes);
    await ctx.services.sql`
      CREATE TABLE baseline_images (project_id int, region_id int, image_id text, raw jsonb, seen_at timestamptz,
        PRIMARY KEY (project_id, region_id, image_id))`;
    const script = fileURLToPath(new URL('./baseline-worker.js', import.meta.url));
    const child = stopOnExit(
      spawn(process.execPath, [script, BASELINE_QUEUE], {
        env: { ...ctx.env, GCORE_BASE_URL: fake.url },
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const queue = new Queue(BASELINE_QUEUE, { connection: ctx.redis!, prefix: ctx.config.queuePrefix });
    try {
      const triples = spreadTriples(scale.refreshes);
      let seconds = 0;
      for (let pass = 0; pass < 2; pass++) {
        const started = performance.now();
        const since = new Date().toISOString();
        for (let start = 0; start < scale.refreshes; start += 1000) {
          const count = Math.min(1000, scale.refreshes - start);
          await queue.addBulk(
            Array.from({ length: count }, (_, n) => ({
              name: 'refresh',
              data: triples[start + n]!,
              opts: { removeOnComplete: true },
            })),
          );
        }
        for (;;) {
          const [row] = await ctx.services.sql`SELECT count(*)::int AS n FROM baseline_images WHERE seen_at >= ${since}`;
          if (row!.n >= scale.refreshes) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        seconds = (performance.now() - started) / 1000;
      }
      const perSecond = scale.refreshes / seconds;
      return {
        scenario,
        measured: rate(perSecond),
        target,
        met: null,
        values: { perSecond, seconds },
      };
    } finally {
      await queue.close();
      // Its worker writes to the queue's keys as it closes: the prefix is emptied only once it has exited.
      await stopChild(child);
      await fake.stop();
    }
  });
}

/** The stores the scenarios that compare them run on, in this order. */
const STORES: QueueStore[] = ['redis', 'postgres'];

const on = (store: QueueStore) => `queues on ${STORE_NAMES[store]}`;

/** `run` on each store that can run here, one after the other (never at once: they share the machine). */
async function eachStore<T>(run: (store: QueueStore) => Promise<T>): Promise<Partial<Record<QueueStore, T>>> {
  const results: Partial<Record<QueueStore, T>> = {};
  for (const store of STORES) if (!missing(store)) results[store] = await run(store);
  return results;
}

/** Steady state (nothing changed) and every image changed, one worker process. */
async function throughputOn(scale: Scale, store: QueueStore): Promise<{ steady: TimedSync; changed: TimedSync }> {
  return withContext(store, THROUGHPUT_SETTINGS, async (ctx) => {
    const fake = await startFakeApi(scale.refreshes);
    const worker = await startWorkerProcess(ctx, fake.url, THROUGHPUT_SETTINGS);
    try {
      await configureTargets(ctx, scale.refreshes);
      await timedSync(ctx);
      const steady = await timedSync(ctx);
      await fake.touchAll();
      const changed = await timedSync(ctx);
      if (changed.run.changed !== scale.refreshes) throw new Error(`expected every image changed, got ${changed.run.changed}`);
      return { steady, changed };
    } finally {
      await worker.stop();
      await fake.stop();
    }
  });
}

/** Throughput with the queues on each store, the Postgres rows beside the Redis ones and measured against them. */
export async function throughput(scale: Scale, baselinePerSecond: number): Promise<Row[]> {
  const syncs = await eachStore((store) => throughputOn(scale, store));
  const n = scale.refreshes.toLocaleString('en-US');
  const kinds = [
    {
      kind: 'steady',
      scenario: `steady state: ${n} images, nothing changed, no latency, no limit`,
      target: '>= 2,500 images/s and >= 1.0x baseline',
    },
    { kind: 'changed', scenario: 'every image changed (new version + change rows)', target: '>= 1,200 images/s' },
  ] as const;
  return kinds.flatMap(({ kind, scenario, target }) =>
    STORES.map((store): Row => {
      const named = { scenario: `${scenario}, ${on(store)}`, target };
      const sync = syncs[store]?.[kind];
      if (!sync) return notRun(named, missing(store)!);
      const notes: string[] = [];
      const values: Record<string, number> = { perSecond: sync.perSecond, seconds: sync.seconds };
      const ratio = sync.perSecond / baselinePerSecond;
      if (kind === 'steady') {
        notes.push(`${ratio.toFixed(2)}x baseline`);
        values.ratio = ratio;
      }
      const redis = syncs.redis?.[kind];
      if (store === 'postgres' && redis) {
        values.toRedis = sync.perSecond / redis.perSecond;
        notes.push(`${values.toRedis.toFixed(2)}x Redis`);
      }
      return {
        ...named,
        measured: notes.length > 0 ? `${rate(sync.perSecond)} (${notes.join(', ')})` : rate(sync.perSecond),
        met: kind === 'steady' ? sync.perSecond >= 2500 && ratio >= 1 : sync.perSecond >= 1200,
        values,
      };
    }),
  );
}

export async function latency(scale: Scale, store: QueueStore): Promise<Row> {
  return withContext(store, THROUGHPUT_SETTINGS, async (ctx) => {
    const fake = await startFakeApi(scale.refreshes, 50);
    const worker = await startWorkerProcess(ctx, fake.url, THROUGHPUT_SETTINGS);
    try {
      await configureTargets(ctx, scale.refreshes);
      await timedSync(ctx);
      const steady = await timedSync(ctx);
      return {
        scenario: 'API latency 50 ms, no limit',
        measured: rate(steady.perSecond),
        target: '>= 1,000 images/s with the documented settings',
        met: steady.perSecond >= 1000,
        values: { perSecond: steady.perSecond, seconds: steady.seconds },
      };
    } finally {
      await worker.stop();
      await fake.stop();
    }
  });
}

/** Three worker processes sharing one limit through the store's timeline; the fake API counts requests per calendar second. */
async function rateLimitedOn(scale: Scale, store: QueueStore): Promise<{ max: number; mean: number; seconds: number; full: number }> {
  // Twice the default concurrency, so that many requests wait for their slots at once in each process.
  const settings = { SYNC_RATE_LIMIT_PER_SECOND: String(scale.rateLimit), SYNC_CONCURRENCY: '20', SYNC_BATCH_SIZE: '20' };
  return withContext(store, settings, async (ctx) => {
    const fake = await startFakeApi(scale.limited);
    const workers = await Promise.all([1, 2, 3].map(() => startWorkerProcess(ctx, fake.url, settings)));
    try {
      await configureTargets(ctx, scale.limited);
      await fake.resetStats();
      await timedSync(ctx);
      // The first and last seconds are partly idle: only the ones between count for the mean.
      return perSecondLoad((await fake.stats()).perSecond);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await fake.stop();
    }
  });
}

/** A calendar second's requests, in order: the most of any second, and the mean of the full ones (all but the first and last). */
function perSecondLoad(perSecond: Record<string, number>): { max: number; mean: number; seconds: number; full: number } {
  const seconds = Object.entries(perSecond)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, n]) => n);
  const full = seconds.slice(1, -1);
  const mean = full.reduce((sum, n) => sum + n, 0) / Math.max(full.length, 1);
  return { max: Math.max(...seconds), mean, seconds: seconds.length, full: full.length };
}

/** The two accounts of the two-account rows: the fake's projects 1 and 2 (half the images each), each at its own limit. */
function twoAccounts(scale: Scale) {
  const prod = Math.round(scale.rateLimit * 0.6);
  return [
    { name: 'prod', project: 1, limit: prod, env: 'GCORE_API_KEY_PROD', key: 'bench-prod-key' },
    { name: 'staging', project: 2, limit: scale.rateLimit - prod, env: 'GCORE_API_KEY_STAGING', key: 'bench-staging-key' },
  ];
}

/** The rate-limit row with two accounts: three worker processes serve both, each account held to its own limit. */
async function twoAccountsOn(scale: Scale, store: QueueStore): Promise<Record<string, ReturnType<typeof perSecondLoad>>> {
  const accounts = twoAccounts(scale);
  const settings = {
    SYNC_CONCURRENCY: '20',
    SYNC_BATCH_SIZE: '20',
    ...Object.fromEntries(accounts.map((a) => [a.env, a.key])),
  };
  return withContext(store, settings, async (ctx) => {
    const fake = await startFakeApi(
      scale.limited,
      0,
      undefined,
      accounts.map((a) => `${a.name}:${a.key}:${a.project}`),
    );
    const workersOf = async () => Promise.all([1, 2, 3].map(() => startWorkerProcess(ctx, fake.url, settings)));
    let workers: Awaited<ReturnType<typeof workersOf>> = [];
    try {
      const header = `accounts:\n${accounts.map((a) => `  ${a.name}: { api_key_env: ${a.env}, rate_limit_per_second: ${a.limit} }\n`).join('')}`;
      const entries = targetsYaml(scale.limited, { accountOf: (project) => accounts.find((a) => a.project === project)!.name });
      const file = parseTargetsFile(header + entries, 'bench');
      await reconcile(ctx.services.sql, ctx.services.queues, file.targets, { accounts: file.accounts });
      // Workers read the accounts from the database, so they start once it names them.
      workers = await workersOf();
      await fake.resetStats();
      await timedSync(ctx);
      const { perSecondByAccount } = await fake.stats();
      return Object.fromEntries(accounts.map((a) => [a.name, perSecondLoad(perSecondByAccount[a.name] ?? {})]));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await fake.stop();
    }
  });
}

export async function rateLimitedAccounts(scale: Scale): Promise<Row[]> {
  const accounts = twoAccounts(scale);
  const runs = await eachStore((store) => twoAccountsOn(scale, store));
  return STORES.flatMap((store) =>
    accounts.map((account): Row => {
      const floor = account.limit * 0.95;
      const named = {
        scenario: `two accounts (${accounts.map((a) => `${a.name} ${a.limit} req/s`).join(', ')}), three worker processes, ${(
          scale.limited / 2
        ).toLocaleString('en-US')} images each: ${account.name}, ${on(store)}`,
        target: `no second above ${account.limit}; mean >= ${floor}`,
      };
      const run = runs[store];
      if (!run) return notRun(named, missing(store)!);
      const { max, mean, seconds, full } = run[account.name]!;
      return {
        ...named,
        measured: `max ${max} in a calendar second; mean of ${full} full seconds ${mean.toFixed(1)}`,
        met: max <= account.limit && mean >= floor,
        values: { max, mean, seconds },
      };
    }),
  );
}

export async function rateLimited(scale: Scale): Promise<Row[]> {
  const limits = await eachStore((store) => rateLimitedOn(scale, store));
  const floor = scale.rateLimit * 0.95;
  return STORES.map((store): Row => {
    const named = {
      scenario: `limit ${scale.rateLimit} req/s, three worker processes, ${scale.limited.toLocaleString('en-US')} images, ${on(store)}`,
      target: `no second above ${scale.rateLimit}; mean >= ${floor}`,
    };
    const limit = limits[store];
    if (!limit) return notRun(named, missing(store)!);
    const { max, mean, seconds, full } = limit;
    return {
      ...named,
      measured: `max ${max} in a calendar second; mean of ${full} full seconds ${mean.toFixed(1)}`,
      met: max <= scale.rateLimit && mean >= floor,
      values: { max, mean, seconds },
    };
  });
}

/** What the queue store holds, in bytes: Redis's whole memory (its delta is this run's), or the queue schema's tables. */
async function storeBytes(ctx: BenchContext): Promise<number> {
  if (ctx.redis) return Number(/used_memory:(\d+)/.exec(await ctx.redis.info('memory'))![1]);
  const [row] = await ctx.services.sql<{ bytes: number }[]>`
    SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8 AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${QUEUE_SCHEMA} AND c.relkind = 'r'`;
  return row!.bytes;
}

/** reconcile() into an empty database and store, then again; what the first left in the store. */
async function reconcileOn(scale: Scale, store: QueueStore): Promise<{ cold: number; again: number; held: number }> {
  return withContext(store, {}, async (ctx) => {
    const targets = parseTargets(targetsYaml(scale.reconcile), 'bench');
    const before = await storeBytes(ctx);
    let started = performance.now();
    await reconcile(ctx.services.sql, ctx.services.queues, targets);
    const cold = (performance.now() - started) / 1000;
    const held = (await storeBytes(ctx)) - before;
    started = performance.now();
    await reconcile(ctx.services.sql, ctx.services.queues, targets);
    const again = (performance.now() - started) / 1000;
    return { cold, again, held };
  });
}

export async function reconcileAtScale(scale: Scale): Promise<Row[]> {
  const runs = await eachStore((store) => reconcileOn(scale, store));
  const n = scale.reconcile.toLocaleString('en-US');
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(3)} MB`;
  const times = STORES.map((store): Row => {
    const named = { scenario: `${n} triples: reconcile from cold / again with nothing changed, ${on(store)}`, target: '<= 20 s / <= 5 s' };
    const run = runs[store];
    if (!run) return notRun(named, missing(store)!);
    return {
      ...named,
      measured: `${run.cold.toFixed(2)} s / ${run.again.toFixed(2)} s`,
      met: run.cold <= 20 && run.again <= 5,
      values: { cold: run.cold, again: run.again },
    };
  });
  const redis = { scenario: `${n} triples: Redis memory held by the schedule`, target: '<= 64 MB' };
  // The queue schema's tables on disk, indexes and TOAST included: Postgres's counterpart of Redis's memory.
  const postgres = { scenario: `${n} triples: size of the queue schema "${QUEUE_SCHEMA}" held by the schedule`, target: '-' };
  return [
    ...times,
    runs.redis
      ? { ...redis, measured: mb(runs.redis.held), met: runs.redis.held <= 64 * 1024 * 1024, values: { bytes: runs.redis.held } }
      : notRun(redis, missing('redis')!),
    { ...postgres, measured: mb(runs.postgres!.held), met: null, values: { bytes: runs.postgres!.held } },
  ];
}

/** Worker RSS while it refreshes every image twice (after a first load that is not measured). */
export async function soak(scale: Scale, store: QueueStore): Promise<Row> {
  return withContext(store, THROUGHPUT_SETTINGS, async (ctx) => {
    const fake = await startFakeApi(scale.soak);
    const worker = await startWorkerProcess(ctx, fake.url, THROUGHPUT_SETTINGS);
    try {
      await configureTargets(ctx, scale.soak);
      await timedSync(ctx);
      const peaks: number[] = [];
      for (let pass = 0; pass < 2; pass++) {
        let peak = 0;
        const sampler = setInterval(() => (peak = Math.max(peak, worker.rssMb())), 200);
        await timedSync(ctx);
        clearInterval(sampler);
        peaks.push(Math.max(peak, worker.rssMb()));
      }
      const [first, second] = peaks as [number, number];
      const flat = second <= first * 1.1;
      return {
        scenario: `worker RSS during a ${scale.soak.toLocaleString('en-US')} refresh; across ${(2 * scale.soak).toLocaleString('en-US')} refreshes`,
        measured: `peak ${first.toFixed(0)} MB, then ${second.toFixed(0)} MB (${flat ? 'flat' : 'grew'})`,
        target: '<= 250 MB; flat',
        met: first <= 250 && second <= 250 && flat,
        values: { firstPeakMb: first, secondPeakMb: second },
      };
    } finally {
      await worker.stop();
      await fake.stop();
    }
  });
}

/** images_as_of over a history seeded straight into image_versions. */
export async function asOf(scale: Scale, store: QueueStore): Promise<Row> {
  return withContext(store, {}, async (ctx) => {
    const sql = ctx.services.sql;
    const { asOfImages: images, asOfVersions: versions } = scale;
    await sql`
      INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, seen_at, last_changed_at)
      SELECT 1, 1, 'img-' || n, 'ordinary', 'image ' || n, 'Luxembourg-2', 'active', 'private', 'ubuntu', '22.04', 'linux', 'qcow2',
        5, 1024, 2361393152, 1, 1, '2024-01-01', '2024-01-01', '{}', 'h' || n, '2024-01-01', now(), '2024-01-01'
      FROM generate_series(1, ${images}) n`;
    await sql`
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state)
      SELECT 1, 1, 'img-' || n, timestamptz '2024-01-01' + (v - 1) * interval '1 day',
        CASE WHEN v < ${versions} THEN timestamptz '2024-01-01' + v * interval '1 day' END,
        'h' || n || '-' || v,
        jsonb_build_object('name', 'image ' || n || ' v' || v, 'status', 'active', 'region', 'Luxembourg-2',
          'os_distro', 'ubuntu', 'tags', jsonb_build_object('team', jsonb_build_object('value', 'platform', 'read_only', false)))
      FROM generate_series(1, ${images}) n, generate_series(1, ${versions}) v`;
    // As autovacuum would after so many inserts (this benchmark's server runs without it): images_as_of counts from an
    // index alone only where the visibility map says its pages hold no change in flight.
    await sql`VACUUM ANALYZE images`;
    await sql`VACUUM ANALYZE image_versions`;
    const at = `2024-01-${String(Math.max(1, Math.floor(versions / 2))).padStart(2, '0')}T12:00:00Z`;
    await sql`SELECT count(*) FROM images_as_of(${at})`;
    const started = performance.now();
    const [row] = await sql`SELECT count(*)::int AS n FROM images_as_of(${at})`;
    const seconds = (performance.now() - started) / 1000;
    if (row!.n !== images) throw new Error(`images_as_of returned ${row!.n} images, expected ${images}`);
    return {
      scenario: `images_as_of over ${images.toLocaleString('en-US')} images x ${versions} versions`,
      measured: `${seconds.toFixed(3)} s`,
      target: '<= 1 s',
      met: seconds <= 1,
      values: { seconds },
    };
  });
}

/**
 * Discovery at the polite default of 10 requests a second (at full scale): the images of one
 * project spread over region scopes, listed by two worker processes. The
 * first sync creates every image; a refresh with no change costs a request
 * per page; with 1 % deleted, each deletion costs its confirming GET.
 */
export async function discovery(scale: Scale, store: QueueStore): Promise<Row[]> {
  const settings = { SYNC_RATE_LIMIT_PER_SECOND: String(scale.discoveryRateLimit) };
  return withContext(store, settings, async (ctx) => {
    const { discovered: images, discoveryRegions: regions } = scale;
    const fake = await startFakeApi(images, 0, { projects: 1, regions });
    const workers = await Promise.all([1, 2].map(() => startWorkerProcess(ctx, fake.url, settings)));
    let peakMb = 0;
    const sampler = setInterval(() => (peakMb = Math.max(peakMb, ...workers.map((w) => w.rssMb()))), 200);
    try {
      const scopes = Array.from({ length: regions }, (_, r) => `  - { project_id: 1, region_id: ${r + 1}, discover: {} }`);
      const file = parseTargetsFile(`schedule: { cron: "0 0 1 1 *" }\ntargets:\n${scopes.join('\n')}\n`, 'bench');
      await reconcile(ctx.services.sql, ctx.services.queues, file.targets, { scopes: file.scopes });
      const measure = async () => {
        await fake.resetStats();
        const sync = await timedSync(ctx);
        return { ...sync, requests: (await fake.stats()).requests };
      };
      const first = await measure();
      const [{ created }] = (await ctx.services.sql`
        SELECT count(*)::int AS created FROM image_changes WHERE change_type = 'created'`) as unknown as [{ created: number }];
      const unchanged = await measure();
      const deleted = await fake.deleteEvery(100);
      const confirming = await measure();
      if (confirming.run.deleted !== deleted) throw new Error(`${deleted} images deleted, ${confirming.run.deleted} confirmed`);
      const per1000 = (n: number) => (1000 * n) / images;
      const label = `${images.toLocaleString('en-US')} images in ${regions} region scopes, ${scale.discoveryRateLimit} req/s`;
      const rows: Row[] = [
        {
          scenario: `discovery: first sync, ${label}`,
          measured: `${first.seconds.toFixed(1)} s, ${first.requests} requests, ${created.toLocaleString('en-US')} created`,
          target: '-',
          met: null,
          values: { seconds: first.seconds, requests: first.requests, created },
        },
        {
          scenario: `discovery: refresh with no change, ${label}`,
          measured: `${unchanged.seconds.toFixed(1)} s, ${unchanged.requests} requests (${per1000(unchanged.requests).toFixed(2)} per 1,000 images)`,
          target: '<= 30 s; <= 1.1 requests per 1,000 images',
          met: unchanged.seconds <= 30 && per1000(unchanged.requests) <= 1.1,
          values: { seconds: unchanged.seconds, requests: unchanged.requests },
        },
        {
          scenario: `discovery: refresh confirming ${deleted.toLocaleString('en-US')} deletions (1 %), ${label}`,
          measured: `${confirming.seconds.toFixed(1)} s, ${confirming.requests} requests`,
          target: '<= 130 s',
          met: confirming.seconds <= 130,
          values: { seconds: confirming.seconds, requests: confirming.requests, deleted },
        },
        {
          scenario: `discovery: worker RSS, two processes, through all three`,
          measured: `peak ${peakMb.toFixed(0)} MB`,
          target: '<= 250 MB',
          met: peakMb <= 250,
          values: { peakMb },
        },
      ];
      return rows;
    } finally {
      clearInterval(sampler);
      await Promise.all(workers.map((w) => w.stop()));
      await fake.stop();
    }
  });
}

/** Polls `check` every 100 ms until it holds; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A burst in the audit log: one user renames every tracked image, one entry
 * each; timed from the burst to the last change put down to that user, with
 * the follower polling every second and no rate limit.
 */
async function auditBurstOn(
  scale: Scale,
  store: QueueStore,
): Promise<{ seconds: number; requests: number; byEndpoint: Record<string, number> }> {
  const settings = { ...THROUGHPUT_SETTINGS, AUDIT_LOG_POLL_SECONDS: '1' };
  return withContext(store, settings, async (ctx) => {
    const images = scale.auditEntries;
    const fake = await startFakeApi(images);
    const worker = await startWorkerProcess(ctx, fake.url, settings);
    const { sql } = ctx.services;
    try {
      await configureTargets(ctx, images);
      await timedSync(ctx);
      await until(
        'a poll of the empty log',
        async () => (await sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`).length > 0,
        30_000,
      );
      await fake.resetStats();
      const started = performance.now();
      if ((await fake.renameAll('bench@example.com')) !== images) throw new Error('the fake did not rename every image');
      await until(
        'every rename put down to its user',
        async () => {
          const [row] = (await sql`
            SELECT count(*)::int AS n FROM image_change_log WHERE field = 'name' AND actor_email = 'bench@example.com'`) as unknown as [
            { n: number },
          ];
          return row.n === images;
        },
        10 * 60_000,
      );
      const seconds = (performance.now() - started) / 1000;
      const stats = await fake.stats();
      return { seconds, requests: stats.requests, byEndpoint: stats.byEndpoint };
    } finally {
      await worker.stop();
      await fake.stop();
    }
  });
}

export async function auditBurst(scale: Scale): Promise<Row[]> {
  const bursts = await eachStore((store) => auditBurstOn(scale, store));
  const n = scale.auditEntries.toLocaleString('en-US');
  return STORES.map((store): Row => {
    const named = {
      scenario: `audit log: ${n} entries about ${n} tracked images, ingested and refreshed, ${on(store)}`,
      target: '<= 30 s',
    };
    const burst = bursts[store];
    if (!burst) return notRun(named, missing(store)!);
    const { user_actions: polls = 0, image: gets = 0 } = burst.byEndpoint;
    return {
      ...named,
      measured: `${burst.seconds.toFixed(1)} s, ${burst.requests} requests (${polls} audit-log pages, ${gets} GETs)`,
      met: burst.seconds <= 30,
      values: { seconds: burst.seconds, requests: burst.requests, logPages: polls, gets },
    };
  });
}
