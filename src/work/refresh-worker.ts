// The BullMQ worker for refresh batches: runs each batch (refresh.ts) and
// carries out the policy's decision for every image that did not end in
// stored data (retry-policy.ts). What each decision does to an image, and
// how a batch's failures are grouped by cause, are pure functions below; the
// RefreshBatches class carries them out for one account.
import { randomBytes } from 'node:crypto';
import type { Job, Worker } from 'bullmq';
import pLimit, { type LimitFunction } from 'p-limit';
import type { AccountContext } from './account-context.js';
import { finishRunsSaying } from '../ops/run-log.js';
import {
  confirmJobPrefix,
  enqueueBatches,
  failedBatches,
  MAX_STALLED_COUNT,
  type AccountQueues,
  type RefreshItem,
  type RefreshJobData,
} from '../queues/queue.js';
import { runAgainLater, sweepFailedJobs } from '../queues/job-recovery.js';
import { BatchFailedError, decide, HAND_BACK, type FailureInfo, type RetryPolicy } from './retry-policy.js';
import { refreshBatch, type ItemResult } from './refresh.js';
import type { Cause } from '../ops/repeated-errors.js';
import { confirmations, type ConfirmAnswer } from '../discovery/scope-confirm.js';
import { claimTriples } from '../sql/claimTriples.js';
import { creditRuns } from '../sql/creditRuns.js';
import { batchTargets } from '../sql/batchTargets.js';
import { recordFailure } from '../sql/recordFailure.js';
import { releaseClaims } from '../sql/releaseClaims.js';
import { tripleKey } from '../images/triple.js';

/** A refresh that ended in stored data (or a recorded deletion). */
export type StoredResult = Extract<ItemResult, { outcome: unknown }>;

/** What settling a batch does to one of its images. */
export type ItemFate =
  /** Stored: said and counted; a confirming GET also answers its scope. */
  | { kind: 'stored'; result: StoredResult; confirm?: ConfirmAnswer }
  /** Queued again now, untried and unspent (this process may not send). */
  | { kind: 'hand-back'; item: RefreshItem }
  /** Queued again after `delayMs`, with its counters as in `item`. */
  | { kind: 'retry'; of: RefreshItem; item: RefreshItem; delayMs: number; failure: FailureInfo }
  /** Its failure recorded; a confirming GET answers its scope "failed"; a rejected key stops the account. */
  | { kind: 'record'; of: RefreshItem; failure: FailureInfo; attempts: number; stopWorker: boolean; confirm?: ConfirmAnswer };

/** What a confirming GET that ended in stored data says about its image. */
export function confirmAnswerOf(result: StoredResult): ConfirmAnswer {
  if (result.gone) return { kind: 'gone' };
  return result.snapshot ? { kind: 'found', snapshot: result.snapshot } : { kind: 'failed' };
}

/** The policy's decision on one result, as what it does to the image. */
export function fateOf(result: ItemResult, policy: RetryPolicy): ItemFate {
  const confirming = result.item.confirmScope !== undefined;
  if ('outcome' in result) return { kind: 'stored', result, ...(confirming ? { confirm: confirmAnswerOf(result) } : {}) };
  const decision = decide(result.error, result.item, policy);
  if (decision.kind === 'hand-back') return { kind: 'hand-back', item: decision.item };
  if (decision.kind === 'retry')
    return { kind: 'retry', of: result.item, item: decision.item, delayMs: decision.delayMs, failure: decision.failure };
  const { failure, attempts, stopWorker } = decision;
  return { kind: 'record', of: result.item, failure, attempts, stopWorker, ...(confirming ? { confirm: { kind: 'failed' } } : {}) };
}

/** The images to queue again, by how long they wait (first wait seen first): each wait is one new job. */
export function requeueGroups(fates: ItemFate[]): Map<number, RefreshItem[]> {
  const later = new Map<number, RefreshItem[]>();
  for (const fate of fates) {
    if (fate.kind !== 'hand-back' && fate.kind !== 'retry') continue;
    const delayMs = fate.kind === 'retry' ? fate.delayMs : HAND_BACK.withheldRefreshMs;
    later.set(delayMs, [...(later.get(delayMs) ?? []), fate.item]);
  }
  return later;
}

/** One image's failure that has a cause said for many (repeated-errors.ts). */
interface CausedFailure {
  cause: Cause;
  image: string;
  error: string;
}

