// `demo`, run to completion against real Postgres and Redis, as the README's try-it step.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from './support/env.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
let env: TestEnv;

const demo = () =>
  promisify(execFile)(process.execPath, [CLI, 'demo'], { env: { PATH: process.env.PATH!, ...env.env, GCORE_API_KEY: '', LOG_LEVEL: '' } });

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
      'demo: first sync: 5 changed, 0 unchanged, 0 deleted, 0 failed',
      'demo: renamed one image, changed a tag on another, deleted a third',
      'demo: second sync: 2 changed, 2 unchanged, 1 deleted, 0 failed',
    ]);
    const log = first.stdout.trim().split('\n');
    expect(log[0]).toMatch(/^changed_at\s+triple\s+image\s+change\s+field\s+old\s+new$/);
    const rows = log.slice(1).map((line) => line.split(/\s{2,}/).slice(1, 5));
    expect(rows.slice(0, 3)).toEqual(
      expect.arrayContaining([
        ['1/7/00000000-0000-4000-8000-000000000002', 'ubuntu-22.04-x64-0002', 'deleted', '{"id":"00000000-0000-4000-8000-00000000…'],
        ['1/7/8cab6f28-09ca-4201-b3f7-23c7893f4bd6', 'ubuntu-22.04-x64-hardened', 'updated', 'name'],
        ['1/7/00000000-0000-4000-8000-000000000001', 'ubuntu-22.04-x64-0001', 'updated', 'tags.team'],
      ]),
    );
    expect(rows.slice(3).map((row) => row[2])).toEqual(['created', 'created', 'created', 'created', 'created']);

    const second = await demo();
    expect(second.stderr).toContain('demo: first sync: 3 changed, 2 unchanged, 0 deleted, 0 failed');
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
});
