// Issue 26's scale: a million discovered images on one box (the first sync, a refresh with no change
// at the default rate and with none, the WAL that refresh writes, the worker's RSS, the reporting reads
// over a history of ten million versions, the database's size), and the refresh of 100,000 unchanged
// images that its "Done when" bounds.
import { reconcile } from '../src/schedule/reconcile.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { seedHistory, timeAsOf, timeChangeLogHour, type History } from './history.js';
import {
  openContext,
  startFakeApi,
  startWorkerProcess,
  timedSync,
  type BenchContext,
  type FakeApiProcess,
  type QueueStore,
  type WorkerProcess,
} from './harness.js';
import type { ManyImages, Row } from './scenarios.js';

/** The product's default request rate (SYNC_RATE_LIMIT_PER_SECOND). */
const DEFAULT_RATE = 10;
/** A first sync of a million images beside other work on two cores took longer than the harness's usual 30 minutes. */
const SYNC_TIMEOUT_MS = 4 * 3600_000;
/** WAL a refresh that finds nothing changed may write per image (issue 26). */
const WAL_PER_IMAGE = 40;

const n = (count: number) => count.toLocaleString('en-US');

/**
 * Targets `scopes` region scopes of project 1 (the fake's regions 1..scopes). `usage: false` leaves out
 * the listing of who uses each image (4 requests per region more, issue 27, measured in its own row), so
 * the million's requests are its images' alone, as issue 26 bounds them.
 */
export async function configureScopes(ctx: BenchContext, scopes: number, { usage = true } = {}): Promise<void> {
  const discover = usage ? '{}' : '{ usage: false }';
  const entries = Array.from({ length: scopes }, (_, r) => `  - { project_id: 1, region_id: ${r + 1}, discover: ${discover} }`);
  const file = parseTargetsFile(`schedule: { cron: "0 0 1 1 *" }\ntargets:\n${entries.join('\n')}\n`, 'bench');
  await reconcile(ctx.services.sql, ctx.services.queues, file.targets, { scopes: file.scopes });
}

interface Measured {
  seconds: number;
  requests: number;
  /** The requests by endpoint (FakeStats.byEndpoint). */
  byEndpoint: Record<string, number>;
  changed: number;
  unchanged: number;
}

/** A sync of every scope, timed, with the fake API's count of the requests it took. */
export async function measure(ctx: BenchContext, fake: FakeApiProcess): Promise<Measured> {
  await fake.resetStats();
  const { seconds, run } = await timedSync(ctx, { timeoutMs: SYNC_TIMEOUT_MS });
  const { requests, byEndpoint } = await fake.stats();
  return { seconds, requests, byEndpoint, changed: run.changed, unchanged: run.unchanged };
}

interface Quiet extends Measured {
  walBytes: number;
  versionsStored: number;
}

/**
 * A refresh measured as issue 26 measured it: after a VACUUM and a CHECKPOINT (as production's
 * checkpoints every few minutes would have it), so the first change to each page after it is logged
 * whole. The WAL is the server's (pg_current_wal_lsn): run on a server nothing else writes to.
 */
async function quietRefresh(ctx: BenchContext, fake: FakeApiProcess): Promise<Quiet> {
  const { sql } = ctx.services;
  await sql`VACUUM`;
  await sql`CHECKPOINT`;
  const [before] = await sql<{ lsn: string; versions: number }[]>`
    SELECT pg_current_wal_lsn()::text AS lsn, (SELECT count(*) FROM image_versions)::float8 AS versions`;
  const refresh = await measure(ctx, fake);
  const [after] = await sql<{ wal: number; versions: number }[]>`
    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${before!.lsn}::pg_lsn)::float8 AS wal,
      (SELECT count(*) FROM image_versions)::float8 AS versions`;
  return { ...refresh, walBytes: after!.wal, versionsStored: after!.versions - before!.versions };
}

/** One worker process at a time (restarted with other settings), its RSS sampled every 200 ms throughout. */
export class SampledWorker {
  peakMb = 0;
  private worker: WorkerProcess | undefined;
  private readonly sampler = setInterval(() => this.sample(), 200);

