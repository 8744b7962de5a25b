import type { Sql } from '../db.js';
import type { Tx } from './tripleLock.js';

// Instants travel as text: a timestamptz parameter would be rounded to milliseconds, and the cursor keeps microseconds.

/** Where an account's audit log is read next. */
export interface AuditCursor {
  /** ISO date-time with microseconds: the `from_timestamp` of the next request. */
  from: string;
  offset: number;
}

/** How far back the first poll of an account reads: changes seen in the first day of following get their "who". */
const FIRST_LOOKBACK = '24 hours';

const FROM_TEXT = `to_char(from_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Takes (or renews) the lease on the account's log for `leaseMs`: the cursor,
 * and whether a poll is due (the last one that read the log to its end began
 * `pollSeconds` ago or more). Undefined while another follower holds a lease
 * that has not run out. The first call makes the row, reading from a day back.
 */
export async function takeAuditLease(
  sql: Sql,
  account: string,
  holder: string,
  leaseMs: number,
  pollSeconds: number,
): Promise<(AuditCursor & { due: boolean }) | undefined> {
  await sql`
    INSERT INTO audit_log_cursors (account, from_timestamp) VALUES (${account}, now() - ${FIRST_LOOKBACK}::interval)
    ON CONFLICT (account) DO NOTHING`;
  const [row] = await sql<{ from: string; offset: number; due: boolean }[]>`
    UPDATE audit_log_cursors SET lease_holder = ${holder}, lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE account = ${account} AND (lease_holder IS NULL OR lease_holder = ${holder} OR lease_until < now())
    RETURNING ${sql.unsafe(FROM_TEXT)} AS from, page_offset AS offset,
      coalesce(polled_at <= now() - make_interval(secs => ${pollSeconds}), true) AS due`;
  return row;
}

/** Gives the lease up (a clean stop, or a poll that ended), so another process need not wait for it to run out. */
export async function releaseAuditLease(sql: Sql, account: string, holder: string): Promise<void> {
  await sql`UPDATE audit_log_cursors SET lease_holder = NULL, lease_until = NULL WHERE account = ${account} AND lease_holder = ${holder}`;
}

/**
 * Moves the cursor from `read` (where the page was read from) to `to`, and
 * renews the lease; false, and nothing moved, when this follower no longer
 * holds the lease or the cursor is no longer there (another took over and
 * stored the page). `finishedPollAt` (the poll's start) when the log was read
 * to its end.
 */
export async function moveAuditCursor(
  tx: Tx,
  account: string,
  holder: string,
  leaseMs: number,
  read: AuditCursor,
  to: AuditCursor,
  finishedPollAt: Date | null,
): Promise<boolean> {
  const moved = await tx`
    UPDATE audit_log_cursors SET from_timestamp = ${to.from}::text::timestamptz, page_offset = ${to.offset},
      polled_at = coalesce(${finishedPollAt?.toISOString() ?? null}::timestamptz, polled_at), last_error = NULL,
      lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE account = ${account} AND lease_holder = ${holder} AND from_timestamp = ${read.from}::text::timestamptz AND page_offset = ${read.offset}`;
  return moved.count === 1;
}

/** When the account's next poll is due (ms since the epoch); 0 when no poll has read the log to its end yet. */
export async function auditPollDue(sql: Sql, account: string, pollSeconds: number): Promise<number> {
  const [row] = await sql<{ due_at: string | null }[]>`
    SELECT (extract(epoch FROM polled_at + make_interval(secs => ${pollSeconds})) * 1000)::text AS due_at
    FROM audit_log_cursors WHERE account = ${account}`;
  return row?.due_at ? Number(row.due_at) : 0;
}

/** Why the account's last poll stopped early (shown by status until a poll succeeds). */
export async function auditPollFailed(sql: Sql, account: string, message: string): Promise<void> {
  await sql`UPDATE audit_log_cursors SET last_error = ${message} WHERE account = ${account}`;
}

/** How far each account's audit log has been read, for status. */
export interface AuditLogState {
  account: string;
  /** Entries from this instant on are still to be read (those of the instant itself again). */
  read_to: Date;
  /** When the last poll that read the log to its end began; null before the first. */
  polled_at: Date | null;
  last_error: string | null;
}

export async function auditLogStates(sql: Sql, account?: string): Promise<AuditLogState[]> {
  return sql<AuditLogState[]>`
    SELECT account, from_timestamp AS read_to, polled_at, last_error FROM audit_log_cursors
    WHERE ${account ?? null}::text IS NULL OR account = ${account ?? null}::text ORDER BY account`;
}
