// What a worker says at info, a line per event rather than per image: a run
// started (what it queued, the runs it superseded, when its schedule ticks
// next), a run finished (its counts and duration, the next tick), and while
// runs are open their progress at an interval, so an idle worker and a hung
// one read differently. Per-image and per-page lines are at debug.
import type { Sql } from '../db/db.js';
import type { Logger } from './logger.js';
import { every } from './periodic.js';
import { nextTickAt, type Queues } from '../queues/queue.js';
import { describeSchedule } from '../schedule/schedule.js';
import type { Run } from '../sql/startRun.js';
import { closeRun, finishRuns, type FinishedRun } from '../sql/finishRuns.js';
import { openRuns } from '../sql/getRun.js';
import { doneOf } from './run-summary.js';

/** Best effort: a line without its next tick beats no line, and the work it narrates must not fail for it. */
async function nextTick(queues: Queues, scheduleKey: string | null): Promise<string | undefined> {
  if (scheduleKey === null) return undefined;
  const at = await nextTickAt(queues.schedule, scheduleKey).catch(() => undefined);
  return at === undefined ? undefined : new Date(at).toISOString();
}

export async function sayRunStarted(
  queues: Queues,
  logger: Logger,
  run: Run,
  scheduleKey: string,
  fanOut: { queued: number; recovered: number },
): Promise<void> {
  logger.info(
    {
      run_id: run.id,
      schedule: describeSchedule(scheduleKey),
      planned: run.planned,
      queued: fanOut.queued,
      recovered: fanOut.recovered,
      listings: run.listings.length,
      superseded_runs: run.superseded,
      next_tick_at: await nextTick(queues, scheduleKey),
    },
    'run started',
  );
}

/** The line a closed run gets: its frozen counts (runCounts), what it left undone and why, and how long it took. */
async function sayRunClosed(queues: Queues, logger: Logger, run: FinishedRun): Promise<void> {
  const fields = {
    run_id: run.id,
    kind: run.kind,
    schedule: describeSchedule(run.scheduleKey),
    status: run.status,
    planned: run.planned,
    discovered: run.discovered,
    listed: run.listed,
    changed: run.changed,
    created: run.created,
    unchanged: run.unchanged,
    deleted: run.deleted,
    failed: run.failed,
    marked_left: run.markedLeft,
    listings_failed: run.listingsFailed,
    seconds: Math.round(run.seconds * 10) / 10,
    next_tick_at: await nextTick(queues, run.scheduleKey),
  };
  if (run.status === 'finished') logger.info(fields, 'run finished');
  else
    logger.error(
      { ...fields, unattempted: run.unattempted, listings_unfinished: run.listingsUnfinished, error: run.error },
      'run closed incomplete: its work left undone stays queued',
    );
}

/** Closes the runs that are complete (finishRuns) and says so for each. */
export async function finishRunsSaying(sql: Sql, queues: Queues, logger: Logger): Promise<void> {
  for (const run of await finishRuns(sql)) await sayRunClosed(queues, logger, run);
}

/** Closes a run incomplete (closeRun), says so, and returns it as closed; undefined when it had closed already. */
export async function closeRunSaying(
  sql: Sql,
  queues: Queues,
  logger: Logger,
  runId: number,
  error: string,
): Promise<FinishedRun | undefined> {
  const run = await closeRun(sql, runId, error);
  if (run) await sayRunClosed(queues, logger, run);
  return run;
}

/**
 * Every `seconds`, a line per open run: done of planned, failures, and the
 * rate since the last line. Silent while no run is open. Returns its stop,
 * which does not wait for a line being written.
 */
export function sayProgress(sql: Sql, logger: Logger, seconds: number): () => void {
  if (seconds === 0) return () => {};
  // Each run's done count when its last line was written, and when: the rate is over the time between lines.
  const last = new Map<number, { done: number; at: number }>();
  const lines = every(
    seconds * 1000,
    async () => {
      const runs = await openRuns(sql);
      for (const run of runs) {
        const done = doneOf(run);
        const now = Date.now();
        const before = last.get(run.id) ?? { done: 0, at: new Date(run.startedAt).getTime() };
        logger.info(
          {
            run_id: run.id,
            kind: run.kind,
            schedule: describeSchedule(run.scheduleKey),
            done,
            planned: run.planned,
            discovered: run.discovered,
            failed: run.failed,
            per_second: Math.round(((done - before.done) / Math.max(1, (now - before.at) / 1000)) * 10) / 10,
          },
          'run progress',
        );
        last.set(run.id, { done, at: now });
      }
      for (const id of last.keys()) if (!runs.some((run) => run.id === id)) last.delete(id);
    },
    // Postgres being away is reported by the work that needs it; a progress line can wait for the next interval.
    { onError: (error) => logger.debug({ error: error.message }, 'progress line skipped') },
  );
  return () => void lines.stop();
}
