import type { Sql } from '../db/db.js';

/** The scope listings of a run, in the order they were opened. */
export async function runListings(
  sql: Sql,
  runId: number,
): Promise<Array<{ scope_key: string; status: string; listed: number | null; absent: number | null; error: string | null }>> {
  return sql`SELECT scope_key, status, listed, absent, error FROM listings WHERE run_id = ${runId} ORDER BY id`;
}
