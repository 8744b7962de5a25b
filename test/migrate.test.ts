// The migrator keeps drizzle-orm's record exactly: a database migrated by either is up to date for
// the other, and one migrated part-way by either is finished by the other as drizzle would.
// drizzle-orm is imported here only, as the reference.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate as drizzleMigrate } from 'drizzle-orm/postgres-js/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations, dueMigrations, migrationsFolder, readMigrations, runMigrations, type Migration } from '../src/migrate.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const envs: TestEnv[] = [];
afterAll(async () => {
  for (const env of envs) await env.cleanup();
});

async function freshDatabase(): Promise<string> {
  const env = await createTestEnv({ migrate: false });
  envs.push(env);
  return env.databaseUrl;
}

async function withSql<T>(url: string, use: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await use(sql);
  } finally {
    await sql.end();
  }
}

async function byDrizzle(url: string, folder = migrationsFolder()): Promise<void> {
  await withSql(url, (sql) => drizzleMigrate(drizzle(sql), { migrationsFolder: folder }));
}

/** The record as drizzle reads it, in the order it was written. */
const recorded = (url: string) =>
  withSql(url, async (sql) =>
    (
      await sql<
        { id: number; hash: string; created_at: string }[]
      >`SELECT id, hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id`
    ).map((row) => ({ ...row })),
  );

/** Every column of the public schema: what the migrations built. */
const columns = (url: string) =>
  withSql(url, async (sql) =>
    (
      await sql<{ c: string }[]>`
        SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS c
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1`
    ).map((row) => row.c),
  );

/** A migrations folder holding the first `count` migrations only, as a clone of an older version has. */
async function olderFolder(count: number): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'gis-migrations-'));
  await cp(migrationsFolder(), folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: unknown[] };
  await writeFile(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, count) }));
  return folder;
}

const all = readMigrations(migrationsFolder());
const expectedRecord = all.map((m) => ({ hash: m.hash, created_at: String(m.when) }));

describe('reading migrations', () => {
  it('reads each file as drizzle-orm does: the same statements, hash and time, in the journal order', () => {
    const theirs = readMigrationFiles({ migrationsFolder: migrationsFolder() });
    expect(all.map((m) => ({ sql: m.statements, hash: m.hash, folderMillis: m.when }))).toEqual(
      theirs.map((m) => ({ sql: m.sql, hash: m.hash, folderMillis: m.folderMillis })),
    );
  });

  it('is due: everything when nothing is recorded, else what is newer than the newest recorded', () => {
    const at = (when: number): Migration => ({ tag: String(when), when, statements: [], hash: '' });
    const migrations = [at(10), at(20), at(30)];
    expect(dueMigrations(migrations, undefined).map((m) => m.when)).toEqual([10, 20, 30]);
    expect(dueMigrations(migrations, 20).map((m) => m.when)).toEqual([30]);
    expect(dueMigrations(migrations, 30)).toEqual([]);
    // drizzle's rule, kept: an older file added under a newer record is never applied.
    expect(dueMigrations(migrations, 25).map((m) => m.when)).toEqual([30]);
  });
});

describe('a database migrated by drizzle-orm, or by this migrator', () => {
  it('records the same rows and builds the same tables either way', { timeout: 120_000 }, async () => {
    const [theirs, ours] = [await freshDatabase(), await freshDatabase()];
    await byDrizzle(theirs);
    await runMigrations(ours);
    expect((await recorded(theirs)).map(({ hash, created_at }) => ({ hash, created_at }))).toEqual(expectedRecord);
    expect(await recorded(ours)).toEqual(await recorded(theirs));
    expect(await columns(ours)).toEqual(await columns(theirs));
  });

  it("drizzle-orm's migrated database is up to date here, and stays so for drizzle-orm", { timeout: 120_000 }, async () => {
    const url = await freshDatabase();
    await byDrizzle(url);
    const before = await recorded(url);
    await runMigrations(url);
    await byDrizzle(url);
    expect(await recorded(url)).toEqual(before);
  });

  it('a database migrated here gets nothing applied again by drizzle-orm', { timeout: 120_000 }, async () => {
    const url = await freshDatabase();
    await runMigrations(url);
    const before = await recorded(url);
    await byDrizzle(url);
    await runMigrations(url);
    expect(await recorded(url)).toEqual(before);
  });

  it('each finishes what the other began on an older version, as drizzle-orm would', { timeout: 120_000 }, async () => {
    const older = await olderFolder(all.length - 3);
    const [drizzleFirst, oursFirst] = [await freshDatabase(), await freshDatabase()];
    await byDrizzle(drizzleFirst, older);
    await runMigrations(drizzleFirst);
    // This migrator given the older folder is what an older install of it did.
    await withSql(oursFirst, (sql) => applyMigrations(sql, readMigrations(older)));
    await byDrizzle(oursFirst);
    for (const url of [drizzleFirst, oursFirst]) {
      expect((await recorded(url)).map(({ hash, created_at }) => ({ hash, created_at }))).toEqual(expectedRecord);
    }
    expect(await columns(oursFirst)).toEqual(await columns(drizzleFirst));
  });
});
