// Reporting in SQL against real Postgres: views, as-of state, change alerts
// by LISTEN/NOTIFY, and the changes command.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { REPORTING_RELATIONS } from '../src/sql/grantReporting.js';
import type { TestEnv } from './support/env.js';
import { startScenario, type Pipeline, type Scenario } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const A: Triple = { projectId: 8, regionId: 3, imageId: sampleImageId(1) };
const B: Triple = { projectId: 8, regionId: 3, imageId: sampleImageId(2) };

let scenario: Scenario;
let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let listener: postgres.Sql;
const notifications: unknown[] = [];
let beforeRename: string;
let reportingRole: string | undefined;

beforeAll(async () => {
  scenario = await startScenario([A, B], { env: { SYNC_ATTEMPTS: '1' } });
  ({ env, fake, pipeline } = scenario);
  listener = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  await listener.listen('image_changes', (payload) => notifications.push(JSON.parse(payload)));
  await pipeline.sync();
  beforeRename = new Date().toISOString();
  fake.updateImage(A, {
    name: 'renamed',
    tags: [
      { key: 'team', value: 'data', read_only: false },
      { key: 'os', value: 'ubuntu', read_only: true },
    ],
  });
  fake.setFault(B, { kind: 'status', status: 500 });
  await pipeline.sync();
});

