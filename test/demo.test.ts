// `demo`, run to completion as the README's try-it step: a world of its own
// (a throwaway database, removed afterwards unless --keep), and who made each
// change; beside a running deployment, which it leaves exactly as it was.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoImages } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { runCli, startCli, type CliResult } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

let env: TestEnv;
let scratch: string;

/** The demo as a stranger runs it: none of the deployment's settings unless given; a home of the job's that must stay untouched. */
const demo = (args: string[] = [], overrides: Record<string, string> = {}) =>
  runCli(['demo', ...args], { GCORE_IMAGE_SYNC_HOME: join(scratch, 'job-home'), ...overrides });

/** The temporary home the demo says it made. */
const homeOf = (result: CliResult) => /an embedded PostgreSQL in (\S+);/.exec(result.stderr)?.[1];
/** The database the demo says it made on the server. */
const databaseOf = (result: CliResult) => /the database (gcore_image_sync_demo_[0-9a-f]+) on the server/.exec(result.stderr)?.[1];

/** The table's rows after its header: triple, image, change, field and the "by" column. */
function tableRows(stdout: string): Array<{ triple: string; image: string; change: string; field: string; by: string }> {
  const [header, ...lines] = stdout.trim().split('\n');
  // Where each column begins: where its name does in the header (names have no spaces).
  const starts = new Map([...header!.matchAll(/\S+/g)].map((match) => [match[0], match.index]));
  const at = (name: string) => starts.get(name)!;
  const column = (line: string, name: string, next?: string) => line.slice(at(name), next ? at(next) : undefined).trim();
  return lines.map((line) => ({
    triple: column(line, 'triple', 'image'),
    image: column(line, 'image', 'change'),
    change: column(line, 'change', 'field'),
    field: column(line, 'field', 'old'),
    by: column(line, 'by'),
  }));
}

