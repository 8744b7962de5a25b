// What every unit of work of one account is given: the account's failure
// domain in one named type. A worker process builds one per account it serves
// (buildAccountContext, called from account-work.ts); the refresh worker, the
// list worker and the audit-log follower take it instead of each borrowing
// the others' dependency types.
import type { KeyedAccount } from '../config/accounts.js';
import type { QueueBackend } from '../queues/backend.js';
import type { Config } from '../config/config.js';
import type { Sql } from '../db/db.js';
import type { DeploymentGuard } from '../queues/deployment-guard.js';
import { GcoreClient } from '../gcore/gcore-client.js';
import { formatWait, type RateLimitedError } from '../gcore/gcore-errors.js';
import { KeyRejectionLatch } from './key-rejection.js';
import type { Logger } from '../ops/logger.js';
import { answerRecorder, type WorkerMetrics } from '../ops/metrics.js';
import { PacedClient } from '../gcore/paced-client.js';
import type { AccountQueues, Queues } from '../queues/queue.js';
import { ApiRateLimiter } from '../gcore/rate-limiter.js';
import { rateLimitPause, type RetryPolicy } from './retry-policy.js';
import { causeLog, urlSetting, type CauseLog } from '../ops/repeated-errors.js';

/** BullMQ lock settings shared by a process's queue workers. */
export interface LockSettings {
  lockDuration: number;
  stalledInterval: number;
}

export interface AccountContext {
  account: KeyedAccount;
  sql: Sql;
  /** The queue store: workers are made on it and failed jobs taken through it. */
  backend: QueueBackend;
  queues: Queues;
  /** This account's queues: every job a unit takes is of this account. */
  own: AccountQueues;
  /** The account's API, paced by `limiter`; callers just ask. */
  api: PacedClient;
  /** The account's request timeline, shared by every process (for pausing, and for the listing's own waits). */
  limiter: ApiRateLimiter;
  policy: RetryPolicy;
  /** The account's logger: every line names the worker and the account. */
  logger: Logger;
  /** Says once what fails many of the account's requests (repeated-errors.ts). */
  causes: CauseLog;
  metrics?: WorkerMetrics;
  /** Names this process's worker in claims, leases and records. */
  workerId: string;
  /** Hands back jobs of another deployment before anything is done with them. */
  guard: DeploymentGuard;
  /** Images per refresh batch (and per confirming GET batch). */
  batchSize: number;
  /** BullMQ lock settings shared by this process's workers. */
  workerOptions: LockSettings;
  /**
   * The API rejected the account's key: every unit of the account stops taking
   * its work, once. `work` names what saw it ("refreshes", "jobs", "audit-log polls").
   */
  keyRejected(work: string): void;
}

/** What every account a worker process serves shares: built once by the process (worker.ts). */
export interface ProcessContext {
  config: Config;
  sql: Sql;
  backend: QueueBackend;
  queues: Queues;
  /** The process's logger, naming its worker. */
  logger: Logger;
  metrics?: WorkerMetrics;
  workerId: string;
  guard: DeploymentGuard;
  workerOptions: LockSettings;
  policy: RetryPolicy;
  /** Called once per account whose key the API rejects. */
  onKeyRejected?: (account: KeyedAccount) => void;
}

/** An account's context, and the latch its `keyRejected` trips (the account's queue workers register with it). */
interface BuiltAccount {
  ctx: AccountContext;
  latch: KeyRejectionLatch;
}

/** The account's own client, request timeline and queues; a 401 stops this account only. */
export function buildAccountContext(account: KeyedAccount, proc: ProcessContext): BuiltAccount {
  const { config, metrics, policy } = proc;
  const logger = proc.logger.child({ account: account.name });
  const limiter = new ApiRateLimiter(
    proc.backend.timeline(account.name),
    account.rateLimitPerSecond ?? config.rateLimitPerSecond,
    () => metrics?.slotsGivenUp.inc(),
    config.rateLimitMaxWaitMs,
  );
  // One client for every unit of the account, so a key rejected for a GET is not sent for a list either.
  const client = new GcoreClient({
    baseUrl: account.baseUrl ?? config.baseUrl,
    apiKey: account.apiKey,
    timeoutMs: config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    maxPageBytes: config.maxPageBytes,
    // Subscribing sends these to Gcore, and an answer may quote them back.
    sentSecrets: [config.auditPush?.headerValue, account.amqp?.connectionString].filter((s): s is string => s !== undefined),
  });
  const api = new PacedClient(client, limiter, {
    onAnswer: answerRecorder(metrics, account.name),
    onRateLimited: (error) => pauseForRateLimit({ account: account.name, logger, metrics, limiter, policy }, error),
  });
  const latch = new KeyRejectionLatch({
    account,
    backend: proc.backend,
    workerId: proc.workerId,
    logger,
    onRejected: proc.onKeyRejected,
  });
  const causes = causeLog(logger, {
    account: account.name,
    apiKeyEnv: account.apiKeyEnv,
    url: account.baseUrl ?? config.baseUrl,
    urlSetting: urlSetting(account),
  });
  const ctx: AccountContext = {
    account,
    sql: proc.sql,
    backend: proc.backend,
    queues: proc.queues,
    own: proc.queues.forAccount(account.name),
    api,
    limiter,
    policy,
    logger,
    causes,
    metrics,
    workerId: proc.workerId,
    guard: proc.guard,
    batchSize: config.batchSize,
    workerOptions: proc.workerOptions,
    keyRejected: (work) => latch.reject(work),
  };
  return { ctx, latch };
}

/** What a 429 pauses, and where it is said and counted. */
interface RateLimitTarget {
  account: string;
  logger: Logger;
  metrics?: WorkerMetrics;
  limiter: ApiRateLimiter;
  policy: RetryPolicy;
}

/**
 * After a 429 (the account's PacedClient calls this before the caller hears
 * of it): moves the account's request timeline past the wait, as asked up to
 * the cap, so every process's requests of the account wait with it, without
 * spending attempts. New batches still start; their requests wait in
 * acquire(), or, past the cap, fail there at once (rate-limiter.ts).
 */
async function pauseForRateLimit(target: RateLimitTarget, error: RateLimitedError): Promise<void> {
  const { pauseMs, askedMs } = rateLimitPause(error, target.policy);
  const overCap = askedMs > pauseMs ? { asked: formatWait(askedMs) } : {};
  target.logger.warn({ account: target.account, wait_ms: pauseMs, ...overCap }, 'rate limited by the API: pausing the queue');
  target.metrics?.rateLimitedSeconds.inc({ account: target.account }, pauseMs / 1000);
  await target.limiter.pause(pauseMs, askedMs);
}
