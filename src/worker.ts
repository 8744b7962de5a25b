// The worker process: a BullMQ worker for refresh batches (refresh-worker.ts),
// one for scope listings (list-worker.ts), one for schedule ticks
// (schedule-worker.ts), each account's audit-log follower (audit-follower.ts),
// and change alerts beside them.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { QueueBackend } from './backend.js';
import { readKey, type Account, type KeyedAccount } from './accounts.js';
import { startAuditFollower } from './audit-follower.js';
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
import { causeLog, repeatedErrorLog, urlSetting } from './repeated-errors.js';
import { sayProgress } from './run-log.js';
import { FREE_RATE_LIMIT_RETRIES } from './refresh-policy.js';
import { keyRejectedMessage, pauseForRateLimit, startRefreshWorker } from './refresh-worker.js';
import { requeueOpenRuns } from './fan-out.js';
import { loadAccounts } from './sql/accounts.js';
import { startScheduleWorker } from './schedule-worker.js';

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
/** How often a worker looks for refreshes of open runs whose jobs were lost. */
const LOST_SWEEP_MS = 10 * 60_000;

/** One account's side of a worker: its client, its request budget, its two queue workers. */
interface AccountWorkers {
  account: KeyedAccount;
  rejected: boolean;
  close(): Promise<void>;
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, sql, queues, backend } = deps;
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
  const workerOptions = { lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs };
  const policy = {
    attempts: config.attempts,
    rateLimitMaxWaitMs: config.rateLimitMaxWaitMs,
    freeRateLimitRetries: FREE_RATE_LIMIT_RETRIES,
  };

  /** An account's failure domain: its own client, timeline and queues; a 401 stops this account only. */
  function startAccount(account: KeyedAccount): AccountWorkers {
    const client = new GcoreClient({
      baseUrl: account.baseUrl ?? config.baseUrl,
      apiKey: account.apiKey,
      timeoutMs: config.requestTimeoutMs,
      maxResponseBytes: config.maxResponseBytes,
      maxPageBytes: config.maxPageBytes,
    });
    const own = queues.forAccount(account.name);
    const limiter = new ApiRateLimiter(
      backend.timeline(account.name),
      account.rateLimitPerSecond ?? config.rateLimitPerSecond,
      () => deps.metrics?.slotsGivenUp.inc(),
      config.rateLimitMaxWaitMs,
    );
    const accountLogger = logger.child({ account: account.name });
    // One client, so a key rejected for a GET is not sent for a list either: both workers stop taking the account's jobs.
    let rejection: HeldRejection | undefined;
    const state: AccountWorkers = { account, rejected: false, close: async () => {} };
    const onKeyRejected = () => {
      if (state.rejected) return;
      state.rejected = true;
      void refreshWorker.pause(true);
      void listWorker.pause(true);
      rejection = backend.holdKeyRejection(
        { account: account.name, at: new Date().toISOString(), worker: workerId, hostname: hostname(), pid: process.pid },
        (error) => accountLogger.warn({ error: error.message }, 'could not record the rejected key for status'),
      );
      deps.onKeyRejected?.(account);
    };
    // What both workers that call the API share: one client, one rate limit, one policy.
    const shared = {
      sql,
      backend,
      queues,
      account,
      own,
      client,
      logger: accountLogger,
      causes: causeLog(accountLogger, {
        account: account.name,
        apiKeyEnv: account.apiKeyEnv,
        url: account.baseUrl ?? config.baseUrl,
        urlSetting: urlSetting(account),
      }),
      metrics: deps.metrics,
      onAnswer: answerRecorder(deps.metrics, account.name),
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
      onRateLimited: (error) => pauseForRateLimit(shared, error),
      onKeyRejected: () => {
        accountLogger.error(keyRejectedMessage(account, 'jobs'));
        onKeyRejected();
      },
    });
    for (const worker of [refreshWorker, listWorker]) worker.on('error', repeatedErrorLog(accountLogger, worker.name));
    const follower =
      config.auditLogPollSeconds > 0
        ? startAuditFollower({
            ...shared,
            account: account.name,
            pollSeconds: config.auditLogPollSeconds,
            onRateLimited: (error) => pauseForRateLimit(shared, error),
            onKeyRejected: () => {
              if (!state.rejected) accountLogger.error(keyRejectedMessage(account, 'audit-log polls'));
              onKeyRejected();
            },
          })
        : undefined;
    state.close = async () => {
      await Promise.all([refreshWorker.close(), listWorker.close(), follower?.stop()]);
      await rejection?.release();
      client.close();
    };
    return state;
  }

  const served = new Map(deps.accounts.map((account) => [account.name, startAccount(account)]));
  const withoutKey = new Map<string, string>();
  const same = (a: Account, b: Account) =>
    a.apiKeyEnv === b.apiKeyEnv && a.rateLimitPerSecond === b.rateLimitPerSecond && a.baseUrl === b.baseUrl;
  /**
   * Follows the accounts the targets file names now: one it gained is served
   * from now on if this process has its key; one whose key variable, limit or
   * base URL changed is served anew with them. One it dropped is still served
   * (its queued jobs drain) until this worker restarts.
   */
  async function followAccounts(): Promise<void> {
    const configured = await loadAccounts(sql);
    for (const name of withoutKey.keys()) if (!configured.some((a) => a.name === name)) withoutKey.delete(name);
    for (const account of configured) {
      const current = served.get(account.name);
      if (current && same(current.account, account)) continue;
      const read = readKey(account, deps.env ?? process.env);
      if ('problem' in read) {
        if (withoutKey.get(account.name) !== read.problem) {
          logger.error({ account: account.name }, `account ${account.name} is not served by this worker: ${read.problem}`);
        }
        withoutKey.set(account.name, read.problem);
        continue;
      }
      withoutKey.delete(account.name);
      served.delete(account.name);
      await current?.close();
      served.set(account.name, startAccount({ ...account, apiKey: read.key }));
      logger.info(
        { account: account.name, rate_limit_per_second: account.rateLimitPerSecond ?? config.rateLimitPerSecond },
        current ? 'serving an account whose settings the targets file changed' : 'serving an account the targets file gained',
      );
    }
  }
  // One look at a time: a restart of an account's workers waits for its jobs in flight.
  let following: Promise<void> | undefined;
  const accountTimer = setInterval(() => {
    following ??= followAccounts()
      .catch((error: Error) => logger.warn({ error: error.message }, 'could not look for changed accounts; will try again'))
      .finally(() => (following = undefined));
  }, ACCOUNT_POLL_MS);
  accountTimer.unref();

  // Refreshes whose jobs were lost (a store emptied, or switched while nothing ran) go back to their
  // open runs at start and now and then, not only at the next tick, which may be a day away.
  const requeueLost = () =>
    requeueOpenRuns(sql, queues, config.batchSize).then(
      (queued) => queued > 0 && logger.warn({ queued }, 'queued again the refreshes of open runs whose jobs were lost'),
      (error: Error) => logger.warn({ error: error.message }, 'could not look for lost refreshes; will try again'),
    );
  void requeueLost();
  const lostTimer = setInterval(() => void requeueLost(), LOST_SWEEP_MS);
  lostTimer.unref();

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
  scheduleWorker.on('error', repeatedErrorLog(logger, scheduleWorker.name));
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
      accounts: deps.accounts.map((a) => a.name),
      concurrency: config.concurrency,
      batch_size: config.batchSize,
      rate_limit_per_second: Object.fromEntries(deps.accounts.map((a) => [a.name, a.rateLimitPerSecond ?? config.rateLimitPerSecond])),
    },
    'worker started',
  );
  return {
    accountProblems: () => [
      ...[...served.values()]
        .filter((a) => a.rejected)
        .map(
          (a) =>
            `rejected: account ${a.account.name}: the API answered 401 to ${a.account.apiKeyEnv}; this process takes none of its jobs until restarted with a valid key`,
        ),
      ...[...withoutKey].map(([name, problem]) => `no key: account ${name}: ${problem}; this process takes none of its jobs`),
    ],
    async close() {
      clearInterval(accountTimer);
      clearInterval(lostTimer);
      await following;
      stopAlerts.abort();
      stopProgress();
      await Promise.all([...[...served.values()].map((a) => a.close()), scheduleWorker.close(), alerts]);
      await guard.stop();
    },
  };
}
