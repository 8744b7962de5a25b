// A database made for one run and removed after it (the demo's): never the
// job's. Without DATABASE_URL, an embedded PostgreSQL in a fresh temporary
// home; with it, a new database of its own on that server, with a random name.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactUrl } from '../config/config.js';
import { connectPostgres, type Sql } from './db.js';
import { ConfigError } from '../errors.js';
import { createDatabase } from '../sql/createDatabase.js';
import { dropDatabase } from '../sql/dropDatabase.js';

export interface ThrowawayDatabase {
  /** The settings that point a configuration at it: GCORE_IMAGE_SYNC_HOME, or DATABASE_URL. */
  env: Record<string, string>;
  /** Where it is, for people. */
  where: string;
  /** Commands that look at it once kept, and the one that removes it then. */
  lookCommands: string[];
  /**
   * Lets go of it, removing it and everything in it unless `keep`; only once
   * whatever used it has closed (the embedded server stopped).
   */
  release(keep: boolean): Promise<void>;
}

/** Postgres' answer when the role may not create databases (SQLSTATE insufficient_privilege). */
const INSUFFICIENT_PRIVILEGE = '42501';

/** A name of its own: a prefix that says whose it is, and enough randomness that runs side by side never meet. */
function throwawayName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** `serverUrl` with its database replaced by `name`, the rest (user, password, host, options) kept. */
function urlOfDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh, empty home for the embedded server under the system's temporary
 * folder (the demo's, the tests'). As root the server runs as the user
 * `postgres`, who must pass through it to the data directory it owns: mkdtemp
 * makes it 0700, so this one directory, made here, gets o+x (no reading).
 */
export async function makeThrowawayHome(prefix: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) await chmod(home, 0o711);
  return home;
}

async function embedded(prefix: string): Promise<ThrowawayDatabase> {
  const home = await makeThrowawayHome(`${prefix}-`);
  return {
    env: { GCORE_IMAGE_SYNC_HOME: home },
    where: `an embedded PostgreSQL in ${home}`,
    lookCommands: [
      `GCORE_IMAGE_SYNC_HOME=${home} npx gcore-image-sync changes --since 1h`,
      `GCORE_IMAGE_SYNC_HOME=${home} npx gcore-image-sync db     # prints a URL for psql`,
      `rm -rf ${home}     # removes it`,
    ],
    release: async (keep) => {
      if (!keep) await rm(home, { recursive: true, force: true });
    },
  };
}

/** A new database on the server `serverUrl` names, or a configuration error when its role may not create one. */
async function onServer(serverUrl: string, prefix: string): Promise<ThrowawayDatabase> {
  const name = throwawayName(prefix.replaceAll('-', '_'));
  const admin: Sql = await connectPostgres(serverUrl, { max: 1 });
  try {
    await createDatabase(admin, name);
  } catch (error) {
    await admin.end({ timeout: 5 });
    if ((error as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw error;
    throw new ConfigError('DATABASE_URL', [
      `its role may not create databases (CREATEDB), and the demo makes one of its own there and drops it afterwards: ` +
        'use a role that may, or unset DATABASE_URL for an embedded PostgreSQL of its own',
    ]);
  }
  const url = urlOfDatabase(serverUrl, name);
  const shown = redactUrl(url);
  return {
    env: { DATABASE_URL: url },
    where: `the database ${name} on the server DATABASE_URL names`,
    lookCommands: [
      `DATABASE_URL=${shown} npx gcore-image-sync changes --since 1h${shown === url ? '' : '     # with your password for ***'}`,
      `psql ${shown}`,
      `psql ${redactUrl(serverUrl)} -c 'DROP DATABASE ${name}'     # removes it`,
    ],
    async release(keep) {
      try {
        if (!keep) await dropDatabase(admin, name);
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
  };
}

/** A database of its own for one run, named by `prefix`: on the server `serverUrl` names, or embedded when it is undefined. */
export function createThrowawayDatabase(serverUrl: string | undefined, prefix: string): Promise<ThrowawayDatabase> {
  return serverUrl === undefined ? embedded(prefix) : onServer(serverUrl, prefix);
}
