import type { Sql } from '../db/db.js';

/**
 * Batch jobs (with their targets' account, whose queue they are on) that have held claims for more
 * than `olderThanMs`, optionally only those whose ids start with `jobPrefix`: candidates for a lost job.
 */
export async function listOldClaims(sql: Sql, olderThanMs: number, jobPrefix?: string): Promise<Array<{ jobId: string; account: string }>> {
  return sql<Array<{ jobId: string; account: string }>>`
    SELECT DISTINCT queued_job AS "jobId", account FROM targets
    WHERE queued_job IS NOT NULL AND queued_at < now() - make_interval(secs => ${olderThanMs / 1000})
      AND (${jobPrefix ?? null}::text IS NULL OR starts_with(queued_job, ${jobPrefix ?? null}::text))`;
}
