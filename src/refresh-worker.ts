// The BullMQ worker for refresh batches: runs each batch (refresh.ts) and
// carries out the policy's decision for every image that did not end in
// stored data (refresh-policy.ts).
import { randomBytes } from 'node:crypto';
import type { Job, Worker } from 'bullmq';
import pLimit from 'p-limit';
import type { QueueBackend } from './backend.js';
import type { Sql } from './db.js';
import type { DeploymentGuard } from './deployment-guard.js';
import type { GcoreClient } from './gcore-client.js';
import type { Logger } from './logger.js';
import { finishRunsSaying } from './run-log.js';
import type { WorkerMetrics } from './metrics.js';
import type { KeyedAccount } from './accounts.js';
import {
  confirmJobPrefix,
  enqueueBatches,
  failedBatches,
  MAX_STALLED_COUNT,
  type AccountQueues,
  type Queues,
  type RefreshItem,
  type RefreshJobData,
} from './queue.js';
import type { ApiRateLimiter } from './rate-limiter.js';
import { runAgainLater, sweepFailedJobs } from './job-recovery.js';
import { BatchFailedError, decide, rateLimitPause, type FailureInfo, type RetryPolicy } from './refresh-policy.js';
import { formatWait, type RateLimitedError } from './gcore-errors.js';
import { refreshBatch, type ItemResult } from './refresh.js';
import type { Cause, CauseLog } from './repeated-errors.js';
import { confirmations } from './scope-confirm.js';
import { claimTriples } from './sql/claimTriples.js';
import { creditRuns } from './sql/creditRuns.js';
import { movedTargets } from './sql/movedTargets.js';
import { recordFailure } from './sql/recordFailure.js';
import { releaseClaims } from './sql/releaseClaims.js';
import { tripleKey } from './triple.js';

export interface RefreshWorkerDeps {
  sql: Sql;
  /** The queue store: workers are made on it and failed batches taken through it. */
  backend: QueueBackend;
  queues: Queues;
  /** The account this worker serves, and its queues: its jobs are all of this account. */
  account: KeyedAccount;
  own: AccountQueues;
  client: GcoreClient;
  limiter: ApiRateLimiter;
  logger: Logger;
  /** Says once what fails many of the account's requests (repeated-errors.ts). */
  causes: CauseLog;
  metrics?: WorkerMetrics;
  /** Every API answer, GET or list page: its status ("none" without one) and time. */
  onAnswer(status: string, seconds: number): void;
  policy: RetryPolicy;
  /** Requests in flight in this process, across all its batches. */
  concurrency: number;
  batchSize: number;
  /** BullMQ lock settings shared by this process's workers. */
  workerOptions: { lockDuration: number; stalledInterval: number };
  workerId: string;
  /** Hands back jobs of another deployment before anything is done with them. */
  guard: DeploymentGuard;
  /** Called once when the API rejects the account's key; this worker has stopped taking refreshes. */
  onKeyRejected?: () => void;
}

/** What the rejected-key lines and readiness say. */
export function keyRejectedMessage(account: KeyedAccount, jobs: string): string {
  return `the API rejected ${account.apiKeyEnv} (401), the key of account ${account.name}: this worker takes no more of its ${jobs} until it is restarted with a valid key`;
}

const tripleFields = (item: RefreshItem) => ({ project_id: item.projectId, region_id: item.regionId, image_id: item.imageId });

/**
 * After a 429: holds back every process's requests of the account, and the
 * start of its new batches, without spending attempts; as asked, up to the
 * cap. A pause the API asked to be longer than the cap makes every request
 * that would wait through it fail at once instead (rate-limiter.ts).
 */
export async function pauseForRateLimit(
  { logger, metrics, limiter, own, policy }: Pick<RefreshWorkerDeps, 'logger' | 'metrics' | 'limiter' | 'own' | 'policy'>,
  error: RateLimitedError,
): Promise<void> {
  const { pauseMs, askedMs } = rateLimitPause(error, policy);
  const overCap = askedMs > pauseMs ? { asked: formatWait(askedMs) } : {};
  logger.warn({ account: own.account, wait_ms: pauseMs, ...overCap }, 'rate limited by the API: pausing the queue');
  metrics?.rateLimitedSeconds.inc({ account: own.account }, pauseMs / 1000);
  await limiter.pause(pauseMs, askedMs);
  // Past the cap, batches must start so that their requests fail at once in acquire(), not wait for the queue.
  if (askedMs <= pauseMs) await own.refresh.rateLimit(pauseMs);
}

