// The CLI as an operator runs it: a real child process, real services, exit codes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import pLimit from 'p-limit';
import postgres from 'postgres';
import { FIRST_ANSWER_TIMEOUT_MS } from '../src/errors.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { silentPort, sparePort } from './support/throwaway.js';
import { QUIET_SCHEDULE, writeTargetsFile } from './support/pipeline.js';
import { startCli } from './support/cli.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: string[], env: Record<string, string>, until?: (stdout: string) => boolean): Promise<Result> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env } });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (!signalled && until?.(stdout)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

let env: TestEnv;
let fake: FakeGcore;
const images = ['11111111-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000002'];

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const imageId of images) fake.putImage({ projectId: 3, regionId: 9, imageId }, sampleImage({ projectId: 3, regionId: 9, imageId }));
  await fake.start();
});

afterAll(async () => {
  await fake?.stop();
  await env?.cleanup();
});

describe('gcore-image-sync CLI', () => {
  it('on a Node.js older than it needs, says which it needs and exits 2, before anything else', async () => {
    // Node 20 as this process's own Node reports itself to the CLI (Debian 12's): the check runs before any module that needs more.
    const olderNode =
      'data:text/javascript,Object.defineProperty(process, "versions", { value: { ...process.versions, node: "20.20.2" } });' +
      'Object.defineProperty(process, "version", { value: "v20.20.2" });';
    const result = await new Promise<Result>((resolve) => {
      const child = spawn(process.execPath, ['--import', olderNode, CLI, 'status'], { env: { PATH: process.env.PATH! } });
      let [stdout, stderr] = ['', ''];
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('close', (code) => resolve({ code, stdout, stderr, ms: 0 }));
    });
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr:
        `gcore-image-sync needs Node.js 22.22 or newer (24 recommended); this is v20.20.2 (${process.execPath}). ` +
        'Put a newer Node.js first on PATH and run the command again.\n',
      ms: 0,
    });
  });

  it('rejects a bad targets file with every problem, exit 2, and nothing in the queue store', async () => {
    const file = await writeTargetsFile(`targets:
  - { project_id: 1, region_id: 7, image_ids: ["../../x"] }
  - { project_id: 1, image_ids: [ok] }
  - { project_id: 1, region_id: 7, image_ids: [a], schedule: { every: often } }
`);
    for (const command of ['schedule', 'start', 'sync']) {
      const result = await run([command], { ...env.env, TARGETS_FILE: file });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `gcore-image-sync ${command}: configuration error in ${file}: 3 problems\n` +
          '  targets[0].image_ids[0]: must not contain ".."\n' +
          '  targets[1].region_id: required\n' +
          '  targets[2].schedule: "often" is not a duration (use a number with ms, s, m, h or d, e.g. 15m or 1h30m)\n',
      );
    }
    expect(await env.queueEntries()).toEqual([]);
  });

  it('names a targets file that is a directory as a configuration error, exit 2, with no stack', async () => {
    // What `docker run -v` or compose's short bind syntax leaves where ./targets.yaml was missing.
    const dir = await mkdtemp(join(tmpdir(), 'gis-targets-dir-'));
    for (const command of ['schedule', 'start', 'sync']) {
      const result = await run([command], { ...env.env, TARGETS_FILE: dir });
      expect(result.code, command).toBe(2);
      expect(result.stderr).toBe(
        `gcore-image-sync ${command}: configuration error in ${dir}: 1 problem\n` +
          '  the targets file is a directory (EISDIR; Docker creates one when it mounts a file that does not exist): ' +
          'remove it, then copy examples/targets.yaml to ./targets.yaml and list your images, or set TARGETS_FILE to a file\n',
      );
    }
    expect(await env.queueEntries()).toEqual([]);
  });

  it('every command fails fast, exit 3, naming the service that refuses or connects and says nothing', async () => {
    // Every command but fake-api opens Postgres; those marked also open Redis (after Postgres).
    const commands: Array<{ args: string[]; redis: boolean }> = [
      { args: ['start'], redis: true },
      { args: ['worker'], redis: true },
      { args: ['schedule'], redis: true },
      { args: ['sync'], redis: true },
      { args: ['sync', '--wait'], redis: true },
      { args: ['status'], redis: true },
      { args: ['demo'], redis: false },
      { args: ['changes'], redis: false },
      { args: ['snapshot'], redis: false },
      { args: ['reporting-role'], redis: false },
      { args: ['push', 'list'], redis: false },
      { args: ['migrate'], redis: false },
      { args: ['db'], redis: false },
    ];
    const listed = [...(await run(['--help'], env.env)).stdout.matchAll(/^ {2}([a-z-]+)\s{2,}/gm)].map((m) => m[1]);
    expect(new Set(commands.map(({ args }) => args[0]))).toEqual(new Set(listed.filter((name) => name !== 'fake-api')));
    const silent = await silentPort();
    // Down is a refused port (nothing listening) or one that accepts connections and never answers;
    // what follows "did not answer: " is a pattern.
    const shapes = [
      { port: await sparePort(), reason: 'connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+' },
      { port: silent.port, reason: `timed out after ${FIRST_ANSWER_TIMEOUT_MS / 1000} s` },
    ];
    // Each command meets both services down, in alternate shapes, so each service is seen down in both.
    const cases = commands.flatMap(({ args, redis }, n) => {
      const [postgresDown, redisDown] = n % 2 === 0 ? shapes : [...shapes].reverse();
      return [
        { args, service: 'Postgres', url: `postgres://postgres:pw@127.0.0.1:${postgresDown!.port}/x`, reason: postgresDown!.reason },
        ...(redis ? [{ args, service: 'Redis', url: `redis://127.0.0.1:${redisDown!.port}`, reason: redisDown!.reason }] : []),
      ];
    });
    const settings = { ...env.env, TARGETS_FILE: 'examples/targets.yaml' };
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // Each run is timed from its own start; a few at a time, so that the times are the commands' and not a crowded machine's.
    const limit = pLimit(6);
    try {
      const results = await Promise.all(
        cases.map((c) =>
          limit(async () => ({
            ...c,
            result: await run(c.args, { ...settings, [c.service === 'Postgres' ? 'DATABASE_URL' : 'REDIS_URL']: c.url }),
          })),
        ),
      );
      for (const { args, service, url, reason, result } of results) {
        const label = `${args.join(' ')}, ${service} at ${url}`;
        expect(result.code, label).toBe(3);
        // One line naming the command, the service and where it looked (password hidden); no stack trace.
        const said = `gcore-image-sync ${args[0]}: ${service} at ${url.replace(':pw@', ':***@')} did not answer: `;
        expect(result.stderr, label).toMatch(new RegExp(`^${escape(said)}${reason}\n$`));
        expect(result.stdout + result.stderr, label).not.toMatch(/^ {4}at /m);
        // Fast means it ends, at the first refusal or the first-answer timeout, rather than retrying for good as
        // drivers do by default; the bound is two minutes, far over the few seconds on a quiet machine, because
        // six commands starting at once on busy cores took 37 s (the speed itself is the benchmark's).
        expect(result.ms, label).toBeLessThan(120_000);
      }
    } finally {
      await silent.close();
    }
    // Postgres answers, but the database is not there: say so, and how to make it.
    const url = new URL(env.databaseUrl);
    url.pathname = '/gis_no_such_database';
    const noDatabase = await run(['status'], { ...env.env, DATABASE_URL: url.toString() });
    expect(noDatabase.code).toBe(3);
    expect(noDatabase.stderr).toContain(
      'answered: database "gis_no_such_database" does not exist: create it (e.g. createdb), or point DATABASE_URL at one that exists',
    );
    // Twenty-one commands, six at a time, each seconds of start-up: minutes on a machine whose cores are taken.
  }, 300_000);

  // Fourteen commands one after another, each 1.4-2.5 s of start-up before it says anything (issue 24 makes them fast).
  it('explains itself and every command with --help, exit 0', async () => {
    const overview = await run(['--help'], env.env);
    expect(overview.code).toBe(0);
    const names = [...overview.stdout.matchAll(/^ {2}([a-z-]+)\s{2,}/gm)].map((m) => m[1]);
    expect(names).toEqual([
      'start',
      'worker',
      'schedule',
      'sync',
      'status',
      'changes',
      'snapshot',
      'reporting-role',
      'push',
      'demo',
      'db',
      'migrate',
      'fake-api',
    ]);
    // Every setting docs/configuration.md documents is named here.
    const settings = [...readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8').matchAll(/^\| `([A-Z_]+)` \|/gm)].map(
      (m) => m[1]!,
    );
    expect(settings.length).toBeGreaterThan(20);
    // A family of settings may be named by its prefix: SYNC_*, REDIS_CLUSTER_*.
    const named = (setting: string) =>
      overview.stdout.includes(setting) ||
      ['SYNC_', 'REDIS_CLUSTER_'].some((p) => setting.startsWith(p) && overview.stdout.includes(`${p}*`));
    for (const setting of settings) expect(named(setting), setting).toBe(true);
    expect(overview.stdout).toContain('docs/configuration.md');
    for (const name of names) {
      const help = await run([name!, '--help'], env.env);
      expect(help.code, name).toBe(0);
      expect(help.stdout, name).toMatch(new RegExp(`^usage: gcore-image-sync ${name}[\\s\\S]*\nexamples:\n  `));
    }
    for (const variable of ['QUEUE_PREFIX', 'LOG_PRETTY', 'HTTP_PORT', 'ALERT_WEBHOOK_SECRET']) expect(overview.stdout).toContain(variable);
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await run(['--version'], env.env)).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  }, 180_000);

  it('rejects unknown commands, unknown flags, bad settings and a missing API key with exit 2', async () => {
    expect(await run(['frobnicate'], env.env)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^gcore-image-sync: unknown command "frobnicate"\n/),
    });
    expect(await run(['sync', '--fast'], env.env)).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--fast'") });
    expect(await run(['migrate'], { ...env.env, SYNC_CONCURRENCY: 'lots' })).toMatchObject({
      code: 2,
      stderr:
        'gcore-image-sync migrate: configuration error in environment: 1 problem\n  SYNC_CONCURRENCY: must be a whole number from 1 to 1000 (got "lots")\n',
    });
    const { GCORE_API_KEY: _key, ...keyless } = env.env;
    // The file names the accounts, and so the variables that hold their keys.
    const withKeyless = { ...keyless, TARGETS_FILE: 'examples/targets.yaml' };
    expect(await run(['sync', '--wait'], withKeyless)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("GCORE_API_KEY is not set in this process's environment (nor GCORE_API_KEY_FILE)"),
    });
  });

  it('sync --wait fills the tables, prints a summary, and keeps the key out of output, Postgres and the queue store', async () => {
    const file = await writeTargetsFile(`${QUIET_SCHEDULE}
targets:
  - { project_id: 3, region_id: 9, image_ids: [${images.join(', ')}] }
`);
    const result = await run(['sync', '--wait'], { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url });
    expect(result.code).toBe(0);
    expect(result.stderr.trim().split('\n').at(-1)).toBe('run 1: 2/2 refreshed: 2 changed (2 created), 0 unchanged, 0 deleted, 0 failed');
    const sql = postgres(env.databaseUrl, { max: 1 });
    try {
      expect(await sql`SELECT image_id, name FROM images ORDER BY image_id`).toEqual(
        images
          .map((imageId) => ({ imageId, name: `ubuntu-22.04-x64-${imageId.slice(-4)}` }))
          .map(({ imageId, name }) => ({ image_id: imageId, name })),
      );
      const [dump] = await sql`
        SELECT (SELECT string_agg(t::text, '') FROM images t) || (SELECT string_agg(t::text, '') FROM image_versions t)
          || (SELECT string_agg(t::text, '') FROM image_changes t) || (SELECT string_agg(t::text, '') FROM sync_runs t)
          || (SELECT string_agg(t::text, '') FROM targets t) AS text`;
      expect(dump!.text).toContain(images[0]);
      expect(dump!.text).not.toContain(env.env.GCORE_API_KEY);
    } finally {
      await sql.end();
    }
    expect(result.stdout + result.stderr).not.toContain(env.env.GCORE_API_KEY);
    const stored = await env.queueContents();
    // Not an empty store looked at: the run's jobs went through it.
    expect(stored).toContain('image-refresh');
    expect(stored).not.toContain(env.env.GCORE_API_KEY);
  });

  it('sync --target refreshes one triple of the targets file, and rejects others', async () => {
    const file = await writeTargetsFile(`${QUIET_SCHEDULE}
targets:
  - { project_id: 3, region_id: 9, image_ids: [${images.join(', ')}] }
`);
    const settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
    const before = fake.requestCount;
    const one = await run(['sync', '--wait', '--target', `3/9/${images[0]}`], settings);
    expect(one.code).toBe(0);
    expect(one.stderr.trim().split('\n').at(-1)).toMatch(/^run \d+: 1\/1 refreshed: 0 changed, 1 unchanged, 0 deleted, 0 failed$/);
    expect(fake.requestCount).toBe(before + 1);
    expect(await run(['sync', '--target', '3/9/not-configured'], settings)).toMatchObject({
      code: 2,
      stderr: `gcore-image-sync sync: configuration error in sync flags: 1 problem\n  --target: 3/9/not-configured is not in ${file}\n`,
    });
    expect(await run(['sync', '--target', 'three/9/../x'], settings)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(
        '--target: the project id must be a whole number from 1 to 2147483647 (expected <project_id>/<region_id>/<image_id>, got "three/9/../x")',
      ),
    });
  });

  it('sync --wait exits 1 when a refresh failed, and records the failure', async () => {
    fake.setFault({ projectId: 3, regionId: 9, imageId: images[1]! }, { kind: 'bare404' });
    const file = await writeTargetsFile(`${QUIET_SCHEDULE}
targets:
  - { project_id: 3, region_id: 9, image_ids: [${images.join(', ')}] }
`);
    const result = await run(['sync', '--wait'], { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url });
    fake.clearFaults();
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/^run \d+: 2\/2 refreshed: 0 changed, 1 unchanged, 0 deleted, 1 failed$/);
    const sql = postgres(env.databaseUrl, { max: 1 });
    try {
      expect(await sql`SELECT image_id, status, error_class, attempts FROM sync_failures`).toEqual([
        { image_id: images[1], status: 404, error_class: 'RouteNotFoundError', attempts: 1 },
      ]);
      expect(await sql`SELECT count(*)::int AS n FROM images WHERE deleted_at IS NOT NULL`).toEqual([{ n: 0 }]);
    } finally {
      await sql.end();
    }
  });

  it('sync --wait exits 1 when a scope listing is incomplete; sync --target refreshes an image a scope discovered', async () => {
    const file = await writeTargetsFile(`${QUIET_SCHEDULE}
targets:
  - { project_id: 3, region_id: 9, discover: { baremetal: false } }
`);
    const settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url, SYNC_ATTEMPTS: '1' };
    fake.setListFault({ endpoint: 'images', projectId: 3, regionId: 9 }, { kind: 'status', status: 503 }, 1);
    const failed = await run(['sync', '--wait'], settings);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim().split('\n').at(-1)).toMatch(
      /^run \d+: 0\/0 refreshed: 0 changed, 0 unchanged, 0 deleted, 0 failed; 1 scope listings incomplete \(nothing deleted or confirmed there\)$/,
    );
    const listed = await run(['sync', '--wait'], settings);
    expect(listed.code).toBe(0);
    const one = await run(['sync', '--wait', '--target', `3/9/${images[0]}`], settings);
    expect(one.code).toBe(0);
    expect(one.stderr.trim().split('\n').at(-1)).toMatch(/^run \d+: 1\/1 refreshed: 0 changed, 1 unchanged, 0 deleted, 0 failed$/);
    const unknown = await run(['sync', '--target', '3/9/not-discovered'], settings);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`--target: 3/9/not-discovered is not in ${file} and no scope of it has discovered that image`);
  });

  it('sync without --wait says whether a worker is listening to do the refreshes', async () => {
    const file = await writeTargetsFile(`${QUIET_SCHEDULE}
targets:
  - { project_id: 3, region_id: 9, image_ids: [${images[0]}] }
`);
    const settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
    const alone = await run(['sync'], settings);
    expect(alone.code).toBe(0);
    expect(alone.stderr.trim().split('\n').slice(-2)).toEqual([
      expect.stringMatching(/^run \d+: queued 1 refresh$/),
      `no worker is listening on ${env.queuesWhere}: run \`gcore-image-sync worker\` (or \`start\`) to do them, or \`sync --wait\` to do them here`,
    ]);
    const worker = startCli(['worker'], settings);
    try {
      await expect.poll(() => worker.stdout(), { timeout: 10_000, interval: 50 }).toContain('"msg":"worker started"');
      const served = await run(['sync'], settings);
      expect(served.stderr.trim().split('\n').at(-1)).toBe(`1 worker listening on ${env.queuesWhere}`);
    } finally {
      expect((await worker.stop()).code).toBe(0);
    }
  });

  it('writes readable log lines with LOG_PRETTY=1, JSON otherwise', async () => {
    const pretty = await run(['migrate'], { ...env.env, LOG_PRETTY: '1' });
    expect(pretty.code).toBe(0);
    expect(pretty.stdout).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: migrations applied\n$/);
    const json = await run(['migrate'], env.env);
    expect(JSON.parse(json.stdout)).toMatchObject({ level: 30, msg: 'migrations applied', service: 'gcore-image-sync' });
  });

  it('schedule reconciles and exits; start reconciles, refreshes on the first tick, and stops on SIGTERM', async () => {
    const file = await writeTargetsFile(`schedule: { every: 1h }
targets:
  - { project_id: 3, region_id: 9, image_ids: [${images.join(', ')}] }
`);
    const settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
    const scheduled = await run(['schedule'], settings);
    expect(scheduled).toMatchObject({ code: 0 });
    // The sync tests above stored another targets file, which this one replaces, saying so.
    expect(scheduled.stderr).toMatch(
      /^(replacing the targets and schedules of .* \(pid \d+, sync, .*\n)?2 targets in 1 schedule group\(s\): \d+ added, \d+ rescheduled, \d+ removed; \d+ stale scheduler\(s\) removed\n$/,
    );
    // The group's scheduler and the audit snapshot's.
    expect(await env.schedulerIds()).toHaveLength(2);
    const started = await run(['start'], settings, (out) => out.includes('"msg":"run finished"'));
    expect(started.code).toBe(0);
    const lines = started.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const said = (msg: string) => lines.find((line) => line.msg === msg);
    expect(said('reconciled')).toBeDefined();
    // Narrated a line per event, each naming the process and the worker; the images themselves at debug only.
    expect(said('run started')).toMatchObject({ schedule: 'every 1h', planned: 2, queued: 2, listings: 0, superseded_runs: [] });
    // The sync tests above stored both images already.
    expect(said('run finished')).toMatchObject({
      kind: 'scheduled',
      schedule: 'every 1h',
      planned: 2,
      changed: 0,
      unchanged: 2,
      failed: 0,
    });
    for (const msg of ['run started', 'run finished'])
      expect(Date.parse(said(msg)!.next_tick_at as string) - Date.now()).toBeGreaterThan(3_500_000);
    expect(said('run finished')).toMatchObject({ hostname: hostname(), pid: expect.any(Number), worker: expect.any(String) });
    expect(said('refresh')).toBeUndefined();
    expect(said('stopped')).toBeDefined();
  });

  it('worker stops on SIGTERM and exits 0', async () => {
    const result = await run(['worker'], { ...env.env, GCORE_BASE_URL: fake.url }, (out) => out.includes('"msg":"worker started"'));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"msg":"stopped"');
  });
});
