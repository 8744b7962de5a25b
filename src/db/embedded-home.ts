// The home of the embedded server: its directories, the lock its processes
// take turns under, the registrations of the processes that use it, and the
// checks that refuse a home that is not this user's, holds no database, or
// was deleted under processes still using it.
import { lstat, mkdir, readFile, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { alive } from './embedded-cluster.js';
import { blockingDirectory, makeDirectories, SERVER_USER, type ServerUser } from './embedded-install.js';
import { ConfigError, ServiceUnavailableError } from '../errors.js';
import { HOME_VARIABLE, ROOT_HOME } from '../config/home.js';
import { readStat } from '../ops/proc-stat.js';
import { POLL } from '../work/retry-policy.js';

/** The processes registered as using the server, still alive. */
export async function liveUsers(usersDir: string): Promise<number[]> {
  const names = await readdir(usersDir).catch(() => [] as string[]);
  return names.map(Number).filter((pid) => Number.isInteger(pid) && pid !== process.pid && alive(pid));
}

/**
 * Runs `body` holding the home's lock: finding or starting the server and
 * registering, or unregistering and stopping it, happen one process at a
 * time, so no process is handed a server another is stopping. A lock left by
 * a killed process (its pid gone) is taken over.
 */
export async function withLock<T>(root: string, body: () => Promise<T>): Promise<T> {
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
      if (Date.now() - started > POLL.embeddedLockMs) {
        throw new ServiceUnavailableError(
          'Postgres',
          `the embedded server in ${root}`,
          new Error(`process ${holder} has held ${lock} too long`),
        );
      }
      await new Promise((resume) => setTimeout(resume, POLL.embeddedMs));
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
export async function prepareHome(root: string, usersDir: string, user: ServerUser | undefined, why: string): Promise<void> {
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

/**
 * Whether the home holds a database. A home this user may not look into (another user's) is said
 * as such, never taken for an empty one: a read-only command would report "no database", and one
 * that may create would fail on its first file.
 */
export async function holdsData(root: string, dataDir: string): Promise<boolean> {
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

/** Where a read-only command found no database: it made nothing. */
export function noDatabase(root: string, why: string): ConfigError {
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
export async function processesOnDeletedHome(root: string): Promise<number[]> {
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
export function stillInUse(root: string, pids: number[]): ServiceUnavailableError {
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
export async function sweepLeftovers(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    const pid = /^(?:pgdata\.new-|\.initdb-)(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) await rm(join(root, name), { recursive: true, force: true });
  }
}
