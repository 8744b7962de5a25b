// A sync asked for by hand: one run over every target, refreshed now through
// the workers, with a way to wait until each has an outcome.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Sql } from './db.js';
import { queueRefreshes } from './fan-out.js';
import type { Triple } from './interfaces.js';
import { enqueueBatches, type Queues } from './queue.js';
import { claimTriples } from './sql/claimTriples.js';
import { finishRuns } from './sql/finishRuns.js';
import { getRun, type RunProgress } from './sql/getRun.js';
import { startRun, type Run } from './sql/startRun.js';

/** Opens a manual run over every target (or one, `target`) and queues their refreshes. */
export async function startManualSync(sql: Sql, queues: Queues, batchSize: number, target?: Triple): Promise<Run> {
  const run = await startRun(sql, { kind: 'manual', scheduleKey: null, target, trigger: `manual:${randomUUID()}` });
  if (!target) {
    await queueRefreshes(sql, queues, null, `m${run.id}`, batchSize);
    return run;
  }
  // Already queued, it is refreshed anyway; otherwise it gets a batch of its own.
  const jobId = `m${run.id}-${randomUUID().slice(0, 8)}`;
  const claimed = await claimTriples(sql, [target], jobId);
  await enqueueBatches(queues.refresh, claimed.length > 0 ? [{ jobId, items: [{ ...target, attempt: 0 }] }] : []);
  return run;
}

/** How often a waiter runs the exact completeness check itself, in case a batch's count was lost (a crash). */
const EXACT_CHECK_MS = 5000;

/** Polls the run until it is finished (or `signal` aborts), reporting progress on each poll. */
export async function waitForRun(
  sql: Sql,
  runId: number,
  onProgress: (progress: RunProgress) => void,
  pollMs = 250,
  signal?: AbortSignal,
): Promise<RunProgress> {
  let checkedAt = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    if (Date.now() - checkedAt > EXACT_CHECK_MS) {
      checkedAt = Date.now();
      await finishRuns(sql);
    }
    const progress = await getRun(sql, runId);
    if (!progress) throw new Error(`sync run ${runId} no longer exists`);
    onProgress(progress);
    if (progress.finishedAt !== null) return progress;
    await delay(pollMs);
  }
}