/** Failures grouped by their cause, each group with its images and the first failure's message: said once per cause. */
export function groupByCause(failures: CausedFailure[]): Array<{ cause: Cause; images: string[]; error: string }> {
  const byCause = new Map<string, { cause: Cause; images: string[]; error: string }>();
  for (const { cause, image, error } of failures) {
    const group = byCause.get(cause.key) ?? { cause, images: [], error };
    byCause.set(cause.key, group);
    group.images.push(image);
  }
  return [...byCause.values()];
}

const tripleFields = (item: RefreshItem) => ({ project_id: item.projectId, region_id: item.regionId, image_id: item.imageId });

/** One account's refresh batches in this process: runs them, settles their images, and recovers batches failed for good. */
class RefreshBatches {
  /** Bounds this process's requests in flight, across all its batches. */
  private readonly inFlight: LimitFunction;
  private readonly confirm: ReturnType<typeof confirmations>;

  constructor(
    private readonly ctx: AccountContext,
    concurrency: number,
  ) {
    this.inFlight = pLimit(concurrency);
    this.confirm = confirmations({
      sql: ctx.sql,
      queues: ctx.queues,
      logger: ctx.logger,
      metrics: ctx.metrics,
      account: ctx.account.name,
      batchSize: ctx.batchSize,
      // The rest of a sampled listing's absences, in batches apart from its sample's.
      jobPrefix: (listingId) => `${confirmJobPrefix(ctx.own.refresh, listingId)}-rest`,
    });
  }

  /** Queues items again, claimed under a new job, after `delayMs`, on their account's queue (this one's unless said). */
  async requeue(items: RefreshItem[], delayMs: number, to: AccountQueues = this.ctx.own): Promise<void> {
    if (items.length === 0) return;
    const jobId = `retry-${randomBytes(6).toString('hex')}`;
    const claimed = new Set((await claimTriples(this.ctx.sql, items, jobId)).map(tripleKey));
    // A triple claimed by another job meanwhile is refreshed by that one; a sample waiting for its
    // confirming GET is answered as not confirmed (that job does not answer it), so the sample still decides.
    const still = items.filter((item) => claimed.has(tripleKey(item)));
    for (const item of items) {
      if (!claimed.has(tripleKey(item)) && item.confirmScope !== undefined)
        await this.confirm.answered(item, item.confirmScope, { kind: 'failed' });
    }
    if (still.length > 0) await enqueueBatches(to, [{ jobId, items: still }], delayMs);
  }

  /** Carries out the policy's decision for every result of a batch, in order; then says each cause once and queues what goes back. */
  async settle(jobId: string | undefined, results: ItemResult[]): Promise<void> {
    const fates = results.map((result) => fateOf(result, this.ctx.policy));
    // A cause that fails many images is said once for them all; their own lines are for debugging.
    const caused: CausedFailure[] = [];
    const underCause = (failure: FailureInfo, image: RefreshItem): boolean => {
      const cause = this.ctx.causes.of(failure);
      if (cause) caused.push({ cause, image: tripleKey(image), error: failure.message });
      return cause !== null;
    };
    for (const fate of fates) {
      if (fate.kind === 'stored') await this.stored(jobId, fate);
      else if (fate.kind === 'retry') this.retrying(jobId, fate, underCause(fate.failure, fate.of));
      else if (fate.kind === 'record') await this.recordFailed(jobId, fate, underCause(fate.failure, fate.of));
    }
    for (const { cause, images, error } of groupByCause(caused)) this.ctx.causes.report(cause, images, error);
    for (const [delayMs, items] of requeueGroups(fates)) await this.requeue(items, delayMs);
  }

  private async stored(jobId: string | undefined, { result, confirm }: Extract<ItemFate, { kind: 'stored' }>): Promise<void> {
    const { logger, metrics } = this.ctx;
    // Plain fields rather than a child logger per refresh: this runs thousands of times a second.
    const fields = { ...tripleFields(result.item), job_id: jobId };
    logger.debug({ ...fields, outcome: result.outcome, ms: result.ms }, 'refresh');
    for (const warning of result.warnings) logger.warn({ ...fields, warning }, 'stored with a warning');
    if (result.warnings.length > 0) metrics?.warnings.inc(result.warnings.length);
    metrics?.refreshes.inc({ account: this.ctx.account.name, outcome: result.outcome });
    metrics?.lastSuccess.set(Date.now() / 1000);
    if (confirm) await this.confirm.answered(result.item, result.item.confirmScope!, confirm);
  }

