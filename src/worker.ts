// The worker process: BullMQ workers for refresh jobs (rate limited across all
// processes, bounded in flight) and for schedule ticks that fan a group out.
// This file decides what each failure does to the job; refresh.ts does the work.
import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import { GcoreClient } from './gcore-client.js';
import { AuthenticationError, GcoreApiError, RateLimitedError } from './gcore-errors.js';
import { InvalidPayloadError } from './image-payload.js';
import type { Logger } from './logger.js';
import {
  enqueueRefreshes,
  REFRESH_QUEUE,
  retryDelayMs,
  SCHEDULE_QUEUE,
  type Queues,
  type RefreshJobData,
  type TickJobData,
} from './queue.js';
import { failRefresh, refreshImage } from './refresh.js';
import { listTargets } from './sql/listTargets.js';
import { pruneRuns } from './sql/pruneRuns.js';
import { startRun } from './sql/startRun.js';
import { isStoreUnavailable } from './store-errors.js';

export interface WorkerDeps {
  config: Config;
  apiKey: string;
  sql: Sql;
  redis: Redis;
  queues: Queues;
  logger: Logger;
  /** Called once when the API rejects the key; this worker has stopped taking refreshes. */
  onKeyRejected?: () => void;
}

export interface RunningWorker {
  /** Stops taking jobs and waits for those in flight; `force` hands them back at once. */
  close(force?: boolean): Promise<void>;
}

/** How long a refresh waits when Postgres is unreachable before it runs again. */
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

export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, sql, queues, logger } = deps;
  const client = new GcoreClient({
    baseUrl: config.baseUrl,
    apiKey: deps.apiKey,
    timeoutMs: config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
  });
  const workerId = randomUUID().slice(0, 8);
  let keyRejected = false;

  async function waitForStore(job: Job, token: string | undefined, log: Logger, error: unknown): Promise<never> {
    log.warn({ error: (error as Error).message, retry_in_ms: STORE_RETRY_MS }, 'Postgres unreachable: refresh will run again');
    await job.moveToDelayed(Date.now() + STORE_RETRY_MS, token);
    throw new DelayedError();
  }

  function stopOnRejectedKey(log: Logger): void {
    if (keyRejected) return;
    keyRejected = true;
    log.error('the API rejected GCORE_API_KEY (401): this worker takes no more refreshes until it is restarted with a valid key');
    void refreshWorker.pause(true);
    deps.onKeyRejected?.();
  }

  async function processRefresh(job: Job<RefreshJobData>, token?: string): Promise<string> {
    const triple = job.data;
    const started = performance.now();
    const log = logger.child({ project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, job_id: job.id });
    try {
      const outcome = await refreshImage({ sql, client }, triple);
      log.info({ outcome, ms: Math.round(performance.now() - started) }, 'refresh');
      return outcome;
    } catch (error) {
      if (isStoreUnavailable(error)) return waitForStore(job, token, log, error);
      if (error instanceof RateLimitedError && error.retryable) {
        // Pause the whole queue, in every process, without spending an attempt.
        log.warn({ wait_ms: error.retryAfterMs }, 'rate limited by the API: pausing the queue');
        await queues.refresh.rateLimit(error.retryAfterMs);
        throw Worker.RateLimitError();
      }
      const failure = describe(error);
      const attempt = job.attemptsMade + 1;
      if (failure.retryable && attempt < (job.opts.attempts ?? 1)) {
        log.warn({ attempt, status: failure.status, error: failure.message }, 'refresh attempt failed; will retry');
        throw error;
      }
      try {
        await failRefresh(sql, triple, { ...failure, attempts: attempt });
      } catch (storeError) {
        if (isStoreUnavailable(storeError)) return waitForStore(job, token, log, storeError);
        throw storeError;
      }
      log.error({ outcome: 'failed', attempt, status: failure.status, error_class: failure.errorClass, error: failure.message }, 'refresh');
      if (error instanceof AuthenticationError) stopOnRejectedKey(log);
      throw new UnrecoverableError(failure.message);
    }
  }

  async function processTick(job: Job<TickJobData>): Promise<number> {
    const { scheduleKey } = job.data;
    const run = await startRun(sql, { kind: 'scheduled', scheduleKey, trigger: `tick:${job.id}` });
    let queued = 0;
    for await (const page of listTargets(sql, scheduleKey)) {
      queued += await enqueueRefreshes(queues.refresh, page, config.attempts);
    }
    const pruned = await pruneRuns(sql, config.retentionDays);
    logger.info({ run_id: run.id, schedule: scheduleKey, queued, pruned }, 'tick');
    return queued;
  }

  const shared = { connection: deps.redis, prefix: config.queuePrefix, lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs };
  const refreshWorker = new Worker<RefreshJobData>(REFRESH_QUEUE, processRefresh, {
    ...shared,
    name: `refresh-${workerId}`,
    concurrency: config.concurrency,
    limiter: config.rateLimitPerSecond > 0 ? { max: config.rateLimitPerSecond, duration: 1000 } : undefined,
    settings: { backoffStrategy: (attemptsMade) => retryDelayMs(attemptsMade) },
  });
  const scheduleWorker = new Worker<TickJobData>(SCHEDULE_QUEUE, processTick, {
    ...shared,
    name: `schedule-${workerId}`,
    concurrency: 1,
  });
  for (const worker of [refreshWorker, scheduleWorker]) {
    worker.on('error', (error) => logger.error({ error: error.message }, `${worker.name}: queue error`));
  }
  logger.info({ worker: workerId, concurrency: config.concurrency, rate_limit_per_second: config.rateLimitPerSecond }, 'worker started');
  return {
    async close(force = false) {
      await Promise.all([refreshWorker.close(force), scheduleWorker.close(force)]);
    },
  };
}
