// Issue 28's row: how soon a change made at the API is in image_change_log, put down to who made it,
// when Gcore pushes its audit log against when the follower only polls it. The same setup twice, each in
// a database, key prefix and ports of its own: the tracked images on an hourly schedule (so no refresh
// the schedule makes finds a rename first), synced once, one worker process, then one rename per image.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_ACCOUNT } from '../src/config/accounts.js';
import type { Sql } from '../src/db/db.js';
import { freePort } from '../src/db/embedded-cluster.js';
import { spreadImages } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { refreshQueueIdle } from '../src/queues/queue.js';
import { configureTargets, openContext, startWorkerProcess, timedSync, type QueueStore, type WorkerProcess } from './harness.js';
import { until, type PushChanges, type Row } from './scenarios.js';

const ACTOR = { email: 'bench-push@example.com' };
/** The polls between the pushes: the issue's "polling at 600 s". */
const PUSH_POLL_SECONDS = 600;
/** How often the database is asked which renames are attributed: the latencies' resolution. */
const WATCH_MS = 75;
/** After the last rename, how long a pushed one may take before it is counted as never attributed. */
const PUSH_GRACE_MS = 60_000;

interface Mode {
  /** AUDIT_LOG_POLL_SECONDS. */
  pollSeconds: number;
  pushed: boolean;
  /** Over how long the renames are spread, evenly. */
  spanMs: number;
}

interface Counts {
  logReads: number;
  imageGets: number;
  subscriptionCalls: number;
}

interface Measured {
  /** Seconds from each attributed rename to the first look that found its row, ascending. */
  latencies: number[];
  /** Renames not attributed by the end of the wait. */
  missing: number;
  /** Requests from the first rename to the end of the wait (pushed: to the read the last push asked for). */
  during: Counts;
  /** Subscription calls before it: the worker's start-up. */
  subscriptionCallsBefore: number;
  pushesSent: number;
  /** Refused or unanswered by the receiver. */
  pushesFailed: number;
  load: { before: number; after: number };
}

function counts(byEndpoint: Record<string, number>): Counts {
  const subscriptionCalls = Object.entries(byEndpoint)
    .filter(([endpoint]) => endpoint.startsWith('user_actions/'))
    .reduce((sum, [, requests]) => sum + requests, 0);
  return { logReads: byEndpoint.user_actions ?? 0, imageGets: byEndpoint.image ?? 0, subscriptionCalls };
}

