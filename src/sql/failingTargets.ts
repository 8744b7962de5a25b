import type { Sql } from '../db/db.js';

export interface FailingTarget {
  project_id: number;
  region_id: number;
  image_id: string;
  account: string;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: string;
}

/** Targets (of one account, or all) whose last refresh failed, most recent first. */
export async function failingTargets(sql: Sql, limit: number, account?: string): Promise<FailingTarget[]> {
  return sql<FailingTarget[]>`
    SELECT project_id, region_id, image_id, account, last_status, last_error, last_attempt_at FROM targets
    WHERE last_outcome = 'failed' AND (${account ?? null}::text IS NULL OR account = ${account ?? null}::text)
    ORDER BY last_attempt_at DESC LIMIT ${limit}`;
}
