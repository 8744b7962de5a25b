// One account's work in a worker process: its refresh worker, its list worker
// and its audit-log follower, all on the one context of the account
// (account-context.ts), stopped together when its key is rejected and closed
// together.
import type { KeyedAccount } from '../config/accounts.js';
import { buildAccountContext, type ProcessContext } from './account-context.js';
import { startAuditFollower } from '../audit-log/audit-follower.js';
import { accountPushes } from '../audit-log/push-subscriptions.js';
import { startAmqpPush } from '../audit-log/amqp-push.js';
import { startListWorker } from '../discovery/list-worker.js';
import { startRefreshWorker } from './refresh-worker.js';
import { repeatedErrorLog } from '../ops/repeated-errors.js';

export interface AccountWork {
  account: KeyedAccount;
  /** Whether the API rejected the account's key in this process. */
  readonly rejected: boolean;
  /** Stops the account's workers and follower, waiting for the work in flight, then lets go of its client and records. */
  close(): Promise<void>;
}

/** Starts the work of `account` in this process: its refreshes, listings and audit-log polls. */
export function startAccountWork(account: KeyedAccount, proc: ProcessContext): AccountWork {
  const { config } = proc;
  const { ctx, latch } = buildAccountContext(account, proc);
  const refreshWorker = startRefreshWorker(ctx, { concurrency: config.concurrency });
  const listWorker = startListWorker(ctx);
  // A rejected key, seen by whichever unit first, stops both queue workers of the account.
  latch.stops(refreshWorker, listWorker);
  for (const worker of [refreshWorker, listWorker]) worker.on('error', repeatedErrorLog(ctx.logger, worker.name));
  const follower =
    config.auditLogPollSeconds > 0
      ? startAuditFollower(ctx, { pollSeconds: config.auditLogPollSeconds, pushes: accountPushes(config.auditPush, account) })
      : undefined;
  // Pushes only wake the follower: without one (AUDIT_LOG_POLL_SECONDS=0) there is nothing to wake.
  const amqp = follower && account.amqp ? startAmqpPush(ctx, account.amqp, config.queuePrefix) : undefined;
  return {
    account,
    get rejected() {
      return latch.rejected;
    },
    async close() {
      await Promise.all([refreshWorker.close(), listWorker.close(), follower?.stop(), amqp?.stop()]);
      await latch.release();
      ctx.api.close();
    },
  };
}
