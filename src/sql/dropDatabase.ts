import type { Sql } from '../db/db.js';

/** Drops the database `name`, ending the sessions still open on it (a process stopped midway may leave some). */
export async function dropDatabase(sql: Sql, name: string): Promise<void> {
  await sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`;
}
