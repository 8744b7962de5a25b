// The embedded PostgreSQL's own edges, opened in this process as a command
// opens it: a postmaster.pid left behind, a port taken, a server that will not
// start or will not stop. Its own home; no other service needed.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chown, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectPostgres } from '../src/db/db.js';
import { openEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded-postgres.js';
import { dataLoss } from '../src/db/embedded-watchdog.js';
import { liveness } from '../src/ops/http-server.js';
import { throwawayHome } from './support/home.js';

let home: string;
let dataDir: string;

beforeAll(async () => {
  home = await throwawayHome('gis-embedded-');
  dataDir = join(home, 'pgdata');
  // Made once, stopped: each test starts from a server that is not running.
  await (await openEmbeddedPostgres(home)).close();
}, 60_000);

afterAll(async () => {
  // A test that failed with the server up must not leave it running.
  await (await openEmbeddedPostgres(home).catch(() => undefined))?.close();
  await rm(home, { recursive: true, force: true });
});

/** The user the server runs as, as the module picks it: `postgres` when this process is root, else this one. */
function serverUser(): { uid: number; gid: number } {
  if (process.getuid!() !== 0) return { uid: process.getuid!(), gid: process.getgid!() };
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function query<T>(db: EmbeddedDatabase, run: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    return await run(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const postmasterPid = () => join(dataDir, 'postmaster.pid');
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // Killed, but not reaped yet (a container's init may never): gone all the same.
  return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
};

describe('dataLoss: whether the data is gone for good', () => {
  it('is gone when the data directory holds no cluster, or another one than the process opened', () => {
    expect(dataLoss('/h/pgdata', 'a1', undefined)).toBe(
      "the embedded PostgreSQL's data directory /h/pgdata is gone (deleted or moved while this process used it)",
    );
    expect(dataLoss('/h/pgdata', 'a1', 'b2')).toBe(
      "the embedded PostgreSQL's data directory /h/pgdata holds another cluster than the one this process opened (its data was deleted and made anew)",
    );
  });

  it('is not gone while the cluster opened is there, whether its server runs or not', () => {
    expect(dataLoss('/h/pgdata', 'a1', 'a1')).toBeUndefined();
  });
});

describe('liveness: /healthz', () => {
  it('is 200 unless the data is gone for good, then 503 saying why', () => {
    expect(liveness(undefined)).toEqual({ status: 200, body: 'ok\n' });
    expect(liveness('the data directory /h/pgdata is gone')).toEqual({ status: 503, body: 'the data directory /h/pgdata is gone\n' });
  });
});

describe('the embedded PostgreSQL', () => {
  it('takes a postmaster.pid whose pid is now an unrelated process for no server, and starts one', async () => {
    const running = await openEmbeddedPostgres(home);
    const file = readFileSync(postmasterPid(), 'utf8');
    await running.close();
    // The file a server killed outright leaves, its pid since taken by another process of the server's user:
    // PostgreSQL itself would take that process for a server and refuse to start.
    const user = serverUser();
    const other = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'], ...user });
    try {
      await writeFile(postmasterPid(), [String(other.pid), ...file.split('\n').slice(1)].join('\n'));
      await chown(postmasterPid(), user.uid, user.gid);
      const db = await openEmbeddedPostgres(home);
      try {
        expect(await query(db, (sql) => sql`SELECT current_setting('data_directory') AS dir`)).toEqual([{ dir: dataDir }]);
        expect(Number(readFileSync(postmasterPid(), 'utf8').split('\n')[0])).not.toBe(other.pid);
        expect(isAlive(other.pid!)).toBe(true);
      } finally {
        await db.close();
      }
    } finally {
      other.kill();
    }
  });

  it('starts on another port when its last one is taken by the time the server binds it', async () => {
    const squatter = createServer();
    await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
    const taken = (squatter.address() as AddressInfo).port;
    try {
      await writeFile(join(dataDir, 'gcore-image-sync-port'), String(taken));
      const logBefore = readFileSync(join(dataDir, 'server.log'), 'utf8').length;
      const db = await openEmbeddedPostgres(home);
      try {
        const port = Number(new URL(db.url).port);
        expect(port).not.toBe(taken);
        expect(readFileSync(join(dataDir, 'gcore-image-sync-port'), 'utf8')).toBe(String(port));
        expect(await query(db, (sql) => sql`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
        // It did try the taken port: the server said so.
        expect(readFileSync(join(dataDir, 'server.log'), 'utf8').slice(logBefore)).toContain(
          `HINT:  Is another postmaster already running on port ${taken}?`,
        );
      } finally {
        await db.close();
      }
    } finally {
      await new Promise((done) => squatter.close(done));
    }
  });

  it('says why it did not start with the end of what the server logged then, and starts once that is fixed', async () => {
    const conf = join(dataDir, 'postgresql.auto.conf');
    const original = readFileSync(conf, 'utf8');
    await appendFile(conf, "max_connections = 'many'\n");
    const password = readFileSync(join(dataDir, 'gcore-image-sync-password'), 'utf8');
    const stamp = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\]`;
    const failure = await openEmbeddedPostgres(home).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(failure).toMatch(
      new RegExp(
        `^Postgres at the embedded server in ${dataDir} did not answer: it did not start: ` +
          String.raw`waiting for server to start\.* stopped waiting / pg_ctl: could not start server / Examine the log output\.; ` +
          `the end of ${dataDir}/server.log:\n` +
          `    ${stamp} LOG:  invalid value for parameter "max_connections": "many"\n` +
          `    ${stamp} FATAL:  configuration file "${conf}" contains errors$`,
      ),
    );
    expect(failure).not.toContain(password);
    expect(await readdir(join(home, 'users'))).toEqual([]);
    await writeFile(conf, original);
    const db = await openEmbeddedPostgres(home);
    await db.close();
  });

  it('says a fast stop that failed and stops the server at once instead, losing nothing committed', async () => {
    const db = await openEmbeddedPostgres(home);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    await sql`CREATE TABLE kept (n int)`;
    await sql`INSERT INTO kept VALUES (1)`;
    // A session that does not end: a fast shutdown waits for it.
    const { pid } = (await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`)[0]!;
    process.kill(pid, 'SIGSTOP');
    const said: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => said.push(String(chunk)) > 0);
    try {
      await db.close();
    } finally {
      stderr.mockRestore();
      await sql.end({ timeout: 0 });
    }
    expect(said).toEqual([
      expect.stringMatching(
        new RegExp(
          `^gcore-image-sync: the embedded PostgreSQL in ${dataDir} did not stop ` +
            String.raw`\(waiting for server to shut down\.* failed / pg_ctl: server does not shut down\); ` +
            'stopped it at once instead: its next start recovers from its write-ahead log\n$',
        ),
      ),
    ]);
    expect([existsSync(postmasterPid()), isAlive(pid)]).toEqual([false, false]);
    const again = await openEmbeddedPostgres(home);
    try {
      expect(await query(again, (sql) => sql`SELECT n FROM kept`)).toEqual([{ n: 1 }]);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('says once that a server which died cannot be started again, and starts it once it can', async () => {
    const db = await openEmbeddedPostgres(home);
    const conf = join(dataDir, 'postgresql.auto.conf');
    const original = readFileSync(conf, 'utf8');
    const said: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => said.push(String(chunk)) > 0);
    try {
      // Died, and its settings now keep it from starting: the watchdog tries at every check.
      await appendFile(conf, "max_connections = 'many'\n");
      process.kill(Number(readFileSync(postmasterPid(), 'utf8').split('\n')[0]), 'SIGKILL');
      const failed = `gcore-image-sync: the embedded PostgreSQL in ${dataDir} has stopped and could not be started again (trying every 5 s): `;
      await vi.waitFor(() => expect(said.filter((line) => line.startsWith(failed))).toHaveLength(1), { timeout: 20_000, interval: 200 });
      await writeFile(conf, original);
      const restarted = `gcore-image-sync: the embedded PostgreSQL in ${dataDir} had stopped; started it again\n`;
      await vi.waitFor(() => expect(said).toContain(restarted), { timeout: 20_000, interval: 200 });
      // Said once however many checks failed in between, and the server answers again.
      expect(said.filter((line) => line.startsWith(failed))).toHaveLength(1);
      expect(await query(db, (sql) => sql`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    } finally {
      stderr.mockRestore();
      await writeFile(conf, original);
      await db.close();
    }
  }, 60_000);

  it('stops its server and says so once, when its home is deleted under it; nothing is left running', async () => {
    const other = await throwawayHome('gis-embedded-lost-');
    const db = await openEmbeddedPostgres(other);
    const sql = await connectPostgres(db.url, { max: 1, socket: () => db.socket() });
    const said: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => said.push(String(chunk)) > 0);
    try {
      expect(await sql`SELECT current_setting('data_directory') AS dir`).toEqual([{ dir: join(other, 'pgdata') }]);
      const [server] = readFileSync(join(other, 'pgdata', 'postmaster.pid'), 'utf8')
        .split('\n')
        .map(Number);
      const reasons: string[] = [];
      db.onLost((reason) => reasons.push(reason));
      expect(db.lost()).toBeUndefined();
      await rm(other, { recursive: true, force: true, maxRetries: 5 });
      await vi.waitFor(() => expect(reasons).toHaveLength(1), { timeout: 30_000, interval: 100 });
      // Stopped by the process, or, where a session of it failed on the missing files first, by PostgreSQL itself.
      const [reason] = reasons;
      expect(reason).toMatch(
        new RegExp(
          `^the embedded PostgreSQL's data directory ${join(other, 'pgdata')} is gone \\(deleted or moved while this process used it\\): ` +
            `(stopped its server \\(pid ${server}\\)|its server had stopped)$`,
        ),
      );
      expect([reasons, db.lost(), isAlive(server!)]).toEqual([[reason], reason, false]);
      expect(said).toEqual([`gcore-image-sync: ${reason}\n`]);
      // Told at once to a listener that comes late.
      const late: string[] = [];
      db.onLost((lost) => late.push(lost));
      expect(late).toEqual([reason]);
      await expect(sql`SELECT 1`).rejects.toThrow();
      await db.close();
    } finally {
      stderr.mockRestore();
      await sql.end({ timeout: 0 });
      await rm(other, { recursive: true, force: true });
    }
  }, 120_000);

  it('leaves the server of a home moved away under it running there, and says so', async () => {
    const other = await throwawayHome('gis-embedded-moved-');
    const moved = `${other}-moved`;
    const db = await openEmbeddedPostgres(other);
    const said: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => said.push(String(chunk)) > 0);
    try {
      const [server] = readFileSync(join(other, 'pgdata', 'postmaster.pid'), 'utf8')
        .split('\n')
        .map(Number);
      await rename(other, moved);
      await vi.waitFor(() => expect(db.lost()).toBeDefined(), { timeout: 30_000, interval: 100 });
      expect(db.lost()).toBe(
        `the embedded PostgreSQL's data directory ${join(other, 'pgdata')} is gone (deleted or moved while this process used it): ` +
          `its server (pid ${server}) runs on in ${join(moved, 'pgdata')}, left as it is`,
      );
      expect(isAlive(server!)).toBe(true);
      await db.close();
      // A process opening the moved home uses that same server (started on the old path, which it still names)
      // rather than starting a second one, and stops it as the last one out.
      const there = await openEmbeddedPostgres(moved);
      expect(await query(there, (sql) => sql`SELECT current_setting('data_directory') AS dir`)).toEqual([{ dir: join(other, 'pgdata') }]);
      await there.close();
      expect(isAlive(server!)).toBe(false);
    } finally {
      stderr.mockRestore();
      await rm(other, { recursive: true, force: true });
      await rm(moved, { recursive: true, force: true });
    }
  }, 120_000);
});
