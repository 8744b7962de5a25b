// The benchmark's scenarios, each measured in its own fresh database.
import { Queue } from 'bullmq';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spreadTriples } from '../src/fake-gcore/fixtures.js';
import { reconcile } from '../src/reconcile.js';
import { parseTargets, parseTargetsFile } from '../src/targets.js';
import { BASELINE_QUEUE } from './baseline-worker.js';
import { configureTargets, openContext, startFakeApi, startWorkerProcess, targetsYaml, timedSync, type BenchContext } from './harness.js';

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
}

export const FULL: Scale = {
  refreshes: 20_000,
  limited: 2_000,
  rateLimit: 100,
  reconcile: 100_000,
  soak: 100_000,
  asOfImages: 100_000,
  asOfVersions: 20,
  discovered: 100_000,
  discoveryRegions: 10,
  discoveryRateLimit: 10,
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
};

/** The settings the README documents for throughput on a small machine. */
export const THROUGHPUT_SETTINGS = { SYNC_CONCURRENCY: '100', SYNC_BATCH_SIZE: '100', SYNC_RATE_LIMIT_PER_SECOND: '0' };

export interface Row {
  scenario: string;
  measured: string;
  target: string;
  /** null where the row has no target of its own (reported for a ratio). */
  met: boolean | null;
  values: Record<string, number>;
}

async function withContext<T>(settings: Record<string, string>, body: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const ctx = await openContext(settings);
  try {
    return await body(ctx);
  } finally {
    await ctx.close();
  }
}