  constructor(
    private readonly ctx: BenchContext,
    private readonly apiUrl: string,
  ) {}

  async start(rate: number): Promise<void> {
    await this.stop();
    this.worker = await startWorkerProcess(this.ctx, this.apiUrl, { SYNC_RATE_LIMIT_PER_SECOND: String(rate) });
  }

  async stop(): Promise<void> {
    this.sample();
    await this.worker?.stop();
    this.worker = undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.sampler);
    await this.stop();
  }

  private sample(): void {
    const mb = this.worker?.rssMb() ?? Number.NaN;
    if (Number.isFinite(mb)) this.peakMb = Math.max(this.peakMb, mb);
  }
}

export async function withContext<T>(store: QueueStore, body: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const ctx = await openContext(store);
  try {
    return await body(ctx);
  } finally {
    await ctx.close();
  }
}

const wal = (q: Quiet, images: number) =>
  `${(q.walBytes / images).toFixed(0)} bytes per image (${(q.walBytes / 2 ** 20).toFixed(1)} MB in all), ${n(q.versionsStored)} versions stored`;

/**
 * A million images (at full scale) in region scopes of one project, one worker: the first sync and a
 * refresh with no change at the default rate, then, the worker restarted with no limit, a refresh
 * after a vacuum and a checkpoint (its WAL and time); the worker's RSS through all three; the
 * database's size after them.
 */
async function millionSyncs({ images, scopes }: ManyImages, store: QueueStore): Promise<Row[]> {
  return withContext(store, async (ctx): Promise<Row[]> => {
    const fake = await startFakeApi(images, 0, { projects: 1, regions: scopes });
    const worker = new SampledWorker(ctx, fake.url);
    try {
      await configureScopes(ctx, scopes, { usage: false });
      await worker.start(DEFAULT_RATE);
      const first = await measure(ctx, fake);
      const atRate = await measure(ctx, fake);
      await worker.start(0);
      const free = await quietRefresh(ctx, fake);
      await worker.stop();
      const [{ bytes }] = (await ctx.services.sql`SELECT pg_database_size(current_database())::float8 AS bytes`) as unknown as [
        { bytes: number },
      ];
      if (first.changed !== images) throw new Error(`the first sync created ${first.changed} images, expected ${images}`);
      const label = `${n(images)} images in ${scopes} region scopes, one worker`;
      // Requests at the default rate take requests / rate seconds: the refresh may take a fifth longer.
      const bound = (1.2 * atRate.requests) / DEFAULT_RATE;
      return [
        {
          scenario: `million: first sync, ${label}, ${DEFAULT_RATE} req/s`,
          measured: `${first.seconds.toFixed(1)} s, ${first.requests} requests, ${n(first.changed)} created`,
          target: '-',
          met: null,
          values: { seconds: first.seconds, requests: first.requests, created: first.changed },
        },
        {
          scenario: `million: refresh with no change, ${label}, ${DEFAULT_RATE} req/s`,
          measured: `${atRate.seconds.toFixed(1)} s, ${atRate.requests} requests (${((DEFAULT_RATE * atRate.seconds) / atRate.requests).toFixed(2)}x their time at ${DEFAULT_RATE} req/s)`,
          target: `<= 1.2x the requests' time at ${DEFAULT_RATE} req/s (${bound.toFixed(0)} s)`,
          met: atRate.seconds <= bound && atRate.unchanged === images,
          values: { seconds: atRate.seconds, requests: atRate.requests },
        },
        {
          scenario: `million: refresh with no change, ${label}, no limit, after a vacuum and a checkpoint`,
          measured: `${free.seconds.toFixed(1)} s (${(free.seconds / first.seconds).toFixed(2)}x the first sync); ${wal(free, images)}`,
          target: `<= ${WAL_PER_IMAGE} bytes of WAL per image; no version stored`,
          met: free.walBytes / images <= WAL_PER_IMAGE && free.versionsStored === 0 && free.unchanged === images,
          values: {
            seconds: free.seconds,
            walBytes: free.walBytes,
            walPerImage: free.walBytes / images,
            versionsStored: free.versionsStored,
          },
        },
        {
          scenario: `million: worker RSS through all three`,
          measured: `peak ${worker.peakMb.toFixed(0)} MB`,
          target: '<= 250 MB',
          met: worker.peakMb <= 250,
          values: { peakMb: worker.peakMb },
        },
        {
          scenario: `million: database size after the three syncs`,
          measured: `${(bytes / 2 ** 30).toFixed(2)} GiB (${(bytes / images).toFixed(0)} bytes per image)`,
          target: '-',
          met: null,
          values: { bytes },
        },
      ];
    } finally {
      await worker.close();
      await fake.stop();
    }
  });
}

