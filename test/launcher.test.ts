// Nothing left behind: a command started through npx (`npm exec`, the local package's bin) stops
// when npm's pid is signalled, with what it started; a worker detached on purpose does not.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { isNpmCommandLine } from '../src/ops/launcher.js';
import { parseStat, readStat } from '../src/ops/proc-stat.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { runCli, startCli } from './support/cli.js';
import { throwawayHome } from './support/home.js';
import { writeTargetsFile } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
/** The bound for a stopped npx to leave nothing: generous for a busy machine, waited for by polling /proc. */
const GONE_WITHIN_MS = 20_000;

let env: TestEnv;
let fake: FakeGcore;
let settings: Record<string, string>;

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  await fake.start();
  settings = { PATH: process.env.PATH!, HOME: process.env.HOME ?? tmpdir(), ...env.env, GCORE_BASE_URL: fake.url };
});

afterAll(async () => {
  await fake?.stop();
  await env?.cleanup();
});

/** Whether `pid` still runs (a zombie has ended: only its exit status is left for its parent). */
function running(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** Every process below `pid`, by a scan of /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
    } catch {
      // Ended while the scan ran.
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

interface Launched {
  npm: ChildProcess;
  output(): string;
}

/** `npx gcore-image-sync <args>` as a user runs it from a clone: npm exec finds the package's own bin. */
function npx(args: string[], environment = settings): Launched {
  const npm = spawn('npm', ['exec', '--offline', '--', 'gcore-image-sync', ...args], { cwd: ROOT, env: environment });
  let output = '';
  npm.stdout.on('data', (chunk) => (output += chunk));
  npm.stderr.on('data', (chunk) => (output += chunk));
  // A failed test must not leave them running after the run.
  process.once('exit', () => {
    for (const pid of [npm.pid!, ...descendants(npm.pid!)]) if (running(pid)) process.kill(pid, 'SIGKILL');
  });
  return { npm, output: () => output };
}

/** Signals npm's pid once `ready` is printed, and resolves once neither it nor anything it started runs. */
async function signalNpm(launched: Launched, ready: string, signal: NodeJS.Signals, also: () => number[] = () => []): Promise<void> {
  await waitFor(`"${ready}"`, () => launched.output().includes(ready), 60_000);
  const pids = [launched.npm.pid!, ...descendants(launched.npm.pid!), ...also()];
  expect(pids.length).toBeGreaterThanOrEqual(3);
  launched.npm.kill(signal);
  await waitFor(`no process of npx ${signal}`, () => pids.every((pid) => !running(pid)), GONE_WITHIN_MS);
}

describe('reading /proc', () => {
  it('finds the fields after a command name with spaces and parentheses', () => {
    expect(parseStat('4242 (npm exec (x) y) S 4100 4242 4100 34816 4242 4194560 ' + '0 '.repeat(12) + '987654 0')).toEqual({
      state: 'S',
      ppid: 4100,
      session: 4100,
      startTime: '987654',
    });
  });

  it('knows npm by its title or its script, and nothing else by them', () => {
    expect(isNpmCommandLine('npm exec gcore-image-sync worker\0\0\0')).toBe(true);
    expect(isNpmCommandLine('npm start                \0')).toBe(true);
    expect(isNpmCommandLine('/usr/bin/node\0/usr/lib/node_modules/npm/bin/npx-cli.js\0gcore-image-sync\0')).toBe(true);
    expect(isNpmCommandLine('sh\0-c\0gcore-image-sync worker\0')).toBe(false);
    expect(isNpmCommandLine(`node\0${CLI}\0worker\0`)).toBe(false);
  });
});

describe('npx gcore-image-sync, its pid signalled', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'worker: %s leaves no process, and the worker stopped as if signalled',
    async (signal) => {
      const launched = npx(['worker']);
      await signalNpm(launched, '"msg":"worker started"', signal);
      expect(launched.output()).toContain('"msg":"stopped"');
    },
    120_000,
  );

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'fake-api: %s leaves no process, and its port is closed',
    async (signal) => {
      const launched = npx(['fake-api', '--port', '0']);
      await signalNpm(launched, 'fake Gcore API on ', signal);
      const port = Number(/fake Gcore API on http:\/\/127\.0\.0\.1:(\d+)/.exec(launched.output())![1]);
      const refused = await new Promise<boolean>((resolve) => {
        const socket = createConnection(port, '127.0.0.1');
        socket.once('connect', () => resolve(socket.destroy() && false));
        socket.once('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    },
    120_000,
  );

  it('db: SIGTERM, then SIGINT, leave no process, the embedded server included', async () => {
    const home = await throwawayHome();
    try {
      // The embedded server: no DATABASE_URL, and the queues in it too; `db` opens a database, never makes one.
      const { DATABASE_URL: _named, REDIS_URL: _redis, ...rest } = settings;
      expect((await runCli(['migrate'], { ...rest, GCORE_IMAGE_SYNC_HOME: home })).code).toBe(0);
      const postmaster = () => [Number(readFileSync(join(home, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0])];
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        const launched = npx(['db'], { ...rest, GCORE_IMAGE_SYNC_HOME: home });
        await signalNpm(launched, 'query it while this runs', signal, postmaster);
        expect(existsSync(join(home, 'pgdata', 'postmaster.pid'))).toBe(false);
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('a worker detached on purpose', () => {
  it('started through npm under setsid is not watched: npm is no launcher of another session', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gis-probe-'));
    const probe = join(dir, 'probe.mjs');
    const launcher = join(ROOT, 'dist', 'src', 'ops', 'launcher.js');
    await writeFile(
      probe,
      `const { findLauncher } = await import(${JSON.stringify(launcher)});\nconsole.log(JSON.stringify(findLauncher() ?? null));\n`,
    );
    const found = async (command: string) => {
      const npm = spawn('npm', ['exec', '--offline', '-c', command], { cwd: ROOT, env: settings, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      npm.stdout.on('data', (chunk) => (out += chunk));
      await new Promise((resolve) => npm.on('close', resolve));
      return { npm: npm.pid, found: JSON.parse(out) as { pid: number } | null };
    };
    try {
      const attached = await found(`node ${probe}`);
      expect(attached.found?.pid).toBe(attached.npm);
      expect((await found(`setsid node ${probe}`)).found).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it.each([['setsid'], ['nohup']])(
    'under %s, with its parent killed, keeps running until it is stopped itself',
    async (detach) => {
      const dir = await mkdtemp(join(tmpdir(), 'gis-detached-'));
      const log = join(dir, 'worker.log');
      const parent = spawn('/bin/sh', ['-c', `${detach} "${process.execPath}" "${CLI}" worker >"${log}" 2>&1 & echo $!; wait`], {
        env: settings,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let printed = '';
      parent.stdout.on('data', (chunk) => (printed += chunk));
      await waitFor('the worker pid', () => /^\d+\n/.test(printed));
      const worker = Number(printed.trim());
      const logged = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      try {
        await waitFor('the worker to start', () => logged().includes('"msg":"worker started"'), 60_000);
        parent.kill('SIGKILL');
        await waitFor('its parent gone', () => !running(parent.pid!));
        expect(running(worker)).toBe(true);
        process.kill(worker, 'SIGTERM');
        await waitFor('the worker to stop', () => !running(worker), GONE_WITHIN_MS);
        expect(logged()).toContain('"signal":"SIGTERM","timeout_ms"');
        expect(logged()).toContain('"msg":"stopped"');
      } finally {
        if (running(worker)) process.kill(worker, 'SIGKILL');
        await rm(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'sync --wait stopped by %s exits as the signal would, and stops the embedded server it started',
    async (signal) => {
      const home = await throwawayHome();
      // Answers never come within the test: the sync is still waiting when it is stopped.
      const slow = new FakeGcore({ apiKey: env.env.GCORE_API_KEY, latencyMs: 600_000 });
      try {
        const { DATABASE_URL: _named, REDIS_URL: _redis, ...rest } = settings;
        const targets = 'targets:\n  - { project_id: 1, region_id: 7, image_ids: [8cab6f28-09ca-4201-b3f7-23c7893f4bd6] }\n';
        const embedded = {
          ...rest,
          GCORE_IMAGE_SYNC_HOME: home,
          GCORE_BASE_URL: await slow.start(),
          TARGETS_FILE: await writeTargetsFile(targets),
        };
        expect((await runCli(['migrate'], embedded)).code).toBe(0);
        const sync = startCli(['sync', '--wait'], embedded);
        await waitFor('the sync to ask the API', () => slow.requestCount > 0);
        const server = Number(readFileSync(join(home, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
        expect(running(server)).toBe(true);
        process.kill(sync.pid, signal);
        expect((await sync.exited).code).toBe(signal === 'SIGTERM' ? 143 : 130);
        await waitFor('the embedded server to stop', () => !running(server), GONE_WITHIN_MS);
      } finally {
        await slow.stop();
        await rm(home, { recursive: true, force: true });
      }
    },
    240_000,
  );
});