afterAll(async () => {
  await listener?.end();
  await scenario?.close();
  if (reportingRole) {
    const admin = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP ROLE IF EXISTS ${reportingRole}`);
    await admin.end();
  }
});

describe('reporting', () => {
  it('a LISTEN client receives one notification per changed image when the refresh commits', async () => {
    await waitFor('three notifications', () => notifications.length >= 3);
    expect(notifications).toHaveLength(3);
    // Nobody is named: this deployment does not follow the audit log (test/audit-log.test.ts does).
    const nobody = { actor_email: null, actor_user_id: null, action_type: null, action_id: null, actor_candidates: 0 };
    // The rows a notification stands for, for a listener to read what did not fit (test/bounded-notify.test.ts).
    const rows = { first_change_id: expect.any(Number), last_change_id: expect.any(Number) };
    expect(notifications.slice(0, 2)).toEqual(
      expect.arrayContaining([
        { project_id: 8, region_id: 3, image_id: A.imageId, change_type: 'created', fields: [], field_count: 0, ...rows, ...nobody },
        { project_id: 8, region_id: 3, image_id: B.imageId, change_type: 'created', fields: [], field_count: 0, ...rows, ...nobody },
      ]),
    );
    expect(notifications[2]).toEqual({
      project_id: 8,
      region_id: 3,
      image_id: A.imageId,
      change_type: 'updated',
      fields: ['name', 'tags.team'],
      field_count: 2,
      ...rows,
      ...nobody,
    });
  });

  it('image_change_log lists changes newest first with the image name', async () => {
    const rows = await pipeline.services.sql`SELECT image_id, image_name, change_type, field FROM image_change_log`;
    expect(rows.slice(0, 2)).toEqual([
      { image_id: A.imageId, image_name: 'renamed', change_type: 'updated', field: 'tags.team' },
      { image_id: A.imageId, image_name: 'renamed', change_type: 'updated', field: 'name' },
    ]);
    expect(rows).toHaveLength(4);
  });

  it('current_images shows the state now and images_as_of the state at a past moment', async () => {
    const sql = pipeline.services.sql;
    expect(await sql`SELECT image_id, name, tags FROM current_images ORDER BY image_id`).toEqual([
      { image_id: A.imageId, name: 'renamed', tags: { os: 'ubuntu', team: 'data' } },
      { image_id: B.imageId, name: 'ubuntu-22.04-x64-0002', tags: { os: 'ubuntu', team: 'platform' } },
    ]);
    expect(await sql`SELECT image_id, name, tags FROM images_as_of(${beforeRename}) ORDER BY image_id`).toEqual([
      { image_id: A.imageId, name: 'ubuntu-22.04-x64-0001', tags: { os: 'ubuntu', team: 'platform' } },
      { image_id: B.imageId, name: 'ubuntu-22.04-x64-0002', tags: { os: 'ubuntu', team: 'platform' } },
    ]);
    expect(await sql`SELECT count(*)::int AS n FROM images_as_of('2000-01-01')`).toEqual([{ n: 0 }]);
  });

  it('stale_images lists failed refreshes and images not seen for twice their interval, with the reason', async () => {
    const sql = pipeline.services.sql;
    expect(await sql`SELECT image_id, reason FROM stale_images`).toEqual([
      { image_id: B.imageId, reason: 'last refresh failed: 500: injected 500' },
    ]);
    await sql`UPDATE targets SET added_at = now() - interval '30 days', interval_seconds = 3600 WHERE image_id = ${A.imageId}`;
    await sql`UPDATE image_rows SET seen_at = now() - interval '3 hours' WHERE image_id = ${A.imageId}`;
    const rows = await sql`SELECT image_id, reason FROM stale_images ORDER BY image_id`;
    expect(rows.map((r) => r.image_id)).toEqual([A.imageId, B.imageId]);
    expect(rows[0]!.reason).toMatch(/^not seen for 03:00:0\d$/);
  });

  it('the changes command lists changes as a table or JSON, filtered, and rejects bad flags', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, 'changes', ...args], { env: { PATH: process.env.PATH!, ...env.env } });
    const { stdout } = await run(['--since', '1h', '--field', 'name', '--json']);
    expect(JSON.parse(stdout)).toEqual([
      expect.objectContaining({
        project_id: 8,
        region_id: 3,
        image_id: A.imageId,
        image_name: 'renamed',
        change_type: 'updated',
        field: 'name',
        old_value: 'ubuntu-22.04-x64-0001',
        new_value: 'renamed',
      }),
    ]);
    expect(
      JSON.parse((await run(['--since', beforeRename, '--field', 'tags', '--json'])).stdout).map((r: { field: string }) => r.field),
    ).toEqual(['tags.team']);
    expect(JSON.parse((await run(['--project', '9', '--json'])).stdout)).toEqual([]);
    const table = (await run(['--since', '1h', '--region', '3'])).stdout.split('\n');
    expect(table[0]).toMatch(/^changed_at\s+triple\s+image\s+change\s+field\s+old\s+new\s+by$/);
    expect(table[1]!.split(/\s{2,}/).slice(1)).toEqual([
      `8/3/${A.imageId}`,
      'renamed',
      'updated',
      'tags.team',
      '{"value":"platform","read_only":false}',
      '{"value":"data","read_only":false}',
    ]);
    const bad = await run(['--since', 'yesterday-ish']).catch((error: { code: number; stderr: string }) => error);
    expect(bad).toMatchObject({
      code: 2,
      stderr:
        'gcore-image-sync changes: configuration error in changes flags: 1 problem\n  --since: "yesterday-ish" is neither a duration (24h, 7d) nor an ISO 8601 time\n',
    });
  });

  it('audit snapshots: scheduled and by command, immutable, with a digest and a diff between two', async () => {
    const sql = pipeline.services.sql;
    await pipeline.services.queues.schedule.add('snapshot', {});
    await waitFor(
      'the scheduled snapshot',
      async () => (await sql`SELECT 1 FROM audit_snapshots WHERE trigger LIKE 'tick:%'`).length === 1,
    );
    const [first] = await sql`SELECT id, image_count, digest FROM audit_snapshots`;
    expect(first!.image_count).toBe(2);

    fake.clearFaults();
    fake.updateImage(B, { status: 'deprecated' });
    fake.deleteImage(A);
    await pipeline.sync();
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, 'snapshot'], {
      env: { PATH: process.env.PATH!, ...env.env },
    });
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^snapshot 2: 1 images at \S+, digest [0-9a-f]{64}\n$/);
    expect(await sql`SELECT image_id, difference FROM snapshot_diff(${first!.id}, 2)`).toEqual([
      { image_id: A.imageId, difference: 'removed' },
      { image_id: B.imageId, difference: 'changed' },
    ]);
    const again = await promisify(execFile)(process.execPath, [CLI, 'snapshot'], { env: { PATH: process.env.PATH!, ...env.env } });
    const digests = await sql`SELECT digest FROM audit_snapshots ORDER BY id`;
    expect(again.stderr).toContain(`digest ${digests[1]!.digest}`);
    expect(digests[2]!.digest).toBe(digests[1]!.digest);
    expect(digests[1]!.digest).not.toBe(digests[0]!.digest);
    await expect(sql`UPDATE audit_snapshots SET image_count = 0`).rejects.toThrow(
      'audit snapshots are immutable (UPDATE on audit_snapshots)',
    );
    await expect(sql`DELETE FROM audit_snapshot_items`).rejects.toThrow('audit snapshots are immutable (DELETE on audit_snapshot_items)');
    await expect(sql`TRUNCATE audit_snapshots CASCADE`).rejects.toThrow('audit snapshots are immutable (TRUNCATE on audit_snapshots)');
  });

  it('reporting-role creates a role that reads the reporting views and functions, what the web view reads, and nothing else', async () => {
    const role = `gis_report_${Date.now().toString(36)}`;
    reportingRole = role;
    const { stderr } = await promisify(execFile)(process.execPath, [CLI, 'reporting-role', '--role', role], {
      env: { PATH: process.env.PATH!, ...env.env },
    });
    expect(stderr).toContain(`role ${role} may read current_images, image_change_log, stale_images, audit_snapshots`);
    const sql = pipeline.services.sql;
    const asRole = <T>(body: (tx: postgres.TransactionSql) => Promise<T>) =>
      sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL ROLE ${role}`);
        return body(tx);
      });
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM current_images`)).toEqual([{ n: 1 }]);
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM image_change_log`)).toEqual([{ n: 6 }]);
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM images_as_of(now())`)).toEqual([{ n: 1 }]);
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM snapshot_diff(1, 2)`)).toEqual([{ n: 2 }]);
    // Who uses the images (issue 27): the views and functions, over tables the role may not read itself.
    for (const view of ['image_usage', 'image_usage_history', 'unused_images']) {
      expect(await asRole((tx) => tx.unsafe(`SELECT count(*)::int AS n FROM ${view}`))).toEqual([{ n: 0 }]);
    }
    expect(await asRole((tx) => tx`SELECT usage_status FROM image_usage_status`)).toEqual([{ usage_status: 'unknown' }]);
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM image_usage_as_of(now())`)).toEqual([{ n: 0 }]);
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM snapshot_usage(1)`)).toEqual([{ n: 0 }]);
    expect(await asRole((tx) => tx`SELECT in_use_alert(1, 1, 'x', 'deleted', null, now()) AS a`)).toEqual([{ a: null }]);
    // Every relation it may read (the reporting views and what the web view's pages read, issue 29), each whole:
    // the role sees what the owner sees.
    for (const relation of REPORTING_RELATIONS) {
      const count = `SELECT count(*)::int AS n FROM ${relation}`;
      expect(await asRole((tx) => tx.unsafe(count))).toEqual(await sql.unsafe(count));
    }
    expect(await asRole((tx) => tx`SELECT count(*)::int AS n FROM image_changes`)).toEqual([{ n: 6 }]);
    // Nothing else: the table behind images, what the worker alone needs, the accounts' settings.
    for (const table of ['image_rows', 'targets', 'accounts', 'audit_push', 'listing_pages', 'deployment', 'schedule_owner']) {
      await expect(asRole((tx) => tx.unsafe(`SELECT 1 FROM ${table} LIMIT 1`))).rejects.toThrow(`permission denied for table ${table}`);
    }
    await expect(
      asRole((tx) => tx`INSERT INTO audit_snapshots (trigger, taken_at, image_count, digest) VALUES ('x', now(), 0, 'x')`),
    ).rejects.toThrow('permission denied for table audit_snapshots');
  });
});
