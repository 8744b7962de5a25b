// The embedded server and its data directory: made (initdb), found running
// (postmaster.pid, checked against /proc or a probe), started on its last
// port or another, stopped, and told apart from a cluster made since.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { basename, join } from 'node:path';
import { SERVER_USER, type Binaries, type ServerUser } from './embedded-install.js';
import { ServiceUnavailableError } from '../errors.js';
import { readStat } from '../ops/proc-stat.js';

/** The only address the server listens on: no other machine reaches it. */
export const LOCALHOST = '127.0.0.1';

/** How long pg_ctl waits for a start before it gives up. */
const START_TIMEOUT_SECONDS = 60;

function run(program: string, args: string[], user: ServerUser | undefined): Promise<void> {
  return new Promise((done, fail) => {
    // A minimal environment: the server outlives this process, runs as another user, and must not carry its secrets.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
    // Every path given is absolute; `/` spares the server's user a working directory it may not enter.
    const child = spawn(program, args, { ...user, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done() : fail(new Error(output.trim().split('\n').slice(-3).join(' / ')))));
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's (the server's, when this process is not root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process nobody has reaped yet (a container's init may never) still answers kill 0.
  return readStat(pid)?.state !== 'Z';
}

export interface Postmaster {
  pid: number;
  port: number;
}

/** The pid and port in the file PostgreSQL keeps in its data directory while it runs, and leaves behind when killed. */
async function readPostmasterPid(dataDir: string): Promise<Postmaster | undefined> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && Number.isInteger(port) && port > 0 ? { pid, port } : undefined;
}

/**
 * Whether the process `pid` is a PostgreSQL server on `dataDir`, as /proc
 * tells: its program is a `postgres` and its working directory, where a
 * server stays from its start, is the data directory. Not the program's full
 * path: a server outlives a move or reinstall of node_modules, and taking it
 * for dead would start a second one on its data. Undefined where /proc cannot
 * tell: no /proc (macOS), or another user's process.
 */
async function isServerOn(dataDir: string, pid: number): Promise<boolean | undefined> {
  try {
    const [program, cwd, dir] = await Promise.all([readlink(`/proc/${pid}/exe`), readlink(`/proc/${pid}/cwd`), realpath(dataDir)]);
    return basename(program.replace(/ \(deleted\)$/, '')) === 'postgres' && cwd === dir;
  } catch {
    return undefined;
  }
}

/** PostgreSQL's SSLRequest: any PostgreSQL server answers it with one byte, S or N, whatever its authentication. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const PROBE_TIMEOUT_MS = 2000;

/** Whether a PostgreSQL server answers on `port`. */
function answersAsPostgres(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, LOCALHOST, () => socket.write(SSL_REQUEST));
    const finish = (answer: boolean) => {
      socket.destroy();
      done(answer);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('data', (data) => finish(data.length === 1 && (data[0] === 0x53 || data[0] === 0x4e)));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

/**
 * The server running on `dataDir`. postmaster.pid alone does not say: a
 * server killed outright leaves it behind, and its pid may since be another
 * process's. Where /proc cannot tell whether the process is the server, a
 * PostgreSQL answering on the file's port is taken for it.
 */
export async function runningServer(dataDir: string): Promise<Postmaster | undefined> {
  const named = await readPostmasterPid(dataDir);
  if (named === undefined || !alive(named.pid)) return undefined;
  const isServer = (await isServerOn(dataDir, named.pid)) ?? (await answersAsPostgres(named.port));
  return isServer ? named : undefined;
}

/**
 * A postmaster.pid whose pid is now an unrelated process's is removed:
 * PostgreSQL would find that process alive and refuse to start. Only when
 * /proc tells it is not the server; elsewhere PostgreSQL's own check decides.
 */
async function removeStalePostmasterPid(dataDir: string): Promise<void> {
  const named = await readPostmasterPid(dataDir);
  if (named !== undefined && alive(named.pid) && (await isServerOn(dataDir, named.pid)) === false) {
    await rm(join(dataDir, 'postmaster.pid'), { force: true });
  }
}

/** Whether this process can listen on `port` now, that is whether nothing else does. */
async function canListen(port: number): Promise<boolean> {
  const server = createServer();
  const listening = await new Promise<boolean>((done) => {
    server.once('error', () => done(false));
    server.listen(port, LOCALHOST, () => done(true));
  });
  if (listening) await new Promise((done) => server.close(done));
  return listening;
}

/** A port nothing listens on now, as the system picks it; another program may take it before the server does. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, LOCALHOST, done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** The port the server last listened on, kept beside the data: a server started again takes it again when it can. */
const PORT_FILE = 'gcore-image-sync-port';

/** Kept in the data directory, so that it goes wherever the data goes and is made with it. */
export const PASSWORD_FILE = 'gcore-image-sync-password';

/**
 * Makes the data directory: initdb into a directory of this process's own,
 * then a rename into place, so that two processes initialising at once leave
 * one whole directory (the loser's rename fails and it uses the winner's).
 */
export async function initialise(bin: Binaries, home: string, dataDir: string, user: ServerUser | undefined): Promise<void> {
  const password = randomBytes(24).toString('hex');
  const fresh = `${dataDir}.new-${process.pid}`;
  // The password file initdb reads must be readable by the server's user; the kept copy only by this one.
  const pwfile = join(home, `.initdb-${process.pid}`);
  await mkdir(fresh, { recursive: true, mode: 0o700 });
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (user) {
    await chown(fresh, user.uid, user.gid);
    await chown(pwfile, user.uid, user.gid);
  }
  try {
    await run(bin.initdb, ['-D', fresh, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C'], user);
    await writeFile(join(fresh, PASSWORD_FILE), password, { mode: 0o600 });
    await rename(fresh, dataDir).catch(async (error: NodeJS.ErrnoException) => {
      // Another process initialised it first: its directory is the one.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      await rm(fresh, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(fresh, { recursive: true, force: true });
    throw new ServiceUnavailableError(
      'Postgres',
      `the embedded server in ${dataDir}`,
      new Error(
        `initdb failed: ${(error as Error).message}` +
          (user ? `; as root the server runs as the user ${SERVER_USER}, who must be able to reach ${dataDir}` : ''),
      ),
    );
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** How many ports a start tries: another program can take a port between its choice and the server's binding it. */
const START_ATTEMPTS = 4;

/** How many of the server log's last lines a failed start shows. */
const LOG_TAIL_LINES = 8;

/** The size of `file`, 0 when it does not exist yet. */
async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    ({ size }) => size,
    () => 0,
  );
}

/**
 * The last lines of what the server wrote to its log from `offset` on: only
 * this start's, so never a line from when it ran before (a statement that
 * failed, which may hold a password).
 */
async function logTail(file: string, offset: number): Promise<string[]> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return [];
  try {
    const length = Math.max(0, (await handle.stat()).size - offset);
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(length), 0, length, offset);
    return buffer.subarray(0, bytesRead).toString('utf8').trim().split('\n').filter(Boolean).slice(-LOG_TAIL_LINES);
  } finally {
    await handle.close();
  }
}

const MAX_CONNECTIONS = 300;

/** Runs pg_ctl start on `port`; a failure says pg_ctl's words and the end of what the server logged. */
async function pgCtlStart(bin: Binaries, dataDir: string, user: ServerUser | undefined, port: number): Promise<void> {
  const log = join(dataDir, 'server.log');
  const offset = await sizeOf(log);
  // Each process holds a pool of SYNC_CONCURRENCY + 4 connections, and with the queues on Postgres
  // a few more: 100, PostgreSQL's default, is reached by a handful of workers and commands at once.
  const options = `-p ${port} -c listen_addresses=${LOCALHOST} -c unix_socket_directories='' -c max_connections=${MAX_CONNECTIONS}`;
  try {
    await run(bin.pg_ctl, ['start', '-D', dataDir, '-w', '-t', String(START_TIMEOUT_SECONDS), '-l', log, '-o', options], user);
  } catch (error) {
    const tail = await logTail(log, offset);
    throw new Error(`${(error as Error).message}${tail.length > 0 ? `; the end of ${log}:\n    ${tail.join('\n    ')}` : ''}`);
  }
}

/**
 * Starts the server, unless another process started it meanwhile; returns its
 * pid and port. The port it last listened on first: a `db` user's psql keeps
 * the URL it was given. A port taken when the server came to bind it is given
 * up for another, a few times; the processes using the server follow it there
 * (EmbeddedDatabase.socket).
 */
export async function startServer(bin: Binaries, dataDir: string, user: ServerUser | undefined): Promise<Postmaster> {
  await removeStalePostmasterPid(dataDir);
  let port = Number(await readFile(join(dataDir, PORT_FILE), 'utf8').catch(() => '0')) || (await freePort());
  for (let attempt = 1; ; attempt++) {
    try {
      await pgCtlStart(bin, dataDir, user, port);
    } catch (error) {
      const other = await runningServer(dataDir);
      if (other) return other;
      if (attempt < START_ATTEMPTS && !(await canListen(port))) {
        port = await freePort();
        continue;
      }
      throw new ServiceUnavailableError(
        'Postgres',
        `the embedded server in ${dataDir}`,
        new Error(`it did not start: ${(error as Error).message}`),
      );
    }
    await writeFile(join(dataDir, PORT_FILE), String(port), { mode: 0o600 });
    // pg_ctl -w returns once the server is ready, which it has said in this file by then.
    const started = await readPostmasterPid(dataDir);
    if (started) return started;
    throw new ServiceUnavailableError('Postgres', `the embedded server in ${dataDir}`, new Error('it started, but left no postmaster.pid'));
  }
}

/** How long a fast stop (sessions ended, a checkpoint written) may take before the server is stopped at once instead. */
export const STOP_TIMEOUT_SECONDS = 10;

/** Said where a person reads this process's human lines (stderr), whatever its logger does. */
export function warn(line: string): void {
  process.stderr.write(`gcore-image-sync: ${line}\n`);
}

/**
 * Stops the server: a fast shutdown, or when that fails (a session that does
 * not end, a checkpoint that does not finish) an immediate one, which loses
 * nothing committed: the next start replays the write-ahead log. Both are
 * said. A server neither stops is left running; the next process finds it,
 * uses it and stops it in its turn.
 */
export async function stopServer(bin: Binaries, dataDir: string, user: ServerUser | undefined): Promise<void> {
  const stop = (mode: string) => run(bin.pg_ctl, ['stop', '-D', dataDir, '-m', mode, '-w', '-t', String(STOP_TIMEOUT_SECONDS)], user);
  try {
    await stop('fast');
  } catch (fast) {
    // Gone all the same (it died meanwhile, or finished as pg_ctl gave up): nothing failed that matters.
    if (!(await runningServer(dataDir))) return;
    try {
      await stop('immediate');
      warn(
        `the embedded PostgreSQL in ${dataDir} did not stop (${(fast as Error).message}); ` +
          'stopped it at once instead: its next start recovers from its write-ahead log',
      );
    } catch (immediate) {
      warn(
        `could not stop the embedded PostgreSQL in ${dataDir} (${(immediate as Error).message}); ` +
          'left as it is: the next gcore-image-sync process uses it while it runs, and starts it again once it has stopped',
      );
    }
  }
}

/**
 * The cluster in `dataDir`: the system identifier initdb writes at the start
 * of global/pg_control, a different one for every cluster ever made.
 * Undefined when there is no such file (the directory, or the home, is gone).
 */
export async function clusterId(dataDir: string): Promise<string | undefined> {
  const handle = await open(join(dataDir, 'global', 'pg_control'), 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (handle === undefined) return undefined;
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(8), 0, 8, 0);
    return buffer.subarray(0, bytesRead).toString('hex');
  } finally {
    await handle.close();
  }
}
