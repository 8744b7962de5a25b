import type { Sql } from '../db.js';
import type { RunProgress } from './getRun.js';
import { outcomeCounts } from './outcomeCounts.js';
import { inRunScope } from './runScope.js';

/** A run as finishRuns closed it: its frozen counts, and how long it took. */
export type FinishedRun = Pick<
  RunProgress,
  'id' | 'kind' | 'scheduleKey' | 'planned' | 'unchanged' | 'changed' | 'deleted' | 'failed' | 'listingsFailed'
> & {
  /** From its start to its finish, by the database's clock. */
  seconds: number;
};

/**
 * Closes every open run whose targets all have an attempt that began after
 * the run started and whose scope listings have all ended, freezing its counts. Exact but a scan of targets, so it
 * runs when creditRuns says a run may be done (whichever batch commits last
 * sees all the others), at each tick, and now and then while someone waits.
 */
export async function finishRuns(sql: Sql): Promise<FinishedRun[]> {
  return sql<FinishedRun[]>`
    WITH complete AS (
      SELECT r.id FROM sync_runs r
      WHERE r.finished_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM targets t WHERE ${inRunScope(sql)} AND t.last_attempt_at < r.started_at)
        AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.run_id = r.id AND l.status IN ('expanding', 'listing'))),
    counted AS (
      SELECT r.id, c.* FROM sync_runs r JOIN complete USING (id),
      LATERAL (${outcomeCounts(sql)}) c)
    UPDATE sync_runs r SET finished_at = now(), status = 'finished',
      unchanged = counted.unchanged, changed = counted.changed, deleted = counted.deleted, failed = counted.failed,
      listings_failed = (SELECT count(*) FROM listings l WHERE l.run_id = r.id AND l.status = 'incomplete')
    FROM counted WHERE r.id = counted.id AND r.finished_at IS NULL
    RETURNING r.id, r.kind, r.schedule_key AS "scheduleKey", r.planned, r.unchanged, r.changed, r.deleted, r.failed,
      r.listings_failed AS "listingsFailed", extract(epoch FROM r.finished_at - r.started_at)::float8 AS seconds`;
}