beforeAll(async () => {
  env = await createTestEnv();
  scratch = await mkdtemp(join(tmpdir(), 'gis-demo-test-'));
});
afterAll(async () => {
  await env?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('gcore-image-sync demo', () => {
  it('in an embedded database of its own: syncs, users change three, the follower names them, syncs again; the database is removed', async () => {
    const result = await demo();
    expect(result.code).toBe(0);
    const home = homeOf(result)!;
    expect(home).toMatch(/gcore-image-sync-demo-/);
    expect(result.stderr.trim().split('\n').slice(2)).toEqual([
      // Images a scope discovers during a run count in it: the 5 listed by id and the 3 the scope found.
      'demo: first sync: 8 changed, 0 unchanged, 0 deleted, 0 failed',
      "demo: first sync: the scope's listing of project 2, region 76 was complete: 3 images listed, 0 stored ones missing from it, each confirmed with a GET",
      "demo: in the fake's audit log, alice@example.com renamed one image, bob@example.com changed a tag on another, carol@example.com deleted a third; in the scope, dave@example.com added one and deleted one",
      'demo: the audit-log follower read those actions and refreshed the 5 images at once; their changes name who made them',
      // The follower already saw every change: the sync finds nothing more (the deleted images are still targets, and still gone).
      'demo: second sync: 0 changed, 9 unchanged, 0 deleted, 0 failed',
      "demo: second sync: the scope's listing of project 2, region 76 was complete: 3 images listed, 0 stored ones missing from it, each confirmed with a GET",
      'demo: removed its database (--keep keeps it)',
    ]);
    expect(result.stdout.split('\n')[0]).toMatch(/^changed_at\s+triple\s+image\s+change\s+field\s+old\s+new\s+by$/);
    const rows = tableRows(result.stdout);
    const attributed = rows
      .filter((row) => row.by !== '')
      .map(({ triple, change, field, by }) => [triple.split('/').pop(), change, field, by]);
    expect(attributed.sort()).toEqual(
      [
        ['00000000-0000-4000-8000-000000000001', 'updated', 'tags.team', 'bob@example.com (update_metadata)'],
        ['00000000-0000-4000-8000-000000000001', 'updated', 'updated_at', 'bob@example.com (update_metadata)'],
        ['00000000-0000-4000-8000-000000000002', 'deleted', '', 'carol@example.com (delete)'],
        ['00000000-0000-4000-8000-000000000065', 'deleted', '', 'dave@example.com (delete)'],
        ['00000000-0000-4000-8000-000000000068', 'created', '', 'dave@example.com (create)'],
        ['8cab6f28-09ca-4201-b3f7-23c7893f4bd6', 'updated', 'name', 'alice@example.com (update)'],
        ['8cab6f28-09ca-4201-b3f7-23c7893f4bd6', 'updated', 'updated_at', 'alice@example.com (update)'],
      ].sort(),
    );
    // The first sync's sightings: nobody in the audit log made them.
    expect(rows.filter((row) => row.by === '').map((row) => row.change)).toEqual(Array(8).fill('created'));
    expect(existsSync(home)).toBe(false);
    // The job's own home was never made.
    expect(existsSync(join(scratch, 'job-home'))).toBe(false);
  }, 120_000);

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stopped by %s while it runs: removes its database and exits as the signal would',
    async (signal) => {
      const running = startCli(['demo'], { GCORE_IMAGE_SYNC_HOME: join(scratch, 'job-home') });
      let home: string | undefined;
      await waitFor(
        'the demo to make its database',
        () => (home = /an embedded PostgreSQL in (\S+);/.exec(running.stderr())?.[1]) !== undefined,
      );
      expect(existsSync(home!)).toBe(true);
      process.kill(running.pid, signal);
      const result = await running.exited;
      expect(result.code).toBe(signal === 'SIGTERM' ? 143 : 130);
      expect(result.stderr).toContain('demo: stopped: removing what it made');
      expect(existsSync(home!)).toBe(false);
      expect(existsSync(join(scratch, 'job-home'))).toBe(false);
    },
  );

  it('--keep keeps its database and prints how to look at it, and that command shows who made each change', async () => {
    const result = await demo(['--keep']);
    expect(result.code).toBe(0);
    const home = homeOf(result)!;
    try {
      expect(existsSync(join(home, 'pgdata', 'PG_VERSION'))).toBe(true);
      expect(result.stderr).toContain(`demo: kept its database, an embedded PostgreSQL in ${home}; look at it with:`);
      expect(result.stderr).toContain(`  GCORE_IMAGE_SYNC_HOME=${home} npx gcore-image-sync changes --since 1h\n`);
      const changes = await runCli(['changes', '--since', '1h', '--field', 'name'], { GCORE_IMAGE_SYNC_HOME: home });
      expect(changes.code).toBe(0);
      expect(tableRows(changes.stdout).map((row) => [row.image, row.by])).toEqual([
        ['ubuntu-22.04-x64-hardened', 'alice@example.com (update)'],
      ]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 120_000);

  it('--keep on a server keeps its database, says how to look at it and drop it, and exits', async () => {
    const result = await demo(['--keep'], { DATABASE_URL: env.databaseUrl });
    expect(result.code).toBe(0);
    const name = databaseOf(result)!;
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      expect(await sql`SELECT datname FROM pg_database WHERE datname = ${name}`).toEqual([{ datname: name }]);
      expect(result.stderr).toContain(`demo: kept its database, the database ${name} on the server DATABASE_URL names; look at it with:`);
      expect(result.stderr).toMatch(new RegExp(`  psql \\S+ -c 'DROP DATABASE ${name}'     # removes it\n`));
    } finally {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await sql.end();
    }
  }, 120_000);

  it('beside a running deployment, with its DATABASE_URL and REDIS_URL: a database of its own, dropped; the deployment untouched', async () => {
    const fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
    for (const [triple, image] of demoImages()) fake.putImage(triple, image);
    const url = await fake.start();
    const targets = demoImages().map(([t]) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
    const deployment = { ...env.env, GCORE_BASE_URL: url, TARGETS_FILE: await writeTargetsFile(`targets:\n${targets.join('\n')}\n`) };
    const start = startCli(['start'], deployment);
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      // The deployment first refreshes its new (so due) images itself; after the sync below nothing more is due for an hour.
      await waitFor('the deployment to refresh what is due', () => start.stdout().includes('"msg":"run finished"'), 120_000);
      expect((await runCli(['sync', '--wait'], deployment)).code).toBe(0);
      const tables = [
        'targets',
        'images',
        'image_versions',
        'image_changes',
        'image_tags',
        'sync_runs',
        'scopes',
        'accounts',
        'schedule_owner',
      ];
      const contents = async () => {
        const text: Record<string, string> = {};
        for (const table of tables) {
          // The owner's heartbeat moves while `start` runs: who owns the schedules is what must stay.
          const row =
            table === 'schedule_owner'
              ? sql`SELECT targets_file, host, pid, command, target_count FROM schedule_owner`
              : sql`SELECT * FROM ${sql(table)} t ORDER BY t::text`;
          text[table] = JSON.stringify(await row);
        }
        return { text, schedulers: await env.schedulerIds() };
      };
      const before = await contents();
      expect(JSON.parse(before.text.images!)).toHaveLength(5);

      // LOG_LEVEL '': the deployment's info lines would go to stdout between the table's.
      const result = await demo([], { ...deployment, LOG_LEVEL: '' });
      expect(result.code).toBe(0);
      expect(result.stderr).toContain('demo: second sync: 0 changed, 9 unchanged, 0 deleted, 0 failed');
      expect(tableRows(result.stdout).filter((row) => row.by !== '')).toHaveLength(7);
      const name = databaseOf(result)!;
      expect(name).toBeDefined();
      expect(await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`).toEqual([]);
      expect(await contents()).toEqual(before);
      // No job of the demo's reached the deployment's worker: the image its scope discovers is never named there.
      expect(start.stderr() + start.stdout()).not.toContain('00000000-0000-4000-8000-000000000065');
    } finally {
      await sql.end();
      expect((await start.stop()).code).toBe(0);
      await fake.stop();
    }
  }, 180_000);

  it('says so when the role DATABASE_URL names may not create databases', async () => {
    const role = `gis_demo_nocreate_${process.pid}`;
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    await sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'demo-password' NOCREATEDB`);
    try {
      const url = new URL(env.databaseUrl);
      url.username = role;
      url.password = 'demo-password';
      const result = await demo([], { DATABASE_URL: url.toString() });
      expect(result).toMatchObject({ code: 2 });
      expect(result.stderr).toContain(
        'gcore-image-sync demo: configuration error in DATABASE_URL: 1 problem\n  its role may not create databases (CREATEDB)',
      );
      expect(result.stderr).not.toContain('demo-password');
    } finally {
      await sql.unsafe(`DROP ROLE ${role}`);
      await sql.end();
    }
  });

  it('exits 3 within seconds when the server DATABASE_URL names does not answer, instead of waiting on its fake API', async () => {
    const result = await demo([], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('gcore-image-sync demo: Postgres at');
  });
});
