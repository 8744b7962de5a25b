import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { doneByListing, inRunScope } from './runScope.js';
import type { Tx } from './tripleLock.js';

/**
 * Counts, for every open run, the targets of this batch whose attempts just
 * crossed the run's start (the attempt before began earlier, the last one
 * later), so each target counts once per run. Returns the runs that may now
 * be complete: finishRuns makes sure.
 */
export async function creditRuns(sql: Sql, triples: Triple[]): Promise<number[]> {
  if (triples.length === 0) return [];
  const rows = await sql<{ id: number; may_be_done: boolean }[]>`
    WITH credited AS (
      SELECT r.id, count(*)::int AS n
      FROM unnest(${triples.map((t) => t.projectId)}::int[], ${triples.map((t) => t.regionId)}::int[],
        ${triples.map((t) => t.imageId)}::text[]) AS x(project_id, region_id, image_id)
      JOIN targets t USING (project_id, region_id, image_id)
      JOIN sync_runs r ON r.finished_at IS NULL AND ${inRunScope(sql)}
      WHERE t.prev_attempt_at < r.started_at AND t.last_attempt_at >= r.started_at
      GROUP BY r.id)
    UPDATE sync_runs r SET attempted = r.attempted + c.n
    FROM credited c WHERE r.id = c.id
    RETURNING r.id, r.attempted >= r.planned AS may_be_done`;
  return rows.filter((row) => row.may_be_done).map((row) => row.id);
}

/**
 * Counts, for the run of a listing that has just ended, the targets it is the
 * attempt of (doneByListing) that had none since the run started: a listing
 * that found nothing changed wrote no attempt for them.
 */
export async function creditListing(tx: Tx, listingId: number): Promise<void> {
  await tx`
    WITH credited AS (
      SELECT count(*)::int AS n FROM listings l JOIN sync_runs r ON r.id = l.run_id
      JOIN targets t ON ${doneByListing(tx)}
      WHERE l.id = ${listingId} AND ${inRunScope(tx)} AND t.last_attempt_at < r.started_at)
    UPDATE sync_runs r SET attempted = r.attempted + c.n
    FROM credited c, listings l WHERE l.id = ${listingId} AND r.id = l.run_id AND r.finished_at IS NULL`;
}
