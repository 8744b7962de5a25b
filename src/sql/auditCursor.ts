import type { Sql } from '../db.js';
import type { Tx } from './tripleLock.js';

/** Where an account's audit log is read next, as its locked cursor row says. */
export interface AuditCursor {
  /** ISO date-time with microseconds: the `from_timestamp` of the next request. */
  from: string;
  offset: number;
  /** When the next poll is due (ms since the epoch); now or earlier when it is due now. */
  dueAt: number;
}

/** How far back the first poll of an account reads: changes seen in the first day of following get their "who". */
const FIRST_LOOKBACK = '24 hours';

/**
 * The account's cursor, locked until `tx` ends; undefined while another
 * process holds it (that process is following the log). The first call makes
 * the row, reading from a day back.
 */
export async function lockAuditCursor(tx: Tx, account: string, pollSeconds: number): Promise<AuditCursor | undefined> {
  await tx`
    INSERT INTO audit_log_cursors (account, from_timestamp) VALUES (${account}, now() - ${FIRST_LOOKBACK}::interval)
    ON CONFLICT (account) DO NOTHING`;
  const [row] = await tx<{ from: string; offset: number; due_at: string }[]>`
    SELECT to_char(from_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS from, page_offset AS offset,
      (extract(epoch FROM coalesce(polled_at + make_interval(secs => ${pollSeconds}), '-infinity')) * 1000)::text AS due_at
    FROM audit_log_cursors WHERE account = ${account} FOR UPDATE SKIP LOCKED`;
  return row ? { from: row.from, offset: row.offset, dueAt: row.due_at === '-Infinity' ? 0 : Number(row.due_at) } : undefined;
}

/** When the account's next poll is due (ms since the epoch), read without the lock; 0 when no poll has finished yet. */
export async function auditPollDue(sql: Sql, account: string, pollSeconds: number): Promise<number> {
  const [row] = await sql<{ due_at: string | null }[]>`
    SELECT (extract(epoch FROM polled_at + make_interval(secs => ${pollSeconds})) * 1000)::text AS due_at
    FROM audit_log_cursors WHERE account = ${account}`;
  return row?.due_at ? Number(row.due_at) : 0;
}

/** Moves the cursor; `finishedPollAt` (the poll's start) when the log was read to its end. */
export async function moveAuditCursor(
  tx: Tx,
  account: string,
  to: { from: string; offset: number },
  finishedPollAt: Date | null,
): Promise<void> {
  await tx`
    UPDATE audit_log_cursors SET from_timestamp = ${to.from}, page_offset = ${to.offset},
      polled_at = coalesce(${finishedPollAt?.toISOString() ?? null}::timestamptz, polled_at), last_error = NULL
    WHERE account = ${account}`;
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
