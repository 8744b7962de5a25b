import type { IncompleteRange } from '../audit-log/audit-cursor.js';
import { isoText } from './auditCursor.js';
import type { Tx } from './tripleLock.js';

/** The most entries a window's end names as given up; the rest are counted. */
const GIVEN_UP_NAMED = 100;

/**
 * The bound of the account's last window read to its end (the database's
 * clock when its poll began), ISO with microseconds; null before the first.
 * Read in the transaction that ends the next window, before its move replaces it.
 */
export async function lastWindowBound(tx: Tx, account: string): Promise<string | null> {
  const [row] = await tx<{ bound: string | null }[]>`
    SELECT ${tx.unsafe(isoText('polled_at'))} AS bound FROM audit_log_cursors WHERE account = ${account}`;
  return row?.bound ?? null;
}

/** What the end of a window finds of the account's entries stored incomplete (is_complete false). */
export interface IncompleteActions {
  /** The oldest one dated from `keepFrom` on, ISO with microseconds: the next window begins no later. Null when none. */
  oldest: string | null;
  /** Those dated from `giveUpFrom` up to `keepFrom`, oldest first (at most GIVEN_UP_NAMED): given up now. */
  givenUp: string[];
  /** How many were given up now, named or not. */
  givenUpCount: number;
}

/** The account's incomplete entries in `range` (src/audit-log/audit-cursor.ts decides it). */
export async function incompleteActions(tx: Tx, account: string, range: IncompleteRange): Promise<IncompleteActions> {
  const [row] = await tx<{ oldest: string | null; given_up: string[]; given_up_count: number }[]>`
    WITH kept AS (
      SELECT min(acted_at) AS acted_at FROM image_actions
      WHERE is_complete = false AND acted_at >= ${range.keepFrom}::text::timestamptz AND ${account}::text = ANY(accounts)
    ), given_up AS (
      SELECT action_id, acted_at FROM image_actions
      WHERE is_complete = false AND acted_at < ${range.keepFrom}::text::timestamptz AND ${account}::text = ANY(accounts)
        AND (${range.giveUpFrom}::text IS NULL OR acted_at >= ${range.giveUpFrom}::text::timestamptz)
    )
    SELECT (SELECT ${tx.unsafe(isoText('acted_at'))} FROM kept) AS oldest,
      ARRAY(SELECT action_id FROM given_up ORDER BY acted_at, action_id LIMIT ${GIVEN_UP_NAMED}) AS given_up,
      (SELECT count(*)::int FROM given_up) AS given_up_count`;
  return { oldest: row!.oldest, givenUp: row!.given_up, givenUpCount: row!.given_up_count };
}
