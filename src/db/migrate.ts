// Applies the numbered migrations in migrations/, then the current definitions of the views, functions
// and triggers in migrations/objects/ (docs/database.md). Several processes may start at once, so the
// migrator runs under a Postgres advisory lock.
//
// drizzle-kit generates the tables' migrations (some are hand-written: docs/database.md); this
// applies them without drizzle-orm, whose import alone costs a second and a quarter of a gigabyte
// on Node 22 and 24. It keeps drizzle-orm's migrator's record exactly (drizzle-orm 0.45,
// pg-core/dialect.js `migrate` and migrator.js), so a database migrated by either is up to date
// for the other: the table drizzle.__drizzle_migrations, one row
// per applied file with the SHA-256 of its text and created_at = the journal's `when`; a file is due
// when its `when` is later than the newest created_at; every due file runs, statement by statement
// in journal order, in one transaction.
//
// The objects are this migrator's own ("repeatable", as Flyway's R__ scripts): each file holds an object's
// whole current definition (CREATE OR REPLACE), and is applied, in file order, in the same transaction,
// when its SHA-256 differs from the one recorded in drizzle.__objects, or when any migration ran (one may
// have dropped what a file defines). drizzle-orm's migrator knows nothing of them: a database it migrated
// gets them at this migrator's next start. Rights granted on views and functions are granted again after
// (a definition that cannot be replaced in place is dropped and created, and would lose them).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { redactUrl } from '../config/config.js';
import { FIRST_ANSWER_TIMEOUT_MS, firstAnswer, ServiceUnavailableError } from '../errors.js';

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

/** One file of migrations/objects/: the current definition of some views, functions or triggers. */
export interface SqlObject {
  /** The file's name, e.g. 02_current_images.sql: its order and its key in drizzle.__objects. */
  name: string;
  statements: string[];
  hash: string;
}

