// The migrator keeps drizzle-orm's record exactly: a database migrated by either is up to date for
// the other, and one migrated part-way by either is finished by the other as drizzle would.
// drizzle-orm is imported here only, as the reference. The objects of migrations/objects/ are applied
// when their file changes, and leave a database an older release migrated the same as a fresh one.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate as drizzleMigrate } from 'drizzle-orm/postgres-js/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  dueMigrations,
  dueObjects,
  migrationsFolder,
  readMigrations,
  readObjects,
  runMigrations,
  type Migration,
  type SqlObject,
} from '../src/db/migrate.js';
import { grantReporting } from '../src/sql/grantReporting.js';
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
    // The views and functions are this migrator's (migrations/objects/): drizzle-orm leaves them as the last
    // migration defined them, and the next start of a release brings them up to date, adding no record.
    await runMigrations(theirs);
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
    // drizzle-orm finished it, so its objects are as the last migration defined them until the next start here.
    await runMigrations(oursFirst);
    expect(await columns(oursFirst)).toEqual(await columns(drizzleFirst));
  });
});

/**
 * What the database holds, as text to compare: relations with their persistence, owner-independent
 * rights, columns, constraints, indexes, views, functions and triggers of the public schema (those of
 * extensions left out), and the extensions.
 */
const catalog = (url: string) =>
  withSql(url, async (sql) =>
    (
      await sql<{ line: string }[]>`
        -- Rights as in force: a relation never granted on (null) has its owner's default ones, as one granted on and back has.
        WITH own AS (
          SELECT c.oid, c.relname, c.relkind, c.relpersistence, coalesce(c.relacl, acldefault('r', c.relowner)) AS relacl FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'i', 'S')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e'))
        SELECT 'relation ' || relname || ' ' || relkind::text || relpersistence::text || ' ' || coalesce(relacl::text, '') AS line FROM own
        UNION ALL SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '
          || coalesce(column_default, '') || ' #' || ordinal_position
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL SELECT 'view ' || relname || ' ' || pg_get_viewdef(oid) FROM own WHERE relkind = 'v'
        UNION ALL SELECT 'function ' || pg_get_functiondef(p.oid) || ' ' || coalesce(p.proacl::text, '') FROM pg_proc p
          WHERE p.pronamespace = 'public'::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
          JOIN own ON own.oid = t.tgrelid WHERE NOT t.tgisinternal
        UNION ALL SELECT 'extension ' || extname FROM pg_extension
        ORDER BY 1`
    ).map((row) => row.line),
  );

/** The views, functions and triggers the public schema holds (extensions' left out), by name. */
const definedObjects = (url: string) =>
  withSql(url, async (sql) =>
    (
      await sql<{ name: string }[]>`
        SELECT 'view ' || relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'v'
        UNION SELECT 'function ' || proname FROM pg_proc p WHERE pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        UNION SELECT 'trigger ' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
        ORDER BY 1`
    ).map((row) => row.name),
  );

/** The views, functions and triggers the files of migrations/objects/ create, by name. */
function declaredObjects(objects: SqlObject[]): string[] {
  const names = objects.flatMap((o) =>
    [...o.statements.join('').matchAll(/^CREATE (?:OR REPLACE )?(VIEW|FUNCTION|TRIGGER) (\w+)/gm)].map(
      ([, kind, name]) => `${kind!.toLowerCase()} ${name}`,
    ),
  );
  return [...new Set(names)].sort();
}

const objects = readObjects(migrationsFolder());
const role = () => `gis_reporting_${randomBytes(4).toString('hex')}`;

async function dropRole(name: string, urls: string[]): Promise<void> {
  for (const url of urls) await withSql(url, (sql) => sql.unsafe(`DROP OWNED BY ${name}`));
  await withSql(urls[0]!, (sql) => sql.unsafe(`DROP ROLE IF EXISTS ${name}`));
}