export function startRefreshWorker(deps: RefreshWorkerDeps): Worker<RefreshJobData> {
  const { sql, queues, logger, metrics, policy } = deps;
  const inFlight = pLimit(deps.concurrency);
  let keyRejected = false;
  const confirm = confirmations({
    sql,
    queues,
    logger,
    metrics,
    account: deps.account.name,
    batchSize: deps.batchSize,
    // The rest of a sampled listing's absences, in batches apart from its sample's.
    jobPrefix: (listingId) => `${confirmJobPrefix(deps.own.refresh, listingId)}-rest`,
  });

  /** Queues items again, claimed under a new job, after `delayMs`, on their account's queue (this one's unless said). */
  async function requeue(items: RefreshItem[], delayMs: number, to: AccountQueues = deps.own): Promise<void> {
    if (items.length === 0) return;
    const jobId = `retry-${randomBytes(6).toString('hex')}`;
    const claimed = new Set((await claimTriples(sql, items, jobId)).map(tripleKey));
    // A triple claimed by another job meanwhile is refreshed by that one; a sample waiting for its
    // confirming GET is answered as not confirmed (that job does not answer it), so the sample still decides.
    const still = items.filter((item) => claimed.has(tripleKey(item)));
    for (const item of items) {
      if (!claimed.has(tripleKey(item)) && item.confirmScope !== undefined)
        await confirm.answered(item, item.confirmScope, { kind: 'failed' });
    }
    if (still.length > 0) await enqueueBatches(to, [{ jobId, items: still }], delayMs);
  }

  function stopOnRejectedKey(): void {
    if (keyRejected) return;
    keyRejected = true;
    logger.error(keyRejectedMessage(deps.account, 'refreshes'));
    void worker.pause(true);
    deps.onKeyRejected?.();
  }

  async function settle(jobId: string | undefined, results: ItemResult[]): Promise<void> {
    const later = new Map<number, RefreshItem[]>();
    // A cause that fails many images is said once for them all; their own lines are for debugging.
    const byCause = new Map<string, { cause: Cause; images: string[]; error: string }>();
    /** Whether the failure of `image` has a cause said for many: counted under it if so. */
    const countedUnderCause = (failure: FailureInfo, image: RefreshItem): boolean => {
      const cause = deps.causes.of(failure);
      if (!cause) return false;
      const seen = byCause.get(cause.key) ?? { cause, images: [], error: failure.message };
      byCause.set(cause.key, seen);
      seen.images.push(tripleKey(image));
      return true;
    };
    for (const result of results) {
      // Plain fields rather than a child logger per refresh: this runs thousands of times a second.
      const fields = { ...tripleFields(result.item), job_id: jobId };
      if ('outcome' in result) {
        logger.debug({ ...fields, outcome: result.outcome, ms: result.ms }, 'refresh');
        for (const warning of result.warnings) logger.warn({ ...fields, warning }, 'stored with a warning');
        if (result.warnings.length > 0) metrics?.warnings.inc(result.warnings.length);
        metrics?.refreshes.inc({ account: deps.account.name, outcome: result.outcome });
        metrics?.lastSuccess.set(Date.now() / 1000);
        const { confirmScope } = result.item;
        if (confirmScope !== undefined) {
          await confirm.answered(
            result.item,
            confirmScope,
            result.gone ? { kind: 'gone' } : result.snapshot ? { kind: 'found', snapshot: result.snapshot } : { kind: 'failed' },
          );
        }
        continue;
      }
      const decision = decide(result.error, result.item, policy);
      if (decision.kind === 'hand-back') {
        later.set(0, [...(later.get(0) ?? []), decision.item]);
      } else if (decision.kind === 'retry') {
        const { attempt } = decision.item;
        const level = countedUnderCause(decision.failure, result.item) ? 'debug' : 'warn';
        logger[level](
          { ...fields, attempt, status: decision.failure.status, error: decision.failure.message, retry_in_ms: decision.delayMs },
          'refresh attempt failed; will retry',
        );
        later.set(decision.delayMs, [...(later.get(decision.delayMs) ?? []), decision.item]);
      } else {
        const { failure, attempts } = decision;
        await recordFailure(sql, deps.account.name, result.item, { ...failure, attempts });
        metrics?.refreshes.inc({ account: deps.account.name, outcome: 'failed' });
        const level = countedUnderCause(failure, result.item) ? 'debug' : 'error';
        logger[level](
          {
            ...fields,
            outcome: 'failed',
            attempt: attempts,
            status: failure.status,
            error_class: failure.errorClass,
            error: failure.message,
          },
          'refresh',
        );
        if (decision.stopWorker) stopOnRejectedKey();
        if (result.item.confirmScope !== undefined) await confirm.answered(result.item, result.item.confirmScope, { kind: 'failed' });
      }
    }
    for (const { cause, images, error } of byCause.values()) deps.causes.report(cause, images, error);
    for (const [delayMs, items] of later) await requeue(items, delayMs);
  }

  async function processBatch(job: Job<RefreshJobData>, token?: string): Promise<number> {
    await deps.guard.check(job, token);
    try {
      await releaseClaims(sql, [job.id!]);
      // An image moved to another account since it was queued is fetched with that account's key, on its queue.
      const moved = await movedTargets(sql, job.data.items, deps.account.name);
      for (const [account, items] of moved) await requeue(items, 0, queues.forAccount(account));
      const movedKeys = new Set([...moved.values()].flat().map(tripleKey));
      const items = job.data.items.filter((item) => !movedKeys.has(tripleKey(item)));
      const results = await refreshBatch(
        {
          sql,
          account: deps.account.name,
          client: deps.client,
          limiter: deps.limiter,
          inFlight,
          onRateLimited: (error) => pauseForRateLimit(deps, error),
          onAnswer: deps.onAnswer,
        },
        items,
      );
      await settle(job.id, results);
      // The exact completeness check scans targets, so it runs only once the counts say a run may be done.
      if ((await creditRuns(sql, items)).length > 0) await finishRunsSaying(sql, queues, logger);
      return results.length;
    } catch (error) {
      return runAgainLater(job, token, error, logger, 'batch');
    }
  }

  /**
   * Jobs that failed for good, in any process (a batch that crashed every
   * time, or whose workers died more than MAX_STALLED_COUNT times): each of
   * their images goes through the policy, so it is queued again or its failure
   * recorded. Whoever removes a job first owns its images.
   */
  async function recoverFailedBatches(): Promise<void> {
    for (const batch of await failedBatches(deps.own.refresh, deps.backend.takeFailed)) {
      if (!(await batch.take())) continue;
      // A job that failed before it started still holds its claims.
      await releaseClaims(sql, [batch.jobId]);
      logger.error(
        { job_id: batch.jobId, images: batch.items.length, error: batch.reason },
        'a refresh batch failed; its images are retried or recorded one by one',
      );
      const error = new BatchFailedError(batch.reason);
      await settle(
        batch.jobId,
        batch.items.map((item) => ({ item, error, ms: 0 })),
      );
      if ((await creditRuns(sql, batch.items)).length > 0) await finishRunsSaying(sql, queues, logger);
    }
  }

  const worker = deps.backend.worker<RefreshJobData>(deps.own.refresh.name, processBatch, {
    ...deps.workerOptions,
    name: `refresh-${deps.workerId}`,
    maxStalledCount: MAX_STALLED_COUNT,
    // Enough batches at once to keep `concurrency` requests in flight, and one more ready.
    concurrency: Math.ceil(deps.concurrency / deps.batchSize) + 1,
  });
  sweepFailedJobs(worker, deps.workerOptions.stalledInterval, recoverFailedBatches, logger, 'batches');
  return worker;
}
