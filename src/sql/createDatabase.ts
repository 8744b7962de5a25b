import type { Sql } from '../db/db.js';

/** Makes an empty database `name` on the server `sql` is connected to; `name` must be a plain identifier. */
export async function createDatabase(sql: Sql, name: string): Promise<void> {
  await sql`CREATE DATABASE ${sql(name)}`;
}
