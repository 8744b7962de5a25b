// What the refresh and listing workers do alike when a job cannot go on: wait
// for Postgres without spending an attempt, and take apart jobs that failed
// for good in any process.
import { DelayedError, type Job, type Worker } from 'bullmq';
import type { Logger } from '../ops/logger.js';
import { every } from '../ops/periodic.js';
import { handBack } from './queue.js';
import { decideBatchError, STORE_AWAY } from '../work/retry-policy.js';

/**
 * Postgres unreachable (or a deadlock): the job runs again later without
 * spending an attempt, as all its writes are idempotent. Anything else fails
 * the job, which BullMQ runs again with its backoff.
 */
export async function runAgainLater(job: Job, token: string | undefined, error: unknown, logger: Logger, what: string): Promise<never> {
  if (error instanceof DelayedError || decideBatchError(error) === 'fail-job') throw error;
  logger.warn(
    { job_id: job.id, error: (error as Error).message, retry_in_ms: STORE_AWAY.jobMs },
    `Postgres unavailable: the ${what} will run again`,
  );
  throw await handBack(job, token, STORE_AWAY.jobMs);
}

/**
 * Runs `recover` now, whenever a job of `worker` fails for good, and every
 * `intervalMs`: a job failed by another process's stalled check raises no
 * event here.
 */
export function sweepFailedJobs(worker: Worker, intervalMs: number, recover: () => Promise<void>, logger: Logger, what: string): void {
  const failed = (error: Error) => logger.warn({ error: error.message }, `could not recover failed ${what}; will try again`);
  // Beside the periodic sweep, not through it: a sweep in flight may have read the failed jobs before this one.
  // Two sweeps at once are as safe as two processes' sweeps, which run at once anyway.
  worker.on('failed', (job) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) recover().catch(failed);
  });
  const sweeps = every(intervalMs, recover, { now: true, onError: failed });
  // The worker's close does not wait for a sweep in flight, as before.
  worker.on('closing', () => void sweeps.stop());
}
