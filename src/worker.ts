// The worker process: BullMQ workers for refresh batches and for schedule
// ticks. This file decides what each outcome and failure does (retry, pause,
// record); refresh.ts does the fetching and storing.
import { randomBytes, randomUUID } from 'node:crypto';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import { runChangeWebhook } from './change-webhook.js';
import { queueRefreshes } from './fan-out.js';
import { GcoreClient } from './gcore-client.js';
import { AuthenticationError, GcoreApiError, RateLimitedError, RequestWithheldError } from './gcore-errors.js';
import { InvalidPayloadError } from './image-payload.js';
import type { Logger } from './logger.js';
import type { WorkerMetrics } from './metrics.js';
import {
  enqueueBatches,
  REFRESH_QUEUE,
  retryDelayMs,
  SCHEDULE_QUEUE,
  SNAPSHOT_JOB,
  type Queues,
  type RefreshItem,
  type RefreshJobData,
  type TickJobData,
} from './queue.js';
import { ApiRateLimiter, rateLimitKey } from './rate-limiter.js';
import { refreshBatch, type ItemResult } from './refresh.js';
import { claimTriples } from './sql/claimTriples.js';
import { creditRuns } from './sql/creditRuns.js';
import { finishRuns } from './sql/finishRuns.js';
import { pruneRuns } from './sql/pruneRuns.js';
import { recordFailure } from './sql/recordFailure.js';
import { releaseClaims } from './sql/releaseClaims.js';
import { startRun } from './sql/startRun.js';
import { takeSnapshot } from './sql/takeSnapshot.js';
import { isTransientStoreError } from './store-errors.js';
import { tripleKey } from './triple.js';

export interface WorkerDeps {
  config: Config;
  apiKey: string;
  sql: Sql;
  redis: Redis;
  queues: Queues;
  logger: Logger;
  /** Called once when the API rejects the key; this worker has stopped taking refreshes. */
  onKeyRejected?: () => void;
  metrics?: WorkerMetrics;
}

export interface RunningWorker {
  close(): Promise<void>;
}

/** How long a batch waits when Postgres is unreachable before it runs again. */
const STORE_RETRY_MS = 2000;

interface FailureInfo {
  status: number | null;
  errorClass: string;
  message: string;
  retryable: boolean;
}

function describe(error: unknown): FailureInfo {
  if (error instanceof GcoreApiError) {
    return { status: error.status ?? null, errorClass: error.name, message: error.message, retryable: error.retryable };
  }
  if (error instanceof InvalidPayloadError) {
    return { status: 200, errorClass: error.name, message: error.message, retryable: false };
  }
  // Anything else (a bug, a constraint we did not expect) may pass: try again.
  const e = error as Error;
  return { status: null, errorClass: e?.name ?? 'Error', message: String(e?.message ?? error), retryable: true };
}

