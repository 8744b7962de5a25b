// What every unit of work of one account is given: the account's failure
// domain in one named type. A worker process builds one per account it serves
// (worker.ts); the refresh worker, the list worker and the audit-log follower
// take it instead of each borrowing the others' dependency types.
import type { KeyedAccount } from './accounts.js';
import type { QueueBackend } from './backend.js';
import type { Sql } from './db.js';
import type { DeploymentGuard } from './deployment-guard.js';
import type { Logger } from './logger.js';
import type { WorkerMetrics } from './metrics.js';
import type { PacedClient } from './paced-client.js';
import type { AccountQueues, Queues } from './queue.js';
import type { ApiRateLimiter } from './rate-limiter.js';
import type { RetryPolicy } from './refresh-policy.js';
import type { CauseLog } from './repeated-errors.js';

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
  workerOptions: { lockDuration: number; stalledInterval: number };
  /**
   * The API rejected the account's key: every unit of the account stops taking
   * its work, once. `work` names what saw it ("refreshes", "jobs", "audit-log polls").
   */
  keyRejected(work: string): void;
}
