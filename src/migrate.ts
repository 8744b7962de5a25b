// Applies the drizzle-kit migrations in migrations/. Several processes may
// start at once, so the migrator runs under a Postgres advisory lock.
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { redactUrl } from './config.js';
import { ServiceUnavailableError } from './errors.js';

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../migrations', import.meta.url));
const MIGRATION_LOCK = 727_001;

export async function runMigrations(databaseUrl: string): Promise<void> {
  // One connection, so the session lock and the migrator share it.
  const sql = postgres(databaseUrl, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    try {
      await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    } catch (error) {
      throw new ServiceUnavailableError('Postgres', redactUrl(databaseUrl), error);
    }
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