  private retrying(jobId: string | undefined, fate: Extract<ItemFate, { kind: 'retry' }>, underCause: boolean): void {
    const { failure, item, delayMs } = fate;
    this.ctx.logger[underCause ? 'debug' : 'warn'](
      {
        ...tripleFields(fate.of),
        job_id: jobId,
        attempt: item.attempt,
        status: failure.status,
        error: failure.message,
        retry_in_ms: delayMs,
      },
      'refresh attempt failed; will retry',
    );
  }

  private async recordFailed(jobId: string | undefined, fate: Extract<ItemFate, { kind: 'record' }>, underCause: boolean): Promise<void> {
    const { failure, attempts } = fate;
    const account = this.ctx.account.name;
    await recordFailure(this.ctx.sql, account, fate.of, { ...failure, attempts });
    this.ctx.metrics?.refreshes.inc({ account, outcome: 'failed' });
    this.ctx.logger[underCause ? 'debug' : 'error'](
      {
        ...tripleFields(fate.of),
        job_id: jobId,
        outcome: 'failed',
        attempt: attempts,
        status: failure.status,
        error_class: failure.errorClass,
        error: failure.message,
      },
      'refresh',
    );
    if (fate.stopWorker) this.ctx.keyRejected('refreshes');
    if (fate.confirm) await this.confirm.answered(fate.of, fate.of.confirmScope!, fate.confirm);
  }

  /** One batch job: images moved to another account go to its queue; the rest are refreshed and settled. */
  async processBatch(job: Job<RefreshJobData>, token?: string): Promise<number> {
    const { sql, queues, logger } = this.ctx;
    await this.ctx.guard.check(job, token);
    try {
      await releaseClaims(sql, [job.id!]);
      // An image moved to another account since it was queued is fetched with that account's key, on its queue.
      const { moved, kinds } = await batchTargets(sql, job.data.items, this.ctx.account.name);
      for (const [account, items] of moved) await this.requeue(items, 0, queues.forAccount(account));
      const movedKeys = new Set([...moved.values()].flat().map(tripleKey));
      const items = job.data.items.filter((item) => !movedKeys.has(tripleKey(item)));
      const results = await refreshBatch(this.ctx, this.inFlight, items, (item) => kinds.get(tripleKey(item)));
      await this.settle(job.id, results);
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
  async recoverFailedBatches(): Promise<void> {
    const { sql, queues, logger } = this.ctx;
    for (const batch of await failedBatches(this.ctx.own.refresh, this.ctx.backend.takeFailed)) {
      if (!(await batch.take())) continue;
      // A job that failed before it started still holds its claims.
      await releaseClaims(sql, [batch.jobId]);
      logger.error(
        { job_id: batch.jobId, images: batch.items.length, error: batch.reason },
        'a refresh batch failed; its images are retried or recorded one by one',
      );
      const error = new BatchFailedError(batch.reason);
      await this.settle(
        batch.jobId,
        batch.items.map((item) => ({ item, error, ms: 0 })),
      );
      if ((await creditRuns(sql, batch.items)).length > 0) await finishRunsSaying(sql, queues, logger);
    }
  }
}

/** The account's refresh worker; `concurrency` bounds this process's requests in flight across its batches. */
export function startRefreshWorker(ctx: AccountContext, settings: { concurrency: number }): Worker<RefreshJobData> {
  const batches = new RefreshBatches(ctx, settings.concurrency);
  const worker = ctx.backend.worker<RefreshJobData>(ctx.own.refresh, (job, token) => batches.processBatch(job, token), {
    ...ctx.workerOptions,
    name: `refresh-${ctx.workerId}`,
    maxStalledCount: MAX_STALLED_COUNT,
    // Enough batches at once to keep `concurrency` requests in flight, and one more ready.
    concurrency: Math.ceil(settings.concurrency / ctx.batchSize) + 1,
  });
  sweepFailedJobs(worker, ctx.workerOptions.stalledInterval, () => batches.recoverFailedBatches(), ctx.logger, 'batches');
  return worker;
}
