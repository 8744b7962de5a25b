import type { Sql } from '../db/db.js';

/** The scope listings of a run, in the order they were opened. */
export async function runListings(
  sql: Sql,
  runId: number,
): Promise<Array<{ scope_key: string; status: string; listed: number | null; absent: number | null; error: string | null }>> {
  return sql`SELECT scope_key, status, listed, absent, error FROM listings WHERE run_id = ${runId} ORDER BY id`;
}

/**
 * Whether every listing of the run `listingId` belongs to has ended: until
 * then the run cannot be complete, and closing runs (a scan of every target in
 * their scope) is not worth trying. Read after the listing's end committed, so
 * of listings that end at once the last to commit sees them all ended.
 */
export async function runListingsEnded(sql: Sql, listingId: number): Promise<boolean> {
  const [row] = await sql<{ ended: boolean }[]>`
    SELECT NOT EXISTS (
      SELECT 1 FROM listings l JOIN listings other ON other.run_id = l.run_id
      WHERE l.id = ${listingId} AND other.status IN ('expanding', 'listing')) AS ended`;
  return row!.ended;
}
