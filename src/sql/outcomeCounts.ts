import type { Sql } from '../db/db.js';
import { doneByListing, inRunScope } from './runScope.js';
import type { Tx } from './tripleLock.js';

/**
 * Targets that run `r`'s scope listings found during it: added after it
 * started, to a scope it lists. Not planned (they were not targets yet), but
 * the run stored them, so it counts them. A target two open runs of one scope
 * both listed counts in each.
 */
function discoveredBy(sql: Sql | Tx) {
  return sql`t.added_at > r.started_at AND t.scope_key IN (SELECT l.scope_key FROM listings l WHERE l.run_id = r.id)`;
}

/**
 * Joins to target `t` the listing `l` of run `r` that may stand for it: the
 * run's ended listing of its scope (at most one: a run lists a scope once).
 * A join, not a condition per target, so a million targets are matched in
 * one hash join.
 */
function endedListingOfRun(sql: Sql | Tx) {
  return sql`LEFT JOIN listings l ON l.run_id = r.id AND l.scope_key = t.scope_key AND l.status IN ('complete', 'incomplete')`;
}

/** Target `t` has no attempt since run `r` started, but its ended listing `l` (endedListingOfRun) stands for it (doneByListing). */
function doneByRunListing(sql: Sql | Tx) {
  return sql`(l.id IS NOT NULL AND ${doneByListing(sql)})`;
}

/**
 * What came of target `t` in run `r` (null: nothing yet): its last attempt
 * since the run started, else `unchanged` when its ended listing stands for
 * it. An image that changed during the run counts as changed whichever answer
 * about it was stored last (two kinds' lists may return one image, the older
 * answer after the newer). The image is read only for the few targets with an
 * attempt or off the list, never in a scan.
 */
function outcomeInRun(sql: Sql | Tx) {
  return sql`CASE
    WHEN t.last_attempt_at >= r.started_at THEN
      CASE WHEN t.last_outcome = 'unchanged' AND EXISTS (SELECT 1 FROM image_rows i
          WHERE (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id)
            AND i.last_changed_at >= r.started_at AND i.deleted_at IS NULL) THEN 'changed'
        ELSE t.last_outcome END
    WHEN ${doneByRunListing(sql)} THEN 'unchanged' END`;
}

/**
 * The one count of what run `r` did, from stored rows, as a LATERAL subquery
 * where `r` is the sync_runs row: live while it runs, frozen by finishRuns
 * and closeRun. Each target counts once, by outcomeInRun, among the targets it
 * planned and those its listings discovered. `created` is the part of
 * `changed` that began an image's history: no version closed before (an
 * update or a restore always closes one). `marked_left` sums what its listings
 * marked as having left their scope (a confirming GET found the image alive
 * and the scope no longer covering it); `listed` what its listings returned
 * (live: what their pages have so far).
 */
export function runCounts(sql: Sql | Tx) {
  return sql`
    SELECT count(*) FILTER (WHERE t.outcome = 'unchanged')::int AS unchanged,
           count(*) FILTER (WHERE t.outcome = 'changed')::int AS changed,
           count(*) FILTER (WHERE t.outcome = 'changed' AND NOT EXISTS (SELECT 1 FROM image_versions v
             WHERE (v.project_id, v.region_id, v.image_id) = (t.project_id, t.region_id, t.image_id) AND v.valid_to IS NOT NULL))::int
             AS created,
           count(*) FILTER (WHERE t.outcome = 'deleted')::int AS deleted,
           count(*) FILTER (WHERE t.outcome = 'failed')::int AS failed,
           (SELECT count(*)::int FROM targets t WHERE ${discoveredBy(sql)}) AS discovered,
           (SELECT coalesce(sum(coalesce(l.listed, (SELECT count(*) FROM listing_ids x WHERE x.listing_id = l.id))), 0)::bigint
             FROM listings l WHERE l.run_id = r.id) AS listed,
           (SELECT coalesce(sum(l.marked_left), 0)::int FROM listings l WHERE l.run_id = r.id) AS marked_left,
           (SELECT count(*)::int FROM listings l WHERE l.run_id = r.id AND l.status = 'incomplete') AS listings_failed
    -- OFFSET 0 keeps the subquery whole, so each target's outcome is worked out once, not once per count.
    FROM (SELECT t.project_id, t.region_id, t.image_id, ${outcomeInRun(sql)} AS outcome
      FROM targets t ${endedListingOfRun(sql)}
      WHERE (${inRunScope(sql)}) OR (${discoveredBy(sql)}) OFFSET 0) t
    WHERE t.outcome IS NOT NULL`;
}

/**
 * What run `r` still waits for, one row per item with its account: targets it
 * planned that have no outcome in it yet, and its listings not ended. The
 * run is complete when there is none (finishRuns); closed while some remain,
 * they are its `unattempted` and `listings_unfinished` (closeRun).
 */
export function unfinishedWork(sql: Sql | Tx) {
  return sql`
    SELECT t.account, 'target' AS kind FROM targets t ${endedListingOfRun(sql)}
    WHERE ${inRunScope(sql)} AND t.last_attempt_at < r.started_at AND NOT ${doneByRunListing(sql)}
    UNION ALL
    SELECT l.account, 'listing' AS kind FROM listings l WHERE l.run_id = r.id AND l.status IN ('expanding', 'listing')`;
}