/** migrations/ at the package root, found from src/db/ (tests) or dist/src/db/ (the built CLI). */
export function migrationsFolder(): string {
  for (const relative of ['../../migrations', '../../../migrations']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${folder}/meta/_journal.json`)) return folder;
  }
  throw new Error('migrations/ not found beside the package');
}

/** The numbered migrations of a folder (drizzle-kit's journal and files), in the journal's order. */
export function readMigrations(folder: string): Migration[] {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, 'utf8')) as { entries: { tag: string; when: number }[] };
  return journal.entries.map(({ tag, when }) => {
    const text = readFileSync(`${folder}/${tag}.sql`, 'utf8');
    return { tag, when, statements: text.split('--> statement-breakpoint'), hash: createHash('sha256').update(text).digest('hex') };
  });
}

/** The files of `folder`/objects in name order (none without the folder). */
export function readObjects(folder: string): SqlObject[] {
  const objects = `${folder}/objects`;
  if (!existsSync(objects)) return [];
  return readdirSync(objects)
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = readFileSync(`${objects}/${name}`, 'utf8');
      return { name, statements: text.split('--> statement-breakpoint'), hash: createHash('sha256').update(text).digest('hex') };
    });
}

/** Every object after a migration ran; else those whose file is not recorded with its hash. */
export function dueObjects(objects: SqlObject[], recordedHashes: Map<string, string>, migrationsRan: boolean): SqlObject[] {
  return migrationsRan ? objects : objects.filter((o) => recordedHashes.get(o.name) !== o.hash);
}

/** Drizzle's rule: what is due is every migration newer than the newest one recorded (none recorded: all). */
export function dueMigrations(migrations: Migration[], newestRecorded: number | undefined): Migration[] {
  return migrations.filter((m) => newestRecorded === undefined || newestRecorded < m.when);
}

const MIGRATION_LOCK = 727_001;
/** SQLSTATEs of a database never migrated: no schema drizzle, or no table in it. */
const NEVER_MIGRATED = new Set(['3F000', '42P01']);

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

/** What is recorded: the newest migration's created_at (undefined: none) and each object file's hash. */
interface Recorded {
  newest: number | undefined;
  objects: Map<string, string>;
}

/** The record, or null when it does not exist yet (either table): one query, the usual start's only one. */
async function readRecord(sql: Sql): Promise<Recorded | null> {
  try {
    const [row] = await sql<{ newest: string | null; objects: string }[]>`
      SELECT (SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1) AS newest,
        (SELECT coalesce(json_object_agg(name, hash), '{}')::text FROM drizzle.__objects) AS objects`;
    const objects = new Map(Object.entries(JSON.parse(row!.objects) as Record<string, string>));
    return { newest: row!.newest === null ? undefined : Number(row!.newest), objects };
  } catch (error) {
    if (NEVER_MIGRATED.has((error as { code?: string }).code ?? '')) return null;
    throw error;
  }
}

/** Whatever is due by `record`: nothing, on every start but the first of a release. */
function due(record: Recorded, migrations: Migration[], objects: SqlObject[]) {
  const dueNow = dueMigrations(migrations, record.newest);
  return { migrations: dueNow, objects: dueObjects(objects, record.objects, dueNow.length > 0) };
}

/** A right granted on a view or function of the public schema to a role other than its owner. */
interface Grant {
  kind: 'TABLE' | 'FUNCTION';
  object: string;
  privilege: string;
  grantee: string;
}

async function grantsOnObjects(tx: Tx): Promise<Grant[]> {
  return tx<Grant[]>`
    SELECT 'TABLE' AS kind, c.oid::regclass::text AS object, a.privilege_type AS privilege,
      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
    FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v' AND a.grantee <> c.relowner
    UNION ALL
    SELECT 'FUNCTION', p.oid::regprocedure::text, a.privilege_type,
      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
    FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
    WHERE p.pronamespace = 'public'::regnamespace AND a.grantee <> p.proowner`;
}

/** Grants again what `grants` held on the objects that exist now (granting what is held changes nothing). */
async function grantAgain(tx: Tx, grants: Grant[]): Promise<void> {
  for (const g of grants) {
    const [row] = await tx<{ exists: boolean }[]>`
      SELECT CASE WHEN ${g.kind} = 'TABLE' THEN to_regclass(${g.object}) IS NOT NULL
        ELSE to_regprocedure(${g.object}) IS NOT NULL END AS exists`;
    if (row!.exists) await tx.unsafe(`GRANT ${g.privilege} ON ${g.kind} ${g.object} TO ${g.grantee}`);
  }
}

/** What the migrator does once it holds the lock: make the record, then apply what is due in one transaction. */
async function applyDue(sql: Sql, migrations: Migration[], objects: SqlObject[]): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS "drizzle"`;
  await sql`CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`;
  await sql`
    CREATE TABLE IF NOT EXISTS "drizzle"."__objects" (name text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
  const todo = due((await readRecord(sql))!, migrations, objects);
  if (todo.migrations.length === 0 && todo.objects.length === 0) return;
  await sql.begin(async (tx) => {
    const grants = await grantsOnObjects(tx);
    for (const migration of todo.migrations) {
      // Without parameters postgres.js sends the simple protocol, as drizzle does: a statement may hold several.
      for (const statement of migration.statements) await tx.unsafe(statement);
      await tx`INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") VALUES (${migration.hash}, ${migration.when})`;
    }
    for (const object of todo.objects) {
      for (const statement of object.statements) await tx.unsafe(statement);
      await tx`
        INSERT INTO "drizzle"."__objects" (name, hash) VALUES (${object.name}, ${object.hash})
        ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now()`;
    }
    await grantAgain(tx, grants);
  });
}

/** Applies what is due of `migrations`, then of `objects`, on `sql` (one connection: the lock is its session's). */
export async function applyMigrations(sql: Sql, migrations: Migration[], objects: SqlObject[] = []): Promise<void> {
  const record = await readRecord(sql);
  // Up to date (every command's usual case): nothing to lock for.
  if (record !== null) {
    const todo = due(record, migrations, objects);
    if (todo.migrations.length === 0 && todo.objects.length === 0) return;
  }
  await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
  await applyDue(sql, migrations, objects);
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
    const folder = migrationsFolder();
    await applyMigrations(sql, readMigrations(folder), readObjects(folder));
  } finally {
    await sql.end({ timeout: 5 });
  }
}