const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} images/s`;

/** The hand-written pipeline, second pass over the same images (rows exist, as in steady state). */
export async function baseline(scale: Scale): Promise<Row> {
  return withContext({}, async (ctx) => {
    const fake = await startFakeApi(scale.refreshes);
    await ctx.services.sql`
      CREATE TABLE baseline_images (project_id int, region_id int, image_id text, raw jsonb, seen_at timestamptz,
        PRIMARY KEY (project_id, region_id, image_id))`;
    const script = fileURLToPath(new URL('./baseline-worker.js', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...ctx.env, GCORE_BASE_URL: fake.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
        scenario: `baseline: hand-written pipeline, ${scale.refreshes.toLocaleString('en-US')} images (second pass)`,
        measured: rate(perSecond),
        target: 'reported, for the ratio',
        met: null,
        values: { perSecond, seconds },
      };
    } finally {
      await queue.close();
      child.kill('SIGTERM');
      await fake.stop();
    }
  });
}

/** Steady state (nothing changed) and every image changed, one worker process. */
export async function throughput(scale: Scale, baselinePerSecond: number): Promise<Row[]> {
  return withContext(THROUGHPUT_SETTINGS, async (ctx) => {
    const fake = await startFakeApi(scale.refreshes);
    const worker = await startWorkerProcess(ctx, fake.url, THROUGHPUT_SETTINGS);
    try {
      await configureTargets(ctx, scale.refreshes);
      await timedSync(ctx);
      const steady = await timedSync(ctx);
      await fake.touchAll();
      const changed = await timedSync(ctx);
      if (changed.run.changed !== scale.refreshes) throw new Error(`expected every image changed, got ${changed.run.changed}`);
      const ratio = steady.perSecond / baselinePerSecond;
      const rows: Row[] = [
        {
          scenario: `steady state: ${scale.refreshes.toLocaleString('en-US')} images, nothing changed, no latency, no limit`,
          measured: `${rate(steady.perSecond)} (${ratio.toFixed(2)}x baseline)`,
          target: '>= 2,500 images/s and >= 1.0x baseline',
          met: steady.perSecond >= 2500 && ratio >= 1,
          values: { perSecond: steady.perSecond, seconds: steady.seconds, ratio },
        },
        {
          scenario: 'every image changed (new version + change rows)',
          measured: rate(changed.perSecond),
          target: '>= 1,200 images/s',
          met: changed.perSecond >= 1200,
          values: { perSecond: changed.perSecond, seconds: changed.seconds },
        },
      ];
      return rows;
    } finally {
      await worker.stop();
      await fake.stop();
    }
  });
}

export async function latency(scale: Scale): Promise<Row> {
  return withContext(THROUGHPUT_SETTINGS, async (ctx) => {
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

/** Three worker processes sharing one limit; the fake API counts requests per calendar second. */
export async function rateLimited(scale: Scale): Promise<Row> {
  const settings = { SYNC_RATE_LIMIT_PER_SECOND: String(scale.rateLimit), SYNC_CONCURRENCY: '20', SYNC_BATCH_SIZE: '20' };
  return withContext(settings, async (ctx) => {
    const fake = await startFakeApi(scale.limited);
    const workers = await Promise.all([1, 2, 3].map(() => startWorkerProcess(ctx, fake.url, settings)));
    try {
      await configureTargets(ctx, scale.limited);
      await fake.resetStats();
      await timedSync(ctx);
      const seconds = Object.entries((await fake.stats()).perSecond)
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([, n]) => n);
      const full = seconds.slice(1, -1);
      const max = Math.max(...seconds);
      const mean = full.reduce((sum, n) => sum + n, 0) / Math.max(full.length, 1);
      return {
        scenario: `limit ${scale.rateLimit} req/s, three worker processes, ${scale.limited.toLocaleString('en-US')} images`,
        measured: `max ${max} in a calendar second; mean of ${full.length} full seconds ${mean.toFixed(1)}`,
        target: `no second above ${scale.rateLimit}; mean >= ${(scale.rateLimit * 0.95).toFixed(0)}`,
        met: max <= scale.rateLimit && mean >= scale.rateLimit * 0.95,
        values: { max, mean, seconds: seconds.length },
      };
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await fake.stop();
    }
  });
}

async function redisMemory(ctx: BenchContext): Promise<number> {
  const info = await ctx.redis!.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

export async function reconcileAtScale(scale: Scale): Promise<Row[]> {
  return withContext({}, async (ctx) => {
    const targets = parseTargets(targetsYaml(scale.reconcile), 'bench');
    const before = await redisMemory(ctx);
    let started = performance.now();
    await reconcile(ctx.services.sql, ctx.services.queues, targets);
    const cold = (performance.now() - started) / 1000;
    const held = (await redisMemory(ctx)) - before;
    started = performance.now();
    await reconcile(ctx.services.sql, ctx.services.queues, targets);
    const again = (performance.now() - started) / 1000;
    const n = scale.reconcile.toLocaleString('en-US');
    const rows: Row[] = [
      {
        scenario: `${n} triples: reconcile from cold / again with nothing changed`,
        measured: `${cold.toFixed(2)} s / ${again.toFixed(2)} s`,
        target: '<= 20 s / <= 5 s',
        met: cold <= 20 && again <= 5,
        values: { cold, again },
      },
      {
        scenario: `${n} triples: Redis memory held by the schedule`,
        measured: `${(held / 1024 / 1024).toFixed(3)} MB`,
        target: '<= 64 MB',
        met: held <= 64 * 1024 * 1024,
        values: { bytes: held },
      },
    ];
    return rows;
  });
}

/** Worker RSS while it refreshes every image twice (after a first load that is not measured). */
export async function soak(scale: Scale): Promise<Row> {
  return withContext(THROUGHPUT_SETTINGS, async (ctx) => {
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
export async function asOf(scale: Scale): Promise<Row> {
  return withContext({}, async (ctx) => {
    const sql = ctx.services.sql;
    const { asOfImages: images, asOfVersions: versions } = scale;
    await sql`
      INSERT INTO images (project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, last_seen_at, last_changed_at)
      SELECT 1, 1, 'img-' || n, 'image ' || n, 'Luxembourg-2', 'active', 'private', 'ubuntu', '22.04', 'linux', 'qcow2',
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
    await sql`ANALYZE images`;
    await sql`ANALYZE image_versions`;
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
export async function discovery(scale: Scale): Promise<Row[]> {
  const settings = { SYNC_RATE_LIMIT_PER_SECOND: String(scale.discoveryRateLimit) };
  return withContext(settings, async (ctx) => {
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