function tripleFields(item: RefreshItem) {
  return { project_id: item.projectId, region_id: item.regionId, image_id: item.imageId };
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, sql, queues, logger } = deps;
  const client = new GcoreClient({
    baseUrl: config.baseUrl,
    apiKey: deps.apiKey,
    timeoutMs: config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
  });
  const limiter = new ApiRateLimiter(deps.redis, rateLimitKey(config.queuePrefix), config.rateLimitPerSecond);
  const inFlight = pLimit(config.concurrency);
  const workerId = randomUUID().slice(0, 8);
  let keyRejected = false;

  /** Queues items again, claimed under a new job, after `delayMs`. */
  async function requeue(items: RefreshItem[], delayMs: number): Promise<void> {
    if (items.length === 0) return;
    const jobId = `retry-${randomBytes(6).toString('hex')}`;
    const claimed = new Set((await claimTriples(sql, items, jobId)).map(tripleKey));
    // A triple claimed by another job meanwhile is refreshed by that one.
    const still = items.filter((item) => claimed.has(tripleKey(item)));
    if (still.length > 0) await enqueueBatches(queues.refresh, [{ jobId, items: still }], delayMs);
  }

  async function settle(job: Job<RefreshJobData>, results: ItemResult[]): Promise<void> {
    const retries = new Map<number, RefreshItem[]>();
    const rateLimited: RefreshItem[] = [];
    const withheld: RefreshItem[] = [];
    let pauseMs = 0;
    for (const result of results) {
      // Plain fields rather than a child logger per refresh: this runs thousands of times a second.
      const fields = { ...tripleFields(result.item), job_id: job.id };
      if ('outcome' in result) {
        logger.info({ ...fields, outcome: result.outcome, ms: result.ms }, 'refresh');
        deps.metrics?.refreshes.inc({ outcome: result.outcome });
        deps.metrics?.lastSuccess.set(Date.now() / 1000);
        continue;
      }
      const { error, item } = result;
      if (error instanceof RequestWithheldError) {
        withheld.push(item);
        continue;
      }
      if (error instanceof RateLimitedError && error.retryable) {
        rateLimited.push(item);
        pauseMs = Math.max(pauseMs, error.retryAfterMs);
        continue;
      }
      const failure = describe(error);
      const attempt = item.attempt + 1;
      if (failure.retryable && attempt < config.attempts) {
        logger.warn({ ...fields, attempt, status: failure.status, error: failure.message }, 'refresh attempt failed; will retry');
        retries.set(attempt, [...(retries.get(attempt) ?? []), { ...item, attempt }]);
        continue;
      }
      await recordFailure(sql, item, { ...failure, attempts: attempt });
      deps.metrics?.refreshes.inc({ outcome: 'failed' });
      logger.error({ ...fields, outcome: 'failed', attempt, status: failure.status, error_class: failure.errorClass, error: failure.message }, 'refresh');
      if (error instanceof AuthenticationError) stopOnRejectedKey();
    }
    // Still rate limited after retries in place: back to the queue, attempts unspent.
    await requeue(rateLimited, pauseMs);
    for (const [attempt, items] of retries) await requeue(items, retryDelayMs(attempt));
    // Handed back untried, for a worker whose key the API accepts.
    await requeue(withheld, 0);
  }

  function stopOnRejectedKey(): void {
    if (keyRejected) return;
    keyRejected = true;
    logger.error('the API rejected GCORE_API_KEY (401): this worker takes no more refreshes until it is restarted with a valid key');
    void refreshWorker.pause(true);
    deps.onKeyRejected?.();
  }

  /** Holds back every process's requests, and the start of new batches, without spending attempts. */
  async function pauseForRateLimit(ms: number): Promise<void> {
    logger.warn({ wait_ms: ms }, 'rate limited by the API: pausing the queue');
    deps.metrics?.rateLimitedSeconds.inc(ms / 1000);
    await limiter.pause(ms);
    await queues.refresh.rateLimit(ms);
  }

  async function processBatch(job: Job<RefreshJobData>, token?: string): Promise<number> {
    try {
      await releaseClaims(sql, [job.id!]);
      const results = await refreshBatch(
        {
          sql, client, limiter, inFlight, onRateLimited: pauseForRateLimit,
          onAnswer: (status, seconds) => {
            deps.metrics?.apiAnswers.inc({ status });
            deps.metrics?.fetchSeconds.observe(seconds);
          },
        },
        job.data.items,
      );
      await settle(job, results);
      // The exact completeness check scans targets, so it runs only once the counts say a run may be done.
      if ((await creditRuns(sql, job.data.items)).length > 0) await finishRuns(sql);
      return results.length;
    } catch (error) {
      if (!isTransientStoreError(error)) throw error;
      // Every write is idempotent, so the whole batch simply runs again later.
      logger.warn({ job_id: job.id, error: (error as Error).message, retry_in_ms: STORE_RETRY_MS }, 'Postgres unavailable: the batch will run again');
      await job.moveToDelayed(Date.now() + STORE_RETRY_MS, token);
      throw new DelayedError();
    }
  }

  async function processTick(job: Job<TickJobData>): Promise<number> {
    if (job.name === SNAPSHOT_JOB) {
      const snapshot = await takeSnapshot(sql, `tick:${job.id}`);
      logger.info({ snapshot_id: snapshot.id, images: snapshot.imageCount, digest: snapshot.digest }, 'audit snapshot');
      return snapshot.imageCount;
    }
    const scheduleKey = job.data.scheduleKey!;
    const run = await startRun(sql, { kind: 'scheduled', scheduleKey, trigger: `tick:${job.id}` });
    const fanOut = await queueRefreshes(sql, queues, scheduleKey, `t${run.id}`, config.batchSize);
    await finishRuns(sql);
    const pruned = await pruneRuns(sql, config.retentionDays);
    logger.info({ run_id: run.id, schedule: scheduleKey, ...fanOut, pruned }, 'tick');
    return fanOut.queued;
  }

  const shared = { connection: deps.redis, prefix: config.queuePrefix, lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs };
  const refreshWorker = new Worker<RefreshJobData>(REFRESH_QUEUE, processBatch, {
    ...shared,
    name: `refresh-${workerId}`,
    // Enough batches at once to keep `concurrency` requests in flight, and one more ready.
    concurrency: Math.ceil(config.concurrency / config.batchSize) + 1,
  });
  const scheduleWorker = new Worker<TickJobData>(SCHEDULE_QUEUE, processTick, { ...shared, name: `schedule-${workerId}`, concurrency: 1 });
  for (const worker of [refreshWorker, scheduleWorker]) {
    worker.on('error', (error) => logger.error({ error: error.message }, `${worker.name}: queue error`));
  }
  // Change alerts run beside the queues, on their own timer.
  const stopAlerts = new AbortController();
  const alerts = config.alertWebhookUrl
    ? runChangeWebhook(sql, { url: config.alertWebhookUrl, pollMs: 2000, batchSize: 200, timeoutMs: 10_000 }, logger, stopAlerts.signal)
    : Promise.resolve();
  logger.info(
    { worker: workerId, concurrency: config.concurrency, batch_size: config.batchSize, rate_limit_per_second: config.rateLimitPerSecond },
    'worker started',
  );
  return {
    async close() {
      stopAlerts.abort();
      await Promise.all([refreshWorker.close(), scheduleWorker.close(), alerts]);
      client.close();
    },
  };
}
