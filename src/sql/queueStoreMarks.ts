import type { Sql } from '../db.js';

/** Marks `kind` as used by a worker of this database for `ttlMs` (server clock); returns every kind marked now. */
export async function markQueueStore(sql: Sql, kind: string, ttlMs: number): Promise<string[]> {
  await sql`
    INSERT INTO queue_store_marks (kind, lapses_at) VALUES (${kind}, clock_timestamp() + make_interval(secs => ${ttlMs / 1000}))
    ON CONFLICT (kind) DO UPDATE SET lapses_at = excluded.lapses_at`;
  return liveQueueStores(sql);
}

/** The queue stores whose mark has not lapsed. */
export async function liveQueueStores(sql: Sql): Promise<string[]> {
  const rows = await sql<{ kind: string }[]>`SELECT kind FROM queue_store_marks WHERE lapses_at > clock_timestamp() ORDER BY kind`;
  return rows.map((row) => row.kind);
}
