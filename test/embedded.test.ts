// Without DATABASE_URL the data lives in an embedded PostgreSQL under
// GCORE_IMAGE_SYNC_HOME: started by whichever process needs it, shared with
// the others that run meanwhile, stopped by the last one, found again later.
import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/config/config.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';
import { throwawayHome } from './support/home.js';

const triples: Triple[] = [1, 2].map((n) => ({ projectId: 8, regionId: 3, imageId: sampleImageId(n) }));

let env: TestEnv;
let fake: FakeGcore;
let home: string;
let settings: Record<string, string>;

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  home = await throwawayHome();
  const file = await writeTargetsFile(`schedule: { every: 1h }
targets:
  - { project_id: 8, region_id: 3, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`);
  // Everything the test env names but DATABASE_URL.
  const { DATABASE_URL: _named, ...rest } = env.env;
  settings = { ...rest, GCORE_IMAGE_SYNC_HOME: home, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
});

afterAll(async () => {
  await fake?.stop();
  await env?.cleanup();
  if (home) await rm(home, { recursive: true, force: true });
});

/** Live PostgreSQL servers on `home`'s data directory (their command line names it; a zombie's names nothing). */
function serversOnHome(dir = home): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(join(dir, 'pgdata'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The pid and port in the server's postmaster.pid. */
function postmaster(dir: string): { pid: number; port: number } {
  const lines = readFileSync(join(dir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]) };
}

/** Another program, which holds every connection without a word; listen() is false while its port is taken. */
function squatter(): { listen(port: number): Promise<boolean>; close(): Promise<void> } {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    listen: (port) =>
      new Promise((done) => {
        server.once('error', () => done(false));
        server.listen(port, '127.0.0.1', () => done(true));
      }),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}

/** Settings for a process on its own home, with the queues in the embedded database too (no REDIS_URL). */
async function ownHome(): Promise<{ dir: string; settings: Record<string, string> }> {
  const dir = await throwawayHome();
  const { REDIS_URL: _redis, ...rest } = settings;
  return { dir, settings: { ...rest, GCORE_IMAGE_SYNC_HOME: dir } };
}

describe('the embedded PostgreSQL (DATABASE_URL unset)', () => {
  it('start syncs into it, starts it again if it dies, shares it with other commands, stops it, and finds the data again', async () => {
    const first = startCli(['start'], settings);
    await waitFor('the first run', () => first.stdout().includes('"msg":"run finished"'), 30_000);
    expect(first.stdout()).toContain(`"data_dir":"${join(home, 'pgdata')}"`);
    // A server killed under `start` is started again by it, on the same port, and its connections come back.
    const [postmaster] = readFileSync(join(home, 'pgdata', 'postmaster.pid'), 'utf8').split('\n');
    process.kill(Number(postmaster), 'SIGKILL');
    await waitFor('the server to be started again', () =>
      first.stderr().includes(`the embedded PostgreSQL in ${join(home, 'pgdata')} had stopped; started it again`),
    );
    expect(readFileSync(join(home, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]).not.toBe(postmaster);
    // Other commands use the server `start` runs, and leave it running for it.
    const changes = await runCli(['changes', '--json'], settings);
    expect(changes.code).toBe(0);
    expect((JSON.parse(changes.stdout) as Array<{ change_type: string }>).map((c) => c.change_type)).toEqual(['created', 'created']);
    const synced = await runCli(['sync', '--wait'], settings);
    expect([synced.code, synced.stderr.trim().split('\n').at(-1)]).toEqual([
      0,
      expect.stringMatching(/: 2\/2 refreshed: 0 changed, 2 unchanged/),
    ]);
    expect(serversOnHome().length).toBeGreaterThan(0);
    expect((await first.stop()).code).toBe(0);
    // The last user out stopped it; nobody is registered.
    await waitFor('the server to stop', () => serversOnHome().length === 0);
    expect(await readdir(join(home, 'users'))).toEqual([]);

    // Started again, it finds its data: nothing is due, nothing is fetched.
    const requests = fake.requestCount;
    const again = startCli(['start'], settings);
    await waitFor('the second start', () => again.stdout().includes('"msg":"worker started"'), 30_000);
    expect(again.stdout()).toContain('"msg":"schedule: nothing due before its next tick"');
    const status = await runCli(['status', '--json'], settings);
    expect(JSON.parse(status.stdout).last_run).toMatchObject({ status: 'finished', planned: 2, unchanged: 2 });
    expect((await again.stop()).code).toBe(0);
    expect(fake.requestCount).toBe(requests);
    await waitFor('the server to stop', () => serversOnHome().length === 0);
  }, 180_000);

  it('db says where the data lives and serves it until stopped, outlives a killed user; with DATABASE_URL it names that', async () => {
    const db = startCli(['db'], settings);
    await waitFor('the URL', () => db.stderr().includes('psql '));
    expect(db.stderr()).toMatch(
      new RegExp(
        `^data: ${home} \\(set by GCORE_IMAGE_SYNC_HOME; the embedded PostgreSQL, as DATABASE_URL is not set\\)\n` +
          `query it while this runs: PGPASSFILE='${join(home, 'pgpass')}' psql 'postgres://postgres@127\\.0\\.0\\.1:\\d+/postgres'\n`,
      ),
    );
    // The password is in a file only this user may read, not on the command line, and the command works as printed.
    const password = readFileSync(join(home, 'pgdata', 'gcore-image-sync-password'), 'utf8');
    expect(db.stderr()).not.toContain(password);
    expect(statSync(join(home, 'pgpass')).mode & 0o777).toBe(0o600);
    const command = /^query it while this runs: (.*)$/m.exec(db.stderr())![1];
    const psql = await promisify(execFile)('/bin/sh', ['-c', `${command} -Atc 'SHOW data_directory'`], {
      env: { PATH: process.env.PATH! },
    });
    expect(psql).toEqual({ stdout: `${join(home, 'pgdata')}\n`, stderr: '' });
    expect((await db.stop()).code).toBe(0);
    await waitFor('the server to stop', () => serversOnHome().length === 0);
    // A user killed with SIGKILL leaves the server running and its entry behind; the next one clears
    // the entry, uses the server, and as the last one out stops it.
    const killed = startCli(['db'], settings);
    await waitFor('the URL', () => killed.stderr().includes('psql '));
    process.kill(killed.pid, 'SIGKILL');
    await killed.exited;
    expect(serversOnHome().length).toBeGreaterThan(0);
    const migrated = await runCli(['migrate'], settings);
    expect(migrated.code).toBe(0);
    await waitFor('the server to stop', () => serversOnHome().length === 0);
    expect(await readdir(join(home, 'users'))).toEqual([]);
    const named = await runCli(['db'], env.env);
    expect([named.code, named.stderr]).toEqual([0, `DATABASE_URL names the database: ${redactUrl(env.databaseUrl)}\n`]);
  }, 180_000);

  it('a worker whose server died and came back on another port (its own taken) reconnects and stores the next change', async () => {
    const own = await ownHome();
    const httpPort = await sparePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const worker = startCli(['start'], { ...own.settings, HTTP_PORT: String(httpPort) });
    const other = squatter();
    try {
      await waitFor('the first run', () => worker.stdout().includes('"msg":"run finished"'), 60_000);
      await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 30_000);
      const before = postmaster(own.dir);
      // The worker is held still while the server dies and another program takes its port, so its
      // watchdog cannot start the server again on that port first.
      process.kill(worker.pid, 'SIGSTOP');
      try {
        process.kill(before.pid, 'SIGKILL');
        await waitFor('the port to be free', () => other.listen(before.port));
      } finally {
        process.kill(worker.pid, 'SIGCONT');
      }
      // An outage of the server is not the process's death: a supervisor must not restart it over one.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await waitFor(
        'the server to be started again',
        () => worker.stderr().includes(`the embedded PostgreSQL in ${join(own.dir, 'pgdata')} had stopped; started it again`),
        60_000,
      );
      const after = postmaster(own.dir);
      expect(after.port).not.toBe(before.port);
      expect(worker.stderr()).toContain(
        `the embedded PostgreSQL in ${join(own.dir, 'pgdata')} had stopped; started it again on port ${after.port} (its port ${before.port} was taken)\n`,
      );
      await waitFor('ready again', async () => (await fetch(`${base}/readyz`)).status === 200, 60_000);

      fake.updateImage(triples[0]!, { name: 'renamed after the move' });
      // Queued; whether the worker's listener has come back yet when sync counts listeners is a race on a busy
      // machine: the stored rename below is what proves the worker reconnected.
      const queued = await runCli(['sync'], own.settings);
      expect([queued.code, queued.stderr]).toEqual([0, expect.stringContaining('queued')]);
      const password = readFileSync(join(own.dir, 'pgdata', 'gcore-image-sync-password'), 'utf8');
      const sql = postgres({ host: '127.0.0.1', port: after.port, user: 'postgres', password, database: 'postgres', max: 1 });
      try {
        await waitFor(
          'the worker to store the rename',
          async () =>
            (
              await sql`SELECT 1 FROM image_changes WHERE image_id = ${triples[0]!.imageId} AND field = 'name' AND new_value = ${sql.json('renamed after the move')}`
            ).length === 1,
          60_000,
        );
      } finally {
        await sql.end({ timeout: 5 });
      }
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await worker.stop()).code).toBe(0);
      await waitFor('the server to stop', () => serversOnHome(own.dir).length === 0);
    } finally {
      await worker.stop();
      await other.close();
      await rm(own.dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('a home deleted under a running worker stops it, saying so, and leaves no server behind', async () => {
    const own = await ownHome();
    const worker = startCli(['start'], own.settings);
    try {
      await waitFor('the first run', () => worker.stdout().includes('"msg":"run finished"'), 60_000);
      const server = postmaster(own.dir);
      await rm(own.dir, { recursive: true, force: true, maxRetries: 5 });
      const { code, stderr } = await worker.exited;
      expect(code).toBe(3);
      // Stopped by the worker, or, where a session of it failed on the missing files first, by PostgreSQL itself.
      const gone =
        `the embedded PostgreSQL's data directory ${join(own.dir, 'pgdata')} is gone \\(deleted or moved while this process used it\\): ` +
        `(stopped its server \\(pid ${server.pid}\\)|its server had stopped)`;
      expect(stderr).toMatch(
        new RegExp(
          `^gcore-image-sync: ${gone}\\ngcore-image-sync start: Postgres at the embedded server in ${join(own.dir, 'pgdata')} did not answer: ${gone}\\n$`,
          'm',
        ),
      );
      expect(serversOnHome(own.dir)).toEqual([]);
    } finally {
      await worker.stop();
      await rm(own.dir, { recursive: true, force: true });
    }
  }, 180_000);
});
