// Applies the drizzle-kit migrations in migrations/. Several processes may
// start at once, so the migrator runs under a Postgres advisory lock.
//
// drizzle-kit generates the migrations; this applies them without drizzle-orm, whose import alone
// costs a second and a quarter of a gigabyte on Node 22 and 24. It keeps drizzle-orm's migrator's
// record exactly (drizzle-orm 0.45, pg-core/dialect.js `migrate` and migrator.js), so a database
// migrated by either is up to date for the other: the table drizzle.__drizzle_migrations, one row
// per applied file with the SHA-256 of its text and created_at = the journal's `when`; a file is due
// when its `when` is later than the newest created_at; every due file runs, statement by statement
// in journal order, in one transaction.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { redactUrl } from './config.js';
import { FIRST_ANSWER_TIMEOUT_MS, firstAnswer, ServiceUnavailableError } from './errors.js';

/** One migration file as the journal orders it. */
export interface Migration {
  tag: string;
  /** The journal's `when`: what drizzle records as created_at, and compares to find what is due. */
  when: number;
  /** The file's text split where drizzle-kit marks a statement's end. */
  statements: string[];
  /** SHA-256 of the file's whole text, hex: drizzle's `hash` column. */
  hash: string;
}

/** migrations/ at the package root, found from src/ (tests) or dist/src/ (the built CLI). */
export function migrationsFolder(): string {
  for (const relative of ['../migrations', '../../migrations']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${folder}/meta/_journal.json`)) return folder;
  }
  throw new Error('migrations/ not found beside the package');
}

/** The migrations of a folder written by drizzle-kit, in the journal's order. */
export function readMigrations(folder: string): Migration[] {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, 'utf8')) as { entries: { tag: string; when: number }[] };
  return journal.entries.map(({ tag, when }) => {
    const text = readFileSync(`${folder}/${tag}.sql`, 'utf8');
    return { tag, when, statements: text.split('--> statement-breakpoint'), hash: createHash('sha256').update(text).digest('hex') };
  });
}

/** Drizzle's rule: what is due is every migration newer than the newest one recorded (none recorded: all). */
export function dueMigrations(migrations: Migration[], newestRecorded: number | undefined): Migration[] {
  return migrations.filter((m) => newestRecorded === undefined || newestRecorded < m.when);
}

const MIGRATION_LOCK = 727_001;
/** SQLSTATEs of a database never migrated: no schema drizzle, or no table in it. */
const NEVER_MIGRATED = new Set(['3F000', '42P01']);

type Sql = postgres.Sql;

/** The newest created_at recorded (undefined: none), or null when the record does not exist yet. */
async function newestRecorded(sql: Sql): Promise<number | undefined | null> {
  try {
    const [row] = await sql<{ created_at: string }[]>`SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1`;
    return row ? Number(row.created_at) : undefined;
  } catch (error) {
    if (NEVER_MIGRATED.has((error as { code?: string }).code ?? '')) return null;
    throw error;
  }
}

/** What drizzle's migrator does once it holds the lock: make the record, then apply what is due in one transaction. */
async function applyDue(sql: Sql, migrations: Migration[]): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS "drizzle"`;
  await sql`CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`;
  const due = dueMigrations(migrations, (await newestRecorded(sql)) ?? undefined);
  if (due.length === 0) return;
  await sql.begin(async (tx) => {
    for (const migration of due) {
      // Without parameters postgres.js sends the simple protocol, as drizzle does: a statement may hold several.
      for (const statement of migration.statements) await tx.unsafe(statement);
      await tx`INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") VALUES (${migration.hash}, ${migration.when})`;
    }
  });
}

/** Applies what is due of `migrations` on `sql` (one connection: the lock is its session's). */
export async function applyMigrations(sql: Sql, migrations: Migration[]): Promise<void> {
  const newest = await newestRecorded(sql);
  // Up to date (every command's usual case): nothing to lock for.
  if (newest !== null && dueMigrations(migrations, newest).length === 0) return;
  await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
  await applyDue(sql, migrations);
  await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
}

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
    await applyMigrations(sql, readMigrations(migrationsFolder()));
  } finally {
    await sql.end({ timeout: 5 });
  }
}
