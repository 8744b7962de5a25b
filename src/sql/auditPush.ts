import type { Sql } from '../db/db.js';
import type { Tx } from './tripleLock.js';

/** The channel a push's wake-up is announced on: every process's followers listen, the one that takes the account's lease reads. */
const WAKE_CHANNEL = 'audit_log_wake';

export type PushKind = 'webhook' | 'amqp';

/**
 * Asks for the accounts' logs to be read now: marks each cursor (so the
 * follower that next takes the lease polls even if this announcement is
 * missed) and announces it to every process, in one statement. Counts the
 * pushes that asked, and when the last came.
 */
export async function requestWake(sql: Sql, kind: PushKind, accounts: string[], pushes: number): Promise<void> {
  await sql`
    WITH woken AS (
      UPDATE audit_log_cursors SET wake_requested_at = now() WHERE account = ANY(${accounts}::text[]) RETURNING account
    ), noted AS (
      INSERT INTO audit_push AS p (account, kind, last_push_at, pushes_received)
      SELECT account, ${kind}, now(), ${pushes} FROM unnest(${accounts}::text[]) AS account
      ON CONFLICT (account, kind) DO UPDATE SET last_push_at = now(), pushes_received = p.pushes_received + ${pushes}
    )
    SELECT pg_notify(${WAKE_CHANNEL}, account) FROM woken`;
}

/** Counts pushes refused (a wrong or missing header, too large a body) against each account the receiver serves. */
export async function countRefusedPushes(sql: Sql, kind: PushKind, accounts: string[], refused: number): Promise<void> {
  await sql`
    INSERT INTO audit_push AS p (account, kind, pushes_refused)
    SELECT account, ${kind}, ${refused} FROM unnest(${accounts}::text[]) AS account
    ON CONFLICT (account, kind) DO UPDATE SET pushes_refused = p.pushes_refused + ${refused}`;
}

/**
 * Calls `onWake` whenever a push asks for `account`'s log to be read, and
 * `onListening` each time this process starts listening, the first time and
 * again after its listening connection was lost (the driver listens anew on
 * its own): an announcement made meanwhile was missed, but the cursor's mark
 * it came with says whether a read is due. The returned function stops
 * listening.
 */
export async function listenForWakes(sql: Sql, account: string, onWake: () => void, onListening: () => void): Promise<() => Promise<void>> {
  const { unlisten } = await sql.listen(
    WAKE_CHANNEL,
    (payload) => {
      if (payload === account) onWake();
    },
    onListening,
  );
  return unlisten;
}

/** What the last check of an account's subscription found. */
export interface SubscriptionCheck {
  kind: PushKind;
  target: string;
  subscribed: boolean;
  problem: string | null;
}

/** Held by the one subscription check under way in the deployment. */
const SUBSCRIPTION_CHECK_LOCK = 727_004;

/**
 * Runs `check` while no other subscription check of the deployment runs, in
 * any process; false, without running it, while one does (it is tried again
 * in a moment). Accounts of one Gcore client share its subscriptions, and
 * checks of two at once would each list none and each make one. Not waited
 * for: a wait would hold a connection of the pool per account meanwhile.
 */
export async function checkingSubscriptionsAlone(sql: Sql, check: (tx: Tx) => Promise<void>): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ alone: boolean }[]>`SELECT pg_try_advisory_xact_lock(${SUBSCRIPTION_CHECK_LOCK}) AS alone`;
    if (!row?.alone) return false;
    await check(tx);
    return true;
  });
}

export async function recordSubscriptionCheck(sql: Sql | Tx, account: string, check: SubscriptionCheck): Promise<void> {
  await sql`
    INSERT INTO audit_push (account, kind, target, subscribed, subscription_problem, checked_at)
    VALUES (${account}, ${check.kind}, ${check.target}, ${check.subscribed}, ${check.problem}, now())
    ON CONFLICT (account, kind) DO UPDATE SET target = excluded.target, subscribed = excluded.subscribed,
      subscription_problem = excluded.subscription_problem, checked_at = excluded.checked_at`;
}

/**
 * Whether the account's subscription is due a check: never checked against
 * this target, or `okSeconds` since a check that found it in place,
 * `failedSeconds` since one that did not.
 */
export async function subscriptionCheckDue(
  sql: Sql,
  account: string,
  push: { kind: PushKind; target: string },
  okSeconds: number,
  failedSeconds: number,
): Promise<boolean> {
  const [row] = await sql<{ due: boolean }[]>`
    SELECT checked_at < now() - make_interval(secs => CASE WHEN subscribed THEN ${okSeconds}::int ELSE ${failedSeconds}::int END) AS due
    FROM audit_push WHERE account = ${account} AND kind = ${push.kind} AND target = ${push.target} AND checked_at IS NOT NULL`;
  return row?.due ?? true;
}

/** Notes whether the account's AMQP broker is away (`problem`) or consumed from again (null). */
export async function recordBrokerState(sql: Sql, account: string, problem: string | null): Promise<void> {
  await sql`
    INSERT INTO audit_push (account, kind, broker_problem, broker_since) VALUES (${account}, 'amqp', ${problem}, now())
    ON CONFLICT (account, kind) DO UPDATE SET broker_problem = excluded.broker_problem, broker_since = excluded.broker_since`;
}

/** Each account's push, for status and /readyz. */
export interface AuditPushState {
  account: string;
  kind: PushKind;
  target: string | null;
  subscribed: boolean;
  subscription_problem: string | null;
  checked_at: Date | null;
  last_push_at: Date | null;
  pushes_received: number;
  pushes_refused: number;
  broker_problem: string | null;
  broker_since: Date | null;
}

export async function auditPushStates(sql: Sql): Promise<AuditPushState[]> {
  return sql<AuditPushState[]>`
    SELECT account, kind, target, subscribed, subscription_problem, checked_at, last_push_at, pushes_received, pushes_refused,
      broker_problem, broker_since
    FROM audit_push ORDER BY account, kind`;
}