describe('objects: the current definition of each view, function and trigger, in migrations/objects/', () => {
  it('are due all after a migration ran, else those whose file is new or changed', () => {
    const at = (name: string, hash: string): SqlObject => ({ name, hash, statements: [] });
    const files = [at('01_a.sql', 'x'), at('02_b.sql', 'y'), at('03_c.sql', 'z')];
    const recordedHashes = new Map([
      ['01_a.sql', 'x'],
      ['02_b.sql', 'old'],
    ]);
    expect(dueObjects(files, recordedHashes, false).map((o) => o.name)).toEqual(['02_b.sql', '03_c.sql']);
    expect(dueObjects(files, recordedHashes, true)).toEqual(files);
    expect(dueObjects(files, new Map(files.map((o) => [o.name, o.hash])), false)).toEqual([]);
  });

  it('the migrated database holds exactly the objects the files declare, as they define them', { timeout: 120_000 }, async () => {
    const url = await freshDatabase();
    await runMigrations(url);
    expect(await definedObjects(url)).toEqual(declaredObjects(objects));
    // Applying every file again changes nothing: what the database holds is what the files say.
    const before = await catalog(url);
    await withSql(url, (sql) =>
      sql.begin(async (tx) => {
        for (const object of objects) for (const statement of object.statements) await tx.unsafe(statement);
      }),
    );
    expect(await catalog(url)).toEqual(before);
  });

  it(
    'a database an older release migrated, granted to a reporting role, ends up the same as a fresh one',
    { timeout: 120_000 },
    async () => {
      const reader = role();
      const [older, fresh] = [await freshDatabase(), await freshDatabase()];
      try {
        // The release before this one: every migration up to 0022, no objects, and a reporting role with what that
        // release granted (image_history came with issue 26: the objects grant it to whoever may call images_as_of).
        const before = await olderFolder(all.findIndex((m) => m.tag.startsWith('0023')));
        await withSql(older, async (sql) => {
          await applyMigrations(sql, readMigrations(before));
          await sql.unsafe(`CREATE ROLE ${reader} NOLOGIN; REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${reader};
            GRANT USAGE ON SCHEMA public TO ${reader};
            GRANT SELECT ON current_images, image_change_log, stale_images, audit_snapshots, image_actions TO ${reader};
            GRANT EXECUTE ON FUNCTION images_as_of(timestamptz), snapshot_diff(bigint, bigint) TO ${reader}`);
        });
        await runMigrations(older);
        await runMigrations(fresh);
        await withSql(fresh, (sql) => grantReporting(sql, reader));
        expect(await catalog(older)).toEqual(await catalog(fresh));
      } finally {
        await dropRole(reader, [older, fresh]);
      }
    },
  );

  it(
    'a start with nothing new applies nothing; a changed file is applied, and a view dropped and created keeps its rights',
    { timeout: 120_000 },
    async () => {
      const reader = role();
      const url = await freshDatabase();
      const applied = () =>
        withSql(url, async (sql) => (await sql`SELECT name, hash, applied_at FROM drizzle.__objects ORDER BY name`).map((r) => ({ ...r })));
      try {
        await runMigrations(url);
        await withSql(url, (sql) => grantReporting(sql, reader));
        const first = await applied();
        expect(first.map((r) => r.name)).toEqual(objects.map((o) => o.name));
        await runMigrations(url);
        expect(await applied()).toEqual(first);

        const folder = await olderFolder(all.length);
        const stale = join(folder, 'objects', '05_stale_images.sql');
        const text = await readFile(stale, 'utf8');
        await writeFile(stale, text.replace('CREATE OR REPLACE VIEW stale_images', 'DROP VIEW stale_images;\nCREATE VIEW stale_images'));
        const catalogBefore = await catalog(url);
        await withSql(url, (sql) => applyMigrations(sql, readMigrations(folder), readObjects(folder)));
        const changed = (await applied()).filter((row, n) => row.hash !== first[n]!.hash).map((r) => r.name);
        expect(changed).toEqual(['05_stale_images.sql']);
        expect(await catalog(url)).toEqual(catalogBefore);
        const [canRead] = await withSql(url, (sql) => sql`SELECT has_table_privilege(${reader}, 'stale_images', 'SELECT') AS ok`);
        expect(canRead).toEqual({ ok: true });
      } finally {
        await dropRole(reader, [url]);
      }
    },
  );
});

