import type { Sql } from '../db/db.js';

/** A configured scope's projects, regions and filters, as the last reconcile stored them; undefined once it is not configured. */
export async function scopeDefinition(sql: Sql, scopeKey: string): Promise<unknown> {
  const [row] = await sql<{ definition: unknown }[]>`SELECT definition FROM scopes WHERE key = ${scopeKey}`;
  return row?.definition;
}
