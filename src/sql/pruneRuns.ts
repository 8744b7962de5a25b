import type { Sql } from '../db/db.js';

/** Drops finished runs and failures older than the retention; history tables are never pruned. */
export async function pruneRuns(sql: Sql, retentionDays: number): Promise<{ runs: number; failures: number }> {
  const cutoff = sql`now() - make_interval(days => ${retentionDays})`;
  const runs = await sql`DELETE FROM sync_runs WHERE finished_at IS NOT NULL AND started_at < ${cutoff}`;
  const failures = await sql`DELETE FROM sync_failures WHERE failed_at < ${cutoff}`;
  return { runs: runs.count, failures: failures.count };
}