/** Of `ids`, those whose rename is in image_change_log with its actor: one query for all. */
async function attributed(sql: Sql, ids: string[]): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT DISTINCT image_id::text AS id FROM image_change_log
    WHERE field = 'name' AND actor_email = ${ACTOR.email} AND image_id::text = ANY(${ids}::text[])`;
  return rows.map((row) => row.id);
}

/**
 * One mode: `changes` images served by a fake in this process (so a rename's instant is the fake's own),
 * synced once by a worker process, the follower's first poll done (and with pushes, the client subscribed);
 * then each image renamed once, evenly over `spanMs`, while the database is watched for each rename's row.
 */
async function measureMode(changes: number, mode: Mode, store: QueueStore): Promise<Measured> {
  const ctx = await openContext(store);
  const fake = new FakeGcore({ apiKey: ctx.env.GCORE_API_KEY });
  const images = spreadImages(changes);
  for (const [triple, image] of images) fake.adoptImage(triple, image);
  const { sql } = ctx.services;
  let worker: WorkerProcess | undefined;
  try {
    const apiUrl = await fake.start();
    const port = await freePort();
    const push = {
      AUDIT_PUSH_URL: `http://127.0.0.1:${port}/gcore/audit-push`,
      AUDIT_PUSH_SECRET: randomBytes(32).toString('hex'),
      AUDIT_PUSH_PORT: String(port),
    };
    await configureTargets(ctx, changes, '{ every: 1h }');
    worker = await startWorkerProcess(ctx, apiUrl, { AUDIT_LOG_POLL_SECONDS: String(mode.pollSeconds), ...(mode.pushed ? push : {}) });
    await timedSync(ctx);
    // The schedule's first tick refreshes the images beside the manual sync: its refreshes still queued
    // when the sync's run closes would be counted with the renames'.
    await until('the refreshes of the first sync to drain', () => refreshQueueIdle(ctx.services.queues, [DEFAULT_ACCOUNT]), 120_000);
    await until(
      'the first poll of the log',
      async () => (await sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`).length > 0,
      60_000,
    );
    if (mode.pushed)
      await until(
        'the subscription',
        async () => (await sql`SELECT 1 FROM audit_push WHERE kind = 'webhook' AND subscribed`).length > 0,
        60_000,
      );
    const before = counts({ ...fake.requestsByEndpoint });
    const pushesBefore = fake.pushStats().webhook;
    const loadBefore = loadavg()[0]!;

    const renamedAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    const spacingMs = mode.spanMs / changes;
    const started = performance.now();
    const renames = (async () => {
      for (const [n, [triple]] of images.entries()) {
        const wait = started + n * spacingMs - performance.now();
        if (wait > 0) await sleep(wait);
        fake.renameImageAs(ACTOR, triple, `renamed ${n}`);
        renamedAt.set(triple.imageId, performance.now());
      }
    })();
    // The wait ends a grace after the last rename: with pushes a minute, polled two intervals and a half minute.
    const graceMs = mode.pushed ? PUSH_GRACE_MS : 2 * mode.pollSeconds * 1000 + 30_000;
    let deadline = Infinity;
    // A rename that throws ends the wait at once; awaiting `renames` below says why.
    renames.then(
      () => (deadline = performance.now() + graceMs),
      () => (deadline = -Infinity),
    );
    while (seenAt.size < changes && performance.now() < deadline) {
      const pending = [...renamedAt.keys()].filter((id) => !seenAt.has(id));
      if (pending.length > 0) {
        const found = await attributed(sql, pending);
        const at = performance.now();
        for (const id of found) seenAt.set(id, at);
      }
      await sleep(WATCH_MS);
    }
    await renames;
    if (mode.pushed) {
      // The requests counted are all the renames cost: the last pushes may still be on their way, and
      // the read they ask for a second after the last read.
      await until(
        'every push answered',
        async () => {
          const { sent, failed } = fake.pushStats().webhook;
          return sent + failed - pushesBefore.sent - pushesBefore.failed >= changes;
        },
        60_000,
      );
      await until(
        'the read the last push asked for',
        async () => (await sql`SELECT 1 FROM audit_log_cursors WHERE polled_at < wake_requested_at`).length === 0,
        60_000,
      );
    }
    const after = counts({ ...fake.requestsByEndpoint });
    return {
      latencies: [...seenAt].map(([id, at]) => (at - renamedAt.get(id)!) / 1000).sort((a, b) => a - b),
      missing: changes - seenAt.size,
      during: {
        logReads: after.logReads - before.logReads,
        imageGets: after.imageGets - before.imageGets,
        subscriptionCalls: after.subscriptionCalls - before.subscriptionCalls,
      },
      subscriptionCallsBefore: before.subscriptionCalls,
      pushesSent: fake.pushStats().webhook.sent - pushesBefore.sent,
      pushesFailed: fake.pushStats().webhook.failed - pushesBefore.failed,
      load: { before: loadBefore, after: loadavg()[0]! },
    };
  } finally {
    await worker?.stop();
    await fake.stop();
    await ctx.close();
  }
}

/** The nearest-rank percentile of ascending `values` (0 when there are none). */
function percentile(values: number[], p: number): number {
  return values.length === 0 ? 0 : values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)]!;
}

function summarise(m: Measured, changes: number): { measured: string; values: Record<string, number> } {
  const [p50, p95, max] = [percentile(m.latencies, 50), percentile(m.latencies, 95), m.latencies.at(-1) ?? 0];
  const lost = m.missing > 0 ? `; ${m.missing} of ${changes} NOT attributed by the end of the wait` : '';
  return {
    measured:
      `p50 ${p50.toFixed(1)} s, p95 ${p95.toFixed(1)} s, max ${max.toFixed(1)} s${lost}; requests meanwhile: ` +
      `${m.during.logReads} log reads, ${m.during.imageGets} image GETs, ${m.during.subscriptionCalls} subscription calls ` +
      `(${m.subscriptionCallsBefore} at start-up); ${m.pushesSent} pushes${m.pushesFailed > 0 ? ` (${m.pushesFailed} more failed)` : ''}; load ${m.load.before.toFixed(1)} to ${m.load.after.toFixed(1)}`,
    values: {
      p50,
      p95,
      max,
      missing: m.missing,
      logReads: m.during.logReads,
      imageGets: m.during.imageGets,
      subscriptionCalls: m.during.subscriptionCalls,
      subscriptionCallsAtStart: m.subscriptionCallsBefore,
      pushes: m.pushesSent,
      pushesFailed: m.pushesFailed,
      loadBefore: m.load.before,
      loadAfter: m.load.after,
    },
  };
}

/**
 * Pushed (polls 600 s apart; the renames over `pushSpanSeconds`), then polled alone every `pollSeconds`
 * (the renames over `pollIntervals` of its intervals, so that their latencies cover one): from each
 * rename at the API to the first look that found its row in image_change_log with actor_email set.
 */
export async function pushAgainstPoll(
  { changes, pushSpanSeconds, pollSeconds, pollIntervals }: PushChanges,
  store: QueueStore,
): Promise<Row[]> {
  const pushed = await measureMode(changes, { pushed: true, pollSeconds: PUSH_POLL_SECONDS, spanMs: pushSpanSeconds * 1000 }, store);
  const polled = await measureMode(changes, { pushed: false, pollSeconds, spanMs: pollIntervals * pollSeconds * 1000 }, store);
  const label = `${changes} renames, one worker, hourly schedule`;
  const push = summarise(pushed, changes);
  const poll = summarise(polled, changes);
  return [
    {
      scenario: `audit push: rename to attributed change row, ${label}, pushed (polls every ${PUSH_POLL_SECONDS} s), over ${pushSpanSeconds} s`,
      ...push,
      target: 'p95 <= 5 s, every rename attributed',
      met: pushed.missing === 0 && push.values.p95! <= 5,
    },
    {
      scenario: `audit push: rename to attributed change row, ${label}, polled every ${pollSeconds} s (no push), over ${pollIntervals} polls`,
      ...poll,
      target: '- (what the push is against: about the interval)',
      met: null,
    },
  ];
}
