// A sync asked for by hand: one run over every target (or one), refreshed now
// through the workers, with a way to wait until each has an outcome that
// outlasts a Postgres restart and notices refreshes lost with Redis's data.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Sql } from '../db/db.js';
import { lostJobs, queueListings, queueRefreshes, requeueListings } from './fan-out.js';
import type { Triple } from '../interfaces.js';
import { refreshQueueIdle, type Queues } from '../queues/queue.js';
import type { Logger } from '../ops/logger.js';
import { finishRunsSaying } from '../ops/run-log.js';
import { onlyStoppedRemain } from '../ops/run-summary.js';
import { unfinishedByAccount } from '../sql/finishRuns.js';
import { getRun, getRunUncounted, type RunProgress } from '../sql/getRun.js';
import { runListingOpen } from '../sql/runListings.js';
import { loadAccounts } from '../sql/accounts.js';
import { LOST, POLL, STORE_AWAY } from './retry-policy.js';
import { releaseClaims } from '../sql/releaseClaims.js';
import { startRun, type Run } from '../sql/startRun.js';
import { isTransientStoreError } from '../db/store-errors.js';

export interface ManualRun extends Run {
  target?: Triple;
  account?: string;
}

/** Opens a manual run over every target (or one, `target`, or those of one account) and queues their refreshes. */
export async function startManualSync(
  sql: Sql,
  queues: Queues,
  batchSize: number,
  which: { target?: Triple; account?: string } = {},
): Promise<ManualRun> {
  const { target, account } = which;
  const run = await startRun(sql, { kind: 'manual', scheduleKey: null, account, target, trigger: `manual:${randomUUID()}` });
  await queueRefreshes(sql, queues, { scheduleKey: null, account, target }, `m${run.id}`, batchSize);
  await queueListings(queues, run.listings);
  return { ...run, target, account };
}

/**
 * Refreshes of the run that can no longer happen: claims whose job is gone
 * from Redis are freed, and when nothing is queued or running anywhere, the
 * run's targets still without an outcome are queued again.
 */
async function requeueLost(sql: Sql, queues: Queues, run: ManualRun, batchSize: number, stopped: ReadonlySet<string>): Promise<number> {
  await releaseClaims(sql, await lostJobs(sql, queues, LOST.claimSettleMs));
  // The queue of an account no worker here serves any more keeps its jobs: it does not count as busy.
  const served = (await loadAccounts(sql)).map((a) => a.name).filter((name) => !stopped.has(name));
  if (!(await refreshQueueIdle(queues, served))) return 0;
  // Nothing runs anywhere: a listing still open lost its jobs, and ends once they run again.
  const listings = await requeueListings(sql, queues, { runId: run.id });
  // A target still without an outcome lost its GET; one a scope lists gets a GET only once no listing can reach it.
  const scope = {
    scheduleKey: null,
    account: run.account,
    target: run.target,
    unfinishedIn: { runId: run.id, startedAt: run.startedAt },
    discovered: listings === 0,
  };
  return (await queueRefreshes(sql, queues, scope, `m${run.id}-again`, batchSize)).queued;
}

export interface WaitOptions {
  batchSize: number;
  /** Where a run this wait closes is said to have finished, as a worker would say it. */
  logger: Logger;
  pollMs?: number;
  signal?: AbortSignal;
  /** Called when Postgres stops answering (the wait goes on) and when lost refreshes are queued again. */
  onNotice?(message: string): void;
  /** Accounts this process no longer serves (the API rejected their keys): once only their work is left, the wait ends. */
  stoppedAccounts?(): ReadonlySet<string>;
}

/**
 * Polls the run until it is finished (or `signal` aborts), reporting progress
 * on each poll; with onProgress null it reads only whether the run has closed,
 * not its live counts (a read of every target in its scope). Returns it finished, or still open when all that is left is
 * work of `stoppedAccounts` (onlyStoppedRemain): the caller closes it.
 */
export async function waitForRun(
  sql: Sql,
  queues: Queues,
  run: ManualRun,
  onProgress: ((progress: RunProgress) => void) | null,
  options: WaitOptions,
): Promise<RunProgress> {
  let checkedAt = Date.now();
  let storeAway = false;
  let lookMs = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      if (Date.now() - checkedAt > POLL.runCheckMs) {
        checkedAt = Date.now();
        if (!(await runListingOpen(sql, { runId: run.id }))) await finishRunsSaying(sql, queues, options.logger);
        const requeued = await requeueLost(sql, queues, run, options.batchSize, options.stoppedAccounts?.() ?? new Set());
        if (requeued > 0) options.onNotice?.(`run ${run.id}: ${requeued} refreshes were lost from the queue; queued them again`);
      }
      const lookedAt = performance.now();
      const progress = onProgress ? await getRun(sql, run.id) : await getRunUncounted(sql, run.id);
      lookMs = performance.now() - lookedAt;
      if (!progress) throw new Error(`sync run ${run.id} no longer exists`);
      if (storeAway) options.onNotice?.('Postgres answers again');
      storeAway = false;
      onProgress?.(progress);
      if (progress.finishedAt !== null) return progress;
      const stopped = options.stoppedAccounts?.() ?? new Set<string>();
      if (stopped.size > 0 && onlyStoppedRemain(await unfinishedByAccount(sql, run.id), stopped)) return progress;
    } catch (error) {
      if (!isTransientStoreError(error)) throw error;
      if (!storeAway) options.onNotice?.(`Postgres does not answer (${(error as Error).message}); waiting for it`);
      storeAway = true;
    }
    await delay(storeAway ? STORE_AWAY.waiterPollMs : Math.max(options.pollMs ?? POLL.runMs, POLL.runReadFactor * lookMs));
  }
}