describe('migration 0023: the invariants held by Postgres', () => {
  const upTo0022 = () => olderFolder(all.findIndex((m) => m.tag.startsWith('0023')));
  // An image row as the latest migrations have it.
  const image = (id: string) => sqlImage(id, 'current');

  it(
    'refuses overlapping versions, a version without its image, a change of another image, and a negative count',
    { timeout: 120_000 },
    async () => {
      const url = await freshDatabase();
      await runMigrations(url);
      await withSql(url, async (sql) => {
        await sql.unsafe(image('a'));
        await sql`INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state) VALUES (1, 1, 'a', '2026-01-01', 'h', '{}')`;
        await expect(
          sql`INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state) VALUES (1, 1, 'a', '2025-12-01', '2026-01-02', 'h', '{}')`,
        ).rejects.toThrow('image_versions_no_overlap');
        await expect(
          sql`INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state) VALUES (1, 1, 'nobody', '2026-01-01', 'h', '{}')`,
        ).rejects.toThrow('image_versions_image_fk');
        await sql.unsafe(image('b'));
        await expect(
          sql`INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, changed_at)
          SELECT 1, 1, 'b', id, 'created', now() FROM image_versions WHERE image_id = 'a'`,
        ).rejects.toThrow('image_changes_version_fk');
        await expect(sql`INSERT INTO sync_runs (kind, trigger, started_at, planned) VALUES ('manual', 'x', now(), -1)`).rejects.toThrow(
          'sync_runs_counts_check',
        );
        // Versions that meet end to start do not overlap.
        await sql`UPDATE image_versions SET valid_to = '2026-02-01' WHERE image_id = 'a'`;
        await sql`INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state) VALUES (1, 1, 'a', '2026-02-01', 'h', '{}')`;
        // Nor may an update make them overlap.
        await expect(sql`UPDATE image_versions SET valid_to = '2026-03-01' WHERE valid_to = '2026-02-01'`).rejects.toThrow(
          'image_versions_no_overlap',
        );
      });
    },
  );

  it('stops, changing nothing, where stored rows break them, and names each broken rule', { timeout: 120_000 }, async () => {
    const url = await freshDatabase();
    const folder = await upTo0022();
    await withSql(url, async (sql) => {
      await applyMigrations(sql, readMigrations(folder));
      await sql.unsafe(sqlImage('a', 'before 0024'));
      await sql`INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state) VALUES
        (1, 1, 'a', '2026-01-01', '2026-01-03', 'h', '{}'), (1, 1, 'a', '2026-01-02', NULL, 'h', '{}'), (1, 1, 'orphan', '2026-01-01', NULL, 'h', '{}')`;
    });
    const failure = runMigrations(url);
    await expect(failure).rejects.toThrow('migration 0023 adds constraints that stored rows break');
    await expect(failure).rejects.toThrow(/versions of a triple that overlap .*; a version without its image/);
    expect((await recorded(url)).length).toBe(all.findIndex((m) => m.tag.startsWith('0023')));
  });
});

describe('migration 0024: kinds of image', () => {
  it('an image written without a kind, as a worker of the earlier release still running writes it, is ordinary', async () => {
    const url = await freshDatabase();
    await withSql(url, (sql) => applyMigrations(sql, all.slice(0, tagIndex('0024') + 1)));
    await withSql(url, async (sql) => {
      await sql.unsafe(sqlImage('written-by-an-earlier-release', 'before 0024'));
      expect(await sql`SELECT kind FROM images WHERE image_id = 'written-by-an-earlier-release'`).toEqual([{ kind: 'ordinary' }]);
    });
  });
});

describe('migration 0025: refreshes that write nothing when nothing changed', () => {
  it('keeps every image with its last sighting as seen_at, shows it as images.last_seen_at, and refuses the earlier release its write', async () => {
    const url = await freshDatabase();
    await withSql(url, (sql) => applyMigrations(sql, all.slice(0, tagIndex('0025'))));
    await withSql(url, async (sql) => {
      await sql.unsafe(sqlImage('stored-before', 'before 0025'));
      await sql`UPDATE images SET last_seen_at = '2026-03-04 05:06:07.891234+00'`;
    });
    await runMigrations(url);
    await withSql(url, async (sql) => {
      expect(await sql`SELECT image_id, seen_at::text FROM image_rows`).toEqual([
        { image_id: 'stored-before', seen_at: '2026-03-04 05:06:07.891234+00' },
      ]);
      expect(await sql`SELECT image_id, last_seen_at::text FROM images`).toEqual([
        { image_id: 'stored-before', last_seen_at: '2026-03-04 05:06:07.891234+00' },
      ]);
      // A worker of the earlier release writes last_seen_at, which the view computes: operations.md says to stop them first.
      await expect(sql.unsafe(sqlImage('written-by-an-earlier-release', 'before 0025'))).rejects.toThrow(
        'cannot insert into column "last_seen_at" of view "images"',
      );
    });
  });
});

function tagIndex(prefix: string): number {
  return all.findIndex((m) => m.tag.startsWith(prefix));
}

/**
 * An image row for (1, 1, id), with every NOT NULL column, as a writer of `era` writes it: this release into
 * image_rows; releases before 0025 into the table images (with last_seen_at), those before 0024 without a kind.
 */
function sqlImage(id: string, era: 'current' | 'before 0025' | 'before 0024'): string {
  const table = era === 'current' ? 'image_rows' : 'images';
  const seen = era === 'current' ? 'seen_at' : 'last_seen_at';
  const kind = era === 'before 0024' ? { column: '', value: '' } : { column: 'kind, ', value: "'ordinary', " };
  return `INSERT INTO ${table} (project_id, region_id, image_id, ${kind.column}name, region, status, visibility, os_distro, os_version, os_type,
    disk_format, min_disk, min_ram, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash, first_seen_at,
    ${seen}, last_changed_at) VALUES (1, 1, '${id}', ${kind.value}'n', 'r', 'active', 'public', 'd', 'v', 'linux', 'qcow2', 0, 0, 1, 1,
    now(), now(), '{}', 'h', now(), now(), now())`;
}
