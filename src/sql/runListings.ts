import type { Sql } from '../db/db.js';

/** The scope listings of a run, in the order they were opened. */
export async function runListings(
  sql: Sql,
  runId: number,
): Promise<Array<{ scope_key: string; status: string; listed: number | null; absent: number | null; error: string | null }>> {
  return sql`SELECT scope_key, status, listed, absent, error FROM listings WHERE run_id = ${runId} ORDER BY id`;
}

/**
 * Whether a listing of a run (named, or the run of a listing) is still open:
 * until none is, the run cannot be complete, and trying to close runs (a scan
 * of every target in their scope, seconds at a million) is not worth it. Read
 * after a listing's end committed, of listings that end at once the last to
 * commit sees none open.
 */
export async function runListingOpen(sql: Sql, of: { runId: number } | { listingId: number }): Promise<boolean> {
  const runId = 'runId' in of ? of.runId : null;
  const listingId = 'listingId' in of ? of.listingId : null;
  const [row] = await sql<{ open: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM listings WHERE status IN ('expanding', 'listing')
        AND run_id = coalesce(${runId}::bigint, (SELECT run_id FROM listings WHERE id = ${listingId}::bigint))) AS open`;
  return row!.open;
}
