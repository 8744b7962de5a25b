// The worker process: BullMQ workers for refresh jobs (rate limited across all
// processes, bounded in-flight) and for schedule ticks that fan a group out.
import { randomUUID } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import { GcoreClient } from './gcore-client.js';
import { GcoreApiError, RateLimitedError } from './gcore-errors.js';
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

export interface WorkerDeps {
  config: Config;
  apiKey: string;
  sql: Sql;
  redis: Redis;
  queues: Queues;
  logger: Logger;
}

export interface RunningWorker {
  /** Stops taking jobs, lets jobs in flight finish, then resolves. */
  close(): Promise<void>;
}

function tripleFields(data: RefreshJobData) {
  return { project_id: data.projectId, region_id: data.regionId, image_id: data.imageId };
}

function describe(error: unknown): { status: number | null; errorClass: string; message: string; retryable: boolean } {
  if (error instanceof GcoreApiError) {
    return { status: error.status ?? null, errorClass: error.name, message: error.message, retryable: error.retryable };
  }
  if (error instanceof InvalidPayloadError) {
    return { status: 200, errorClass: error.name, message: error.message, retryable: false };
  }
  // Anything else (a database fault, a bug) may pass: try again.
  return { status: null, errorClass: (error as Error)?.name ?? 'Error', message: String((error as Error)?.message ?? error), retryable: true };
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
  const connection = deps.redis;

  async function processRefresh(job: Job<RefreshJobData>): Promise<string> {
    const triple = job.data;
    const started = performance.now();
    const log = logger.child({ ...tripleFields(triple), job_id: job.id });
    try {
      const outcome = await refreshImage({ sql, client }, triple);
      log.info({ outcome, ms: Math.round(performance.now() - started) }, 'refresh');
      return outcome;
    } catch (error) {
      const failure = describe(error);
      if (error instanceof RateLimitedError && error.retryable) {
        // Pause the whole queue, every process, without spending an attempt.
        log.warn({ wait_ms: error.retryAfterMs }, 'rate limited by the API: pausing the queue');
        await queues.refresh.rateLimit(error.retryAfterMs);
        throw Worker.RateLimitError();
      }
      const attempt = job.attemptsMade + 1;
      const lastAttempt = attempt >= (job.opts.attempts ?? 1);
      if (failure.retryable && !lastAttempt) {
        log.warn({ attempt, status: failure.status, error: failure.message }, 'refresh attempt failed; will retry');
        throw error;
      }
      await failRefresh(sql, triple, { ...failure, attempts: attempt });
      log.error({ outcome: 'failed', attempt, status: failure.status, error_class: failure.errorClass, error: failure.message }, 'refresh');
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

  const refreshWorker = new Worker<RefreshJobData>(REFRESH_QUEUE, processRefresh, {
    connection,
    prefix: config.queuePrefix,
    name: `refresh-${workerId}`,
    concurrency: config.concurrency,
    limiter: config.rateLimitPerSecond > 0 ? { max: config.rateLimitPerSecond, duration: 1000 } : undefined,
    settings: { backoffStrategy: (attemptsMade) => retryDelayMs(attemptsMade) },
  });
  const scheduleWorker = new Worker<TickJobData>(SCHEDULE_QUEUE, processTick, {
    connection,
    prefix: config.queuePrefix,
    name: `schedule-${workerId}`,
    concurrency: 1,
  });
  for (const worker of [refreshWorker, scheduleWorker]) {
    worker.on('error', (error) => logger.error({ error: error.message }, `${worker.name}: queue error`));
  }
  logger.info(
    { worker: workerId, concurrency: config.concurrency, rate_limit_per_second: config.rateLimitPerSecond },
    'worker started',
  );
  return {
    async close() {
      await Promise.all([refreshWorker.close(), scheduleWorker.close()]);
    },
  };
}
