import type { Sql } from '../db/db.js';
import type { KeyRejection } from '../queues/key-health.js';
import { jsonDocument } from './jsonDocument.js';

/** Writes (or renews) one worker's rejected-key record for `ttlMs` by the server's clock. */
export async function putKeyRejection(sql: Sql, entry: string, rejection: KeyRejection, ttlMs: number): Promise<void> {
  await sql`
    INSERT INTO key_rejections (entry, rejection, lapses_at)
    VALUES (${entry}, ${jsonDocument(sql, rejection)}, clock_timestamp() + make_interval(secs => ${ttlMs / 1000}))
    ON CONFLICT (entry) DO UPDATE SET rejection = excluded.rejection, lapses_at = excluded.lapses_at`;
}

export async function deleteKeyRejection(sql: Sql, entry: string): Promise<void> {
  await sql`DELETE FROM key_rejections WHERE entry = ${entry}`;
}

/** The records that have not lapsed, oldest rejection first. */
export async function liveKeyRejections(sql: Sql): Promise<KeyRejection[]> {
  const rows = await sql<{ rejection: KeyRejection }[]>`
    SELECT rejection FROM key_rejections WHERE lapses_at > clock_timestamp() ORDER BY rejection->>'at'`;
  return rows.map((row) => row.rejection);
}
