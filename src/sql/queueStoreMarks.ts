import type { Sql } from '../db/db.js';

/** Marks `kind` as used by `worker` for `ttlMs` (server clock); returns every kind marked now. */
export async function markQueueStore(sql: Sql, kind: string, worker: string, ttlMs: number): Promise<string[]> {
  await sql`
    INSERT INTO queue_store_marks (kind, worker, lapses_at)
    VALUES (${kind}, ${worker}, clock_timestamp() + make_interval(secs => ${ttlMs / 1000}))
    ON CONFLICT (kind, worker) DO UPDATE SET lapses_at = excluded.lapses_at`;
  return liveQueueStores(sql);
}

/** Removes a stopping worker's mark, so that a switch of store right after it raises no alarm. */
export async function clearQueueStoreMark(sql: Sql, kind: string, worker: string): Promise<void> {
  await sql`DELETE FROM queue_store_marks WHERE kind = ${kind} AND worker = ${worker}`;
}

/** The queue stores with a mark that has not lapsed. */
export async function liveQueueStores(sql: Sql): Promise<string[]> {
  const rows = await sql<{ kind: string }[]>`
    SELECT DISTINCT kind FROM queue_store_marks WHERE lapses_at > clock_timestamp() ORDER BY kind`;
  return rows.map((row) => row.kind);
}
