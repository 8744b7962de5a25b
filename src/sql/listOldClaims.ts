import type { Sql } from '../db.js';

/** Batch jobs that have held claims for more than `olderThanMs`: candidates for a lost job. */
export async function listOldClaims(sql: Sql, olderThanMs: number): Promise<string[]> {
  const rows = await sql<{ queued_job: string }[]>`
    SELECT DISTINCT queued_job FROM targets
    WHERE queued_job IS NOT NULL AND queued_at < now() - make_interval(secs => ${olderThanMs / 1000})`;
  return rows.map((row) => row.queued_job);
}
