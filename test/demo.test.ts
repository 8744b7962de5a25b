// `demo`, run to completion against real Postgres and Redis, as the README's try-it step.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from './support/env.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
let env: TestEnv;

const demo = (overrides: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, [CLI, 'demo'], {
    env: { PATH: process.env.PATH!, ...env.env, GCORE_API_KEY: '', LOG_LEVEL: '', ...overrides },
    timeout: 10_000,
  });

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
});
afterAll(async () => {
  await env?.cleanup();
});

describe('gcore-image-sync demo', () => {
  it('syncs the samples, changes three, syncs again and prints the change log; again on the same database', async () => {
    const first = await demo();
    expect(first.stderr.trim().split('\n').slice(1)).toEqual([
      // Images a scope discovers during a run count in it: the 5 listed by id and the 3 the scope found.
      'demo: first sync: 8 changed, 0 unchanged, 0 deleted, 0 failed',
      "demo: first sync: the scope's listing of project 2, region 76 was complete: 3 images listed, 0 stored ones missing from it, each confirmed with a GET",
      'demo: renamed one image, changed a tag on another, deleted a third; in the scope, added one and deleted one',
      'demo: second sync: 3 changed, 4 unchanged, 2 deleted, 0 failed',
      "demo: second sync: the scope's listing of project 2, region 76 was complete: 3 images listed, 1 stored ones missing from it, each confirmed with a GET",
    ]);
    const log = first.stdout.trim().split('\n');
    expect(log[0]).toMatch(/^changed_at\s+triple\s+image\s+change\s+field\s+old\s+new$/);
    const rows = log.slice(1).map((line) => line.split(/\s{2,}/).slice(1, 5));
    expect(rows.slice(0, 5)).toEqual(
      expect.arrayContaining([
        ['1/7/00000000-0000-4000-8000-000000000002', 'ubuntu-22.04-x64-0002', 'deleted', '{"id":"00000000-0000-4000-8000-00000000…'],
        ['1/7/8cab6f28-09ca-4201-b3f7-23c7893f4bd6', 'ubuntu-22.04-x64-hardened', 'updated', 'name'],
        ['1/7/00000000-0000-4000-8000-000000000001', 'ubuntu-22.04-x64-0001', 'updated', 'tags.team'],
        ['2/76/00000000-0000-4000-8000-000000000065', 'web-1', 'deleted', '{"id":"00000000-0000-4000-8000-00000000…'],
        ['2/76/00000000-0000-4000-8000-000000000068', 'web-4', 'created', '{"id":"00000000-0000-4000-8000-00000000…'],
      ]),
    );
    expect(rows.slice(5).map((row) => row[2])).toEqual(Array(8).fill('created'));

    const second = await demo();
    // The fake starts afresh: the deleted images are back (restored) and the added one is gone (confirmed deleted).
    expect(second.stderr).toContain('demo: first sync: 4 changed, 4 unchanged, 1 deleted, 0 failed');
  });

  it('refuses a database that tracks other images', async () => {
    const { connectPostgres } = await import('../src/db.js');
    const sql = await connectPostgres(env.databaseUrl);
    await sql`INSERT INTO targets (project_id, region_id, image_id, schedule_key) VALUES (99, 1, 'real-image', 'every 3600000ms')`;
    await sql.end();
    const error = await demo().catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain(
      "configuration error in DATABASE_URL: 1 problem\n  already tracks 1 images that are not the demo's: point the demo at an empty database",
    );
  });

  it.each([
    ['Postgres', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }],
    ['Redis', { REDIS_URL: 'redis://127.0.0.1:1' }],
  ])('exits 3 within seconds when %s does not answer, instead of waiting on its fake API', async (service, overrides) => {
    const error = await demo(overrides).catch((e: { code: number; killed: boolean; stderr: string }) => e);
    expect(error).toMatchObject({ code: 3, killed: false });
    expect((error as { stderr: string }).stderr).toContain(`gcore-image-sync demo: ${service} at`);
  });
});
