import type { Sql } from '../db.js';

/** The newest run, if any. */
export async function lastRunId(sql: Sql): Promise<number | undefined> {
  const [row] = await sql<{ id: number }[]>`SELECT max(id)::int AS id FROM sync_runs`;
  return row?.id ?? undefined;
}
