import type { Sql } from '../db/db.js';

/**
 * A batch job starting (or found lost) gives up its claims, so a request that
 * arrives while it runs queues the targets once more.
 */
export async function releaseClaims(sql: Sql, jobIds: string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const result = await sql`UPDATE targets SET queued_job = NULL, queued_at = NULL WHERE queued_job = ANY(${jobIds}::text[])`;
  return result.count;
}