/** images_as_of and an hour of the change log over a history written by bulk SQL. */
async function historyRows(history: History, store: QueueStore): Promise<Row[]> {
  return withContext(store, async (ctx): Promise<Row[]> => {
    const { sql } = ctx.services;
    await seedHistory(sql, history);
    const asOf = await timeAsOf(sql, history);
    const hour = await timeChangeLogHour(sql, history);
    const label = `${n(history.images)} images x ${history.versions} versions`;
    return [
      {
        scenario: `million: images_as_of over ${label}`,
        measured: `${asOf.toFixed(3)} s`,
        target: '<= 2 s',
        met: asOf <= 2,
        values: { seconds: asOf },
      },
      {
        scenario: `million: one hour of image_change_log over ${label}`,
        measured: `${(hour.seconds * 1000).toFixed(0)} ms, ${n(hour.rows)} changes`,
        target: '<= 100 ms',
        met: hour.seconds <= 0.1,
        values: { seconds: hour.seconds, rows: hour.rows },
      },
    ];
  });
}

/** The million images' syncs (about 40 minutes on a quiet 2-core machine, longer beside other work). */
export function million(many: ManyImages, store: QueueStore): Promise<Row[]> {
  return millionSyncs(many, store);
}

/** The reporting reads over `images` x `versions` (seeding ten million versions takes minutes of its own). */
export function millionHistory(images: number, versions: number, store: QueueStore): Promise<Row[]> {
  return historyRows({ images, versions, changes: true }, store);
}

/**
 * Issue 26's "Done when": one worker, no limit, images in region scopes; the first sync creates them,
 * then a refresh that finds nothing changed after a vacuum and a checkpoint: its WAL per image, the
 * versions it stored, and its time against the first sync's.
 */
export async function unchangedRefresh({ images, scopes }: ManyImages, store: QueueStore): Promise<Row[]> {
  return withContext(store, async (ctx): Promise<Row[]> => {
    const fake = await startFakeApi(images, 0, { projects: 1, regions: scopes });
    const worker = new SampledWorker(ctx, fake.url);
    try {
      await configureScopes(ctx, scopes);
      await worker.start(0);
      const first = await measure(ctx, fake);
      const refresh = await quietRefresh(ctx, fake);
      const ratio = refresh.seconds / first.seconds;
      const label = `${n(images)} images in ${scopes} region scopes of ${n(images / scopes)}, one worker, no limit`;
      return [
        {
          scenario: `unchanged: first sync, ${label}`,
          measured: `${first.seconds.toFixed(1)} s, ${first.requests} requests, ${n(first.changed)} created`,
          target: '-',
          met: null,
          values: { seconds: first.seconds, requests: first.requests, created: first.changed },
        },
        {
          scenario: `unchanged: refresh with no change, ${label}, after a vacuum and a checkpoint`,
          measured: `${refresh.seconds.toFixed(1)} s = ${ratio.toFixed(2)}x the first sync; ${wal(refresh, images)}`,
          target: `<= ${WAL_PER_IMAGE} bytes of WAL per image; no version stored; <= 0.25x the first sync's time`,
          met: refresh.walBytes / images <= WAL_PER_IMAGE && refresh.versionsStored === 0 && ratio <= 0.25 && refresh.unchanged === images,
          values: {
            seconds: refresh.seconds,
            ratio,
            walBytes: refresh.walBytes,
            walPerImage: refresh.walBytes / images,
            versionsStored: refresh.versionsStored,
          },
        },
      ];
    } finally {
      await worker.close();
      await fake.stop();
    }
  });
}
