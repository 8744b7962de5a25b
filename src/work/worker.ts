// The worker process: for every account it serves, a BullMQ worker for
// refresh batches (refresh-worker.ts), one for scope listings
// (list-worker.ts) and an audit-log follower (audit-follower.ts), on the
// account's context (account-work.ts); one worker for schedule ticks
// (schedule-worker.ts); and change alerts beside them.
import { randomUUID } from 'node:crypto';
import type { QueueBackend } from '../queues/backend.js';
import type { KeyedAccount } from '../config/accounts.js';
import type { ProcessContext } from './account-context.js';
import type { Config } from '../config/config.js';
import type { Sql } from '../db/db.js';
import { runChangeWebhook } from '../ops/change-webhook.js';
import { startDeploymentGuard } from '../queues/deployment-guard.js';
import type { Logger } from '../ops/logger.js';
import type { WorkerMetrics } from '../ops/metrics.js';
import { every } from '../ops/periodic.js';
import type { Queues } from '../queues/queue.js';
import { repeatedErrorLog } from '../ops/repeated-errors.js';
import { sayProgress } from '../ops/run-log.js';
import { FREE_RATE_LIMIT_RETRIES, LOST } from './retry-policy.js';
import { requeueOpenRuns } from './fan-out.js';
import { startScheduleWorker } from '../schedule/schedule-worker.js';
import { ServedAccounts } from './served-accounts.js';

export interface WorkerDeps {
  config: Config;
  /** The accounts to serve, with their keys; another account the targets file gains later is served once seen, if its key is in `env`. */
  accounts: KeyedAccount[];
  /** Where keys of accounts added later are looked for (the process's environment). */
  env?: Record<string, string | undefined>;
  sql: Sql;
  backend: QueueBackend;
  queues: Queues;
  logger: Logger;
  /** Called once per account whose key the API rejects; this worker has stopped taking that account's jobs. */
  onKeyRejected?: (account: KeyedAccount) => void;
  metrics?: WorkerMetrics;
}

export interface RunningWorker {
  /** Why accounts of the deployment get no service from this process: a rejected key ("rejected: ..."), or a key missing here ("no key: ..."). */
  accountProblems(): string[];
  close(): Promise<void>;
}

/** How often a worker looks for accounts the targets file gained or changed. */
const ACCOUNT_POLL_MS = 30_000;

/** What every account this process serves shares: one worker id, one deployment guard, one retry policy. */
function processContext(deps: WorkerDeps): ProcessContext {
  const { config, sql, backend, queues } = deps;
  const workerId = randomUUID().slice(0, 8);
  // Every line of this worker names it, so the lines of several in one process or host can be told apart.
  const logger = deps.logger.child({ worker: workerId });
  const guard = startDeploymentGuard({
    backend,
    sql,
    queuePrefix: config.queuePrefix,
    deployment: queues.refresh.deployment,
    worker: workerId,
    logger,
  });
  return {
    config,
    sql,
    backend,
    queues,
    logger,
    metrics: deps.metrics,
    workerId,
    guard,
    workerOptions: { lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs },
    policy: { attempts: config.attempts, rateLimitMaxWaitMs: config.rateLimitMaxWaitMs, freeRateLimitRetries: FREE_RATE_LIMIT_RETRIES },
    onKeyRejected: deps.onKeyRejected,
  };
}

/** Change alerts, on their own loop beside the queues; resolves once stopped. */
function startAlerts({ config, sql, logger }: ProcessContext, signal: AbortSignal): Promise<void> {
  // loadConfig refuses a webhook URL without its secret: alerts are never sent unsigned.
  if (!config.alertWebhookUrl || !config.alertWebhookSecret) return Promise.resolve();
  return runChangeWebhook(
    sql,
    { url: config.alertWebhookUrl, secret: config.alertWebhookSecret, pollMs: 2000, batchSize: 200, timeoutMs: 10_000 },
    logger,
    signal,
  );
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const proc = processContext(deps);
  const { config, sql, queues, backend, logger } = proc;
  const accounts = new ServedAccounts(proc, deps.accounts, deps.env ?? process.env);
  const following = every(ACCOUNT_POLL_MS, () => accounts.follow(), {
    onError: (error) => logger.warn({ error: error.message }, 'could not look for changed accounts; will try again'),
  });
  // Refreshes whose jobs were lost (a store emptied, or switched while nothing ran) go back to their
  // open runs at start and now and then, not only at the next tick, which may be a day away.
  const lostSweep = every(
    LOST.sweepMs,
    async () => {
      const queued = await requeueOpenRuns(sql, queues, config.batchSize);
      if (queued > 0) logger.warn({ queued }, 'queued again the refreshes of open runs whose jobs were lost');
    },
    { now: true, onError: (error) => logger.warn({ error: error.message }, 'could not look for lost refreshes; will try again') },
  );
  const scheduleWorker = startScheduleWorker({ ...proc, batchSize: config.batchSize, retentionDays: config.retentionDays });
  scheduleWorker.on('error', repeatedErrorLog(logger, scheduleWorker.name));
  const stopAlerts = new AbortController();
  const alerts = startAlerts(proc, stopAlerts.signal);
  const stopProgress = sayProgress(sql, logger, config.logProgressSeconds);
  logger.info(
    {
      queues: backend.where,
      accounts: deps.accounts.map((a) => a.name),
      concurrency: config.concurrency,
      batch_size: config.batchSize,
      rate_limit_per_second: Object.fromEntries(deps.accounts.map((a) => [a.name, a.rateLimitPerSecond ?? config.rateLimitPerSecond])),
    },
    'worker started',
  );
  return {
    accountProblems: () => accounts.problems(),
    async close() {
      // A look at the accounts in flight (and any restart of an account's workers) ends first.
      await Promise.all([following.stop(), lostSweep.stop()]);
      stopAlerts.abort();
      stopProgress();
      await Promise.all([accounts.close(), scheduleWorker.close(), alerts]);
      await proc.guard.stop();
    },
  };
}
