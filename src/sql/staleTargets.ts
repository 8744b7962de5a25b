import type { Sql } from '../db/db.js';

export interface StaleTarget {
  project_id: number;
  region_id: number;
  image_id: string;
  reason: string;
}

/** Rows of the stale_images view (of one account, or all), and how many there are in all. */
export async function staleTargets(sql: Sql, limit: number, account?: string): Promise<{ total: number; rows: StaleTarget[] }> {
  const rows = await sql<(StaleTarget & { total: number })[]>`
    SELECT project_id, region_id, image_id, reason, count(*) OVER ()::int AS total
    FROM stale_images WHERE ${account ?? null}::text IS NULL OR account = ${account ?? null}::text
    ORDER BY last_seen_at NULLS FIRST LIMIT ${limit}`;
  return { total: rows[0]?.total ?? 0, rows: rows.map(({ total: _total, ...row }) => row) };
}
