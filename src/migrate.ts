// Applies the drizzle-kit migrations in migrations/. Several processes may
// start at once, so the migrator runs under a Postgres advisory lock.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { redactUrl } from './config.js';
import { FIRST_ANSWER_TIMEOUT_MS, firstAnswer, ServiceUnavailableError } from './errors.js';

/** migrations/ at the package root, found from src/ (tests) or dist/src/ (the built CLI). */
function migrationsFolder(): string {
  for (const relative of ['../migrations', '../../migrations']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${folder}/meta/_journal.json`)) return folder;
  }
  throw new Error('migrations/ not found beside the package');
}
const MIGRATION_LOCK = 727_001;

export async function runMigrations(databaseUrl: string): Promise<void> {
  // One connection, so the session lock and the migrator share it. It is the first every command
  // opens, so it proves Postgres answers: postgres.js's own timeout (the same as firstAnswer's,
  // which fires first and names it) is what closes a socket that connected and then said nothing;
  // ending the client does not.
  const connectTimeout = FIRST_ANSWER_TIMEOUT_MS / 1000;
  const sql = postgres(databaseUrl, { max: 1, connect_timeout: connectTimeout, onnotice: () => {} });
  try {
    // Only the first answer is timed: the lock may rightly wait for another process's migrations.
    await firstAnswer(sql`SELECT 1`);
  } catch (error) {
    await sql.end({ timeout: 0 });
    throw new ServiceUnavailableError('Postgres', redactUrl(databaseUrl), error);
  }
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle(sql), { migrationsFolder: migrationsFolder() });
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
