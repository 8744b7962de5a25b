import type { Sql } from '../db/db.js';

/** The newest run (of one account, or of any), if any. */
export async function lastRunId(sql: Sql, account?: string): Promise<number | undefined> {
  const [row] = await sql<{ id: number }[]>`
    SELECT max(id)::int AS id FROM sync_runs WHERE ${account ?? null}::text IS NULL OR account = ${account ?? null}::text`;
  return row?.id ?? undefined;
}
