import type { AuditCursor } from '../audit-log/audit-cursor.js';
import type { Sql } from '../db/db.js';
import type { Tx } from './tripleLock.js';

// Instants travel as text: a timestamptz parameter would be rounded to milliseconds, and the cursor keeps microseconds.

/** How far back the first poll of an account reads: changes seen in the first day of following get their "who". */
const FIRST_LOOKBACK = '24 hours';

/**
 * When an account's next poll is due: a poll interval after the last that read the log to its end
 * began, or a second after it when a push has asked since (so a burst of pushes is read once or
 * twice, not once each); at once before the first. A push's mark ahead of the clock (the clock
 * was set back) asks for nothing: it would make every poll due again a second on, until the
 * clock caught up.
 */
const pollDue = (sql: Sql, pollSeconds: number) => sql`
  CASE WHEN polled_at IS NULL THEN now()
    WHEN wake_requested_at > polled_at AND wake_requested_at <= now() THEN polled_at + interval '1 second'
    ELSE polled_at + make_interval(secs => ${pollSeconds}::int) END`;

/** An instant as ISO text with all six digits of the fraction. */
export const isoText = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The lease: where to read from, whether a poll is due, the database's clock now (a poll's bound), and when it last looked ahead. */
export interface AuditLease extends AuditCursor {
  due: boolean;
  /** now() of the database server, ISO with microseconds. */
  now: string;
  lookedAheadAt: string | null;
}

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
): Promise<AuditLease | undefined> {
  await sql`
    INSERT INTO audit_log_cursors (account, from_timestamp) VALUES (${account}, now() - ${FIRST_LOOKBACK}::interval)
    ON CONFLICT (account) DO NOTHING`;
  const [row] = await sql<AuditLease[]>`
    UPDATE audit_log_cursors SET lease_holder = ${holder}, lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE account = ${account} AND (lease_holder IS NULL OR lease_holder = ${holder} OR lease_until < now())
    RETURNING ${sql.unsafe(isoText('from_timestamp'))} AS from, page_offset AS offset,
      ${pollDue(sql, pollSeconds)} <= now() AS due,
      ${sql.unsafe(isoText('now()'))} AS now, ${sql.unsafe(isoText('looked_ahead_at'))} AS "lookedAheadAt"`;
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
 * stored the page). `finishedPollAt` (the poll's bound: the database's clock
 * when it began) when the log was read to its end.
 */
export async function moveAuditCursor(
  tx: Tx,
  account: string,
  holder: string,
  leaseMs: number,
  read: AuditCursor,
  to: AuditCursor,
  finishedPollAt: string | null,
): Promise<boolean> {
  const moved = await tx`
    UPDATE audit_log_cursors SET from_timestamp = ${to.from}::text::timestamptz, page_offset = ${to.offset},
      polled_at = coalesce(${finishedPollAt}::text::timestamptz, polled_at), last_error = NULL,
      lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE account = ${account} AND lease_holder = ${holder} AND from_timestamp = ${read.from}::text::timestamptz AND page_offset = ${read.offset}`;
  return moved.count === 1;
}

/** When the account's next poll is due (ms since the epoch); 0 when no poll has read the log to its end yet. */
export async function auditPollDue(sql: Sql, account: string, pollSeconds: number): Promise<number> {
  const [row] = await sql<{ due_at: string | null }[]>`
    SELECT (extract(epoch FROM ${pollDue(sql, pollSeconds)}) * 1000)::text AS due_at
    FROM audit_log_cursors WHERE account = ${account}`;
  return row?.due_at ? Number(row.due_at) : 0;
}

/** Why the account's last poll stopped early (shown by status until a poll succeeds). */
export async function auditPollFailed(sql: Sql, account: string, message: string): Promise<void> {
  await sql`UPDATE audit_log_cursors SET last_error = ${message} WHERE account = ${account}`;
}

/**
 * Notes what a look for entries dated ahead of the database's clock found
 * (`lookedAt`: the bound it looked past), and renews the lease; false when
 * this follower no longer holds the lease.
 */
export async function recordLookAhead(
  tx: Tx,
  account: string,
  holder: string,
  leaseMs: number,
  lookedAt: string,
  ahead: { count: number; furthest: string | null },
): Promise<boolean> {
  const noted = await tx`
    UPDATE audit_log_cursors SET looked_ahead_at = ${lookedAt}::text::timestamptz, ahead_at = ${ahead.furthest}::text::timestamptz,
      ahead_count = ${ahead.count}, lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE account = ${account} AND lease_holder = ${holder}`;
  return noted.count === 1;
}

/** How far each account's audit log has been read, and what it holds from the future, for status and /readyz. */
export interface AuditLogState {
  account: string;
  /** The database's clock when the last poll that read the log to its end began: every entry dated up to it was read. Null before the first. */
  read_to: Date | null;
  /** Where the next read starts (an overlap before read_to once a poll has ended, or earlier at an entry still incomplete: entries that come late, or are completed late, are still read). */
  next_from: Date;
  last_error: string | null;
  /** The furthest entry dated ahead of the database's clock at the last look (null: none), how many there were, and when it looked. */
  ahead_at: Date | null;
  ahead_count: number;
  looked_ahead_at: Date | null;
  /** now() of the database server. */
  now: Date;
}

export async function auditLogStates(sql: Sql, account?: string): Promise<AuditLogState[]> {
  return sql<AuditLogState[]>`
    SELECT account, polled_at AS read_to, from_timestamp AS next_from, last_error, ahead_at, ahead_count, looked_ahead_at, now() AS now
    FROM audit_log_cursors
    WHERE ${account ?? null}::text IS NULL OR account = ${account ?? null}::text ORDER BY account`;
}
