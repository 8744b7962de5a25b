import type { Sql } from '../db/db.js';

/** A scope as log lines name it: its name, and its key for machines (the key alone once the scope is not configured). */
export async function scopeLabel(sql: Sql, scopeKey: string): Promise<{ scope: string; scope_key: string }> {
  const [row] = await sql<{ name: string | null }[]>`SELECT name FROM scopes WHERE key = ${scopeKey}`;
  return { scope: row?.name ?? scopeKey, scope_key: scopeKey };
}
