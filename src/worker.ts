// The worker process: a BullMQ worker for refresh batches (refresh-worker.ts),
// one for scope listings (list-worker.ts), one for schedule ticks
// (schedule-worker.ts), and change alerts beside them.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { QueueBackend } from './backend.js';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import { runChangeWebhook } from './change-webhook.js';
import { startDeploymentGuard } from './deployment-guard.js';
import { GcoreClient } from './gcore-client.js';
import type { Logger } from './logger.js';
import type { HeldRejection } from './key-health.js';
import { answerRecorder, type WorkerMetrics } from './metrics.js';
import type { Queues } from './queue.js';
import { ApiRateLimiter } from './rate-limiter.js';
import { startListWorker } from './list-worker.js';
import { repeatedErrorLog } from './repeated-errors.js';
import { sayProgress } from './run-log.js';
import { FREE_RATE_LIMIT_RETRIES, rateLimitPauseMs } from './refresh-policy.js';
import { pauseForRateLimit, startRefreshWorker } from './refresh-worker.js';
import { startScheduleWorker } from './schedule-worker.js';

export interface WorkerDeps {
  config: Config;
  apiKey: string;
  sql: Sql;
  backend: QueueBackend;
  queues: Queues;
  logger: Logger;
  /** Called once when the API rejects the key; this worker has stopped taking refreshes. */
  onKeyRejected?: () => void;
  metrics?: WorkerMetrics;
}

export interface RunningWorker {
  close(): Promise<void>;
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, sql, queues } = deps;
  const workerId = randomUUID().slice(0, 8);
  // Every line of this worker names it, so the lines of several in one process or host can be told apart.
  const logger = deps.logger.child({ worker: workerId });
  const client = new GcoreClient({
    baseUrl: config.baseUrl,
    apiKey: deps.apiKey,
    timeoutMs: config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    maxPageBytes: config.maxPageBytes,
  });
  const { backend } = deps;
  const guard = startDeploymentGuard({
    backend,
    sql,
    queuePrefix: config.queuePrefix,
    deployment: queues.refresh.deployment,
    worker: workerId,
    logger,
  });
  const workerOptions = { lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs };
  const limiter = new ApiRateLimiter(backend.timeline, config.rateLimitPerSecond, () => deps.metrics?.slotsGivenUp.inc());
  const policy = {
    attempts: config.attempts,
    rateLimitMaxWaitMs: config.rateLimitMaxWaitMs,
    freeRateLimitRetries: FREE_RATE_LIMIT_RETRIES,
  };
  // One client, so a key rejected for a GET is not sent for a list either: both workers stop taking jobs.
  let keyRejected = false;
  let rejection: HeldRejection | undefined;
  const onKeyRejected = () => {
    if (keyRejected) return;
    keyRejected = true;
    void refreshWorker.pause(true);
    void listWorker.pause(true);
    rejection = backend.holdKeyRejection(
      { at: new Date().toISOString(), worker: workerId, hostname: hostname(), pid: process.pid },
      (error) => logger.warn({ error: error.message }, 'could not record the rejected key for status'),
    );
    deps.onKeyRejected?.();
  };
  // What both workers that call the API share: one client, one rate limit, one policy.
  const shared = {
    sql,
    backend,
    queues,
    client,
    logger,
    metrics: deps.metrics,
    onAnswer: answerRecorder(deps.metrics),
    workerOptions,
    workerId,
    guard,
    limiter,
    policy,
    batchSize: config.batchSize,
  };
  const refreshWorker = startRefreshWorker({ ...shared, concurrency: config.concurrency, onKeyRejected });
  const listWorker = startListWorker({
    ...shared,
    onRateLimited: (error) => pauseForRateLimit(shared, rateLimitPauseMs(error, policy)),
    onKeyRejected: () => {
      logger.error('the API rejected GCORE_API_KEY (401): this worker takes no more jobs until it is restarted with a valid key');
      onKeyRejected();
    },
  });
  const scheduleWorker = startScheduleWorker({
    sql,
    backend,
    queues,
    logger,
    workerOptions,
    workerId,
    guard,
    batchSize: config.batchSize,
    retentionDays: config.retentionDays,
  });
  for (const worker of [refreshWorker, listWorker, scheduleWorker]) {
    worker.on('error', repeatedErrorLog(logger, worker.name));
  }
  // Change alerts run beside the queues, on their own timer.
  const stopAlerts = new AbortController();
  // loadConfig refuses a webhook URL without its secret: alerts are never sent unsigned.
  const alerts =
    config.alertWebhookUrl && config.alertWebhookSecret
      ? runChangeWebhook(
          sql,
          { url: config.alertWebhookUrl, secret: config.alertWebhookSecret, pollMs: 2000, batchSize: 200, timeoutMs: 10_000 },
          logger,
          stopAlerts.signal,
        )
      : Promise.resolve();
  const stopProgress = sayProgress(sql, logger, config.logProgressSeconds);
  logger.info(
    {
      queues: backend.where,
      concurrency: config.concurrency,
      batch_size: config.batchSize,
      rate_limit_per_second: config.rateLimitPerSecond,
    },
    'worker started',
  );
  return {
    async close() {
      stopAlerts.abort();
      stopProgress();
      await Promise.all([refreshWorker.close(), listWorker.close(), scheduleWorker.close(), alerts]);
      await guard.stop();
      await rejection?.release();
      client.close();
    },
  };
}
