import type { Sql } from '../db/db.js';
import type { RunCounts, RunProgress } from './getRun.js';
import { runCounts, unfinishedWork } from './outcomeCounts.js';

/** A run as finishRuns or closeRun closed it: its frozen counts, and how long it took. */
export type FinishedRun = Pick<RunProgress, 'id' | 'kind' | 'scheduleKey' | 'status' | 'planned' | 'error'> &
  RunCounts & {
    /** From its start to its finish, by the database's clock. */
    seconds: number;
  };

/** What closing a run sets, `c` being its counts (runCounts) and `w` what it still waited for (unfinishedWork, counted). */
const FREEZE = `finished_at = now(), unchanged = c.unchanged, changed = c.changed, created = c.created, deleted = c.deleted,
  failed = c.failed, marked_left = c.marked_left, discovered = c.discovered, listed = c.listed, listings_failed = c.listings_failed`;

const RETURNING = `RETURNING r.id, r.kind, r.schedule_key AS "scheduleKey", r.status, r.planned, r.error, r.unchanged, r.changed,
  r.created, r.deleted, r.failed, r.marked_left AS "markedLeft", r.discovered, r.listed, r.listings_failed AS "listingsFailed",
  r.unattempted, r.listings_unfinished AS "listingsUnfinished", extract(epoch FROM r.finished_at - r.started_at)::float8 AS seconds`;

/**
 * Closes every open run whose targets all have an attempt that began after
 * the run started and whose scope listings have all ended, freezing its counts. Exact but a scan of targets, so it
 * runs when creditRuns says a run may be done (whichever batch commits last
 * sees all the others), at each tick, and now and then while someone waits.
 */
export async function finishRuns(sql: Sql): Promise<FinishedRun[]> {
  return sql<FinishedRun[]>`
    WITH complete AS (
      SELECT r.id FROM sync_runs r WHERE r.finished_at IS NULL AND NOT EXISTS (${unfinishedWork(sql)})),
    counted AS (
      SELECT r.id, c.* FROM sync_runs r JOIN complete USING (id), LATERAL (${runCounts(sql)}) c)
    UPDATE sync_runs r SET status = 'finished', ${sql.unsafe(FREEZE)}
    FROM counted c WHERE r.id = c.id AND r.finished_at IS NULL
    ${sql.unsafe(RETURNING)}`;
}

/**
 * Closes a run that cannot be completed here (the API rejected the key of an
 * account it covers) as `incomplete`, saying why, freezing its counts and what
 * it still waited for; that work stays queued for a worker that can do it.
 * Undefined when the run had closed already (another process finished it).
 */
export async function closeRun(sql: Sql, runId: number, error: string): Promise<FinishedRun | undefined> {
  const [row] = await sql<FinishedRun[]>`
    WITH counted AS (
      SELECT r.id, c.*,
        (SELECT count(*) FILTER (WHERE w.kind = 'target')::int FROM (${unfinishedWork(sql)}) w) AS unattempted,
        (SELECT count(*) FILTER (WHERE w.kind = 'listing')::int FROM (${unfinishedWork(sql)}) w) AS listings_unfinished
      FROM sync_runs r, LATERAL (${runCounts(sql)}) c WHERE r.id = ${runId} AND r.finished_at IS NULL)
    UPDATE sync_runs r SET status = 'incomplete', error = ${error}, unattempted = c.unattempted,
      listings_unfinished = c.listings_unfinished, ${sql.unsafe(FREEZE)}
    FROM counted c WHERE r.id = c.id AND r.finished_at IS NULL
    ${sql.unsafe(RETURNING)}`;
  return row;
}

/** What run `runId` still waits for, by account: the accounts whose work is left, and how much. */
export async function unfinishedByAccount(sql: Sql, runId: number): Promise<Array<{ account: string; targets: number; listings: number }>> {
  return sql`
    SELECT w.account, count(*) FILTER (WHERE w.kind = 'target')::int AS targets, count(*) FILTER (WHERE w.kind = 'listing')::int AS listings
    FROM sync_runs r, LATERAL (${unfinishedWork(sql)}) w WHERE r.id = ${runId} GROUP BY w.account ORDER BY w.account`;
}
