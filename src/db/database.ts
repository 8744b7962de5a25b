// Where the data lives: the server DATABASE_URL names, or, when it is unset,
// the embedded PostgreSQL under the home (home.ts). The one place that
// decides; every command opens its database through it.
import { dirname } from 'node:path';
import { redactUrl, type Config } from '../config/config.js';
import { openEmbeddedPostgres, type ServerSocket } from './embedded-postgres.js';
import { ServiceUnavailableError } from '../errors.js';
import { HOME_VARIABLE, holdsDatabase, type Home } from '../config/home.js';
import { undoIfStopped } from '../ops/signals.js';

/**
 * What a command does with the database: `read` (status, changes, db,
 * snapshot) needs one to exist and never makes one; `create` (start, worker,
 * migrate, sync, schedule) makes it where there is none, and says so;
 * `throwaway` (the demo's own, made to be removed) makes it without a word.
 */
export type Access = 'read' | 'create' | 'throwaway';

export interface Database {
  /** Where it was when opened, with its password: for a one-off connection or a person's psql, never for a log line. */
  url: string;
  /**
   * Set for the embedded server, which may come back on another port: a pool
   * whose connections are opened through it follows the server there.
   */
  socket?: () => ServerSocket;
  /** Set for the embedded server: its data directory, for people to find it. */
  embeddedDataDir?: string;
  /**
   * Why the data is gone for good (its files deleted), or undefined. Never
   * for a named server: an outage there is waited out, however long, so a
   * fleet does not restart itself over one.
   */
  lost(): string | undefined;
  /** Calls `listener` once if the data is found gone for good (its server stopped by then). */
  onLost(listener: (reason: string) => void): void;
  /** Lets go of the embedded server (stopped if no other process uses it); nothing for a named one. */
  close(): Promise<void>;
}

/** Where the data is, for the first lines a person reads: the named server (password hidden), or the home and why it is that one. */
export function describeData(config: Pick<Config, 'databaseUrl' | 'home'>): string {
  if (config.databaseUrl !== undefined) return `data: ${redactUrl(config.databaseUrl)} (DATABASE_URL)`;
  return `data: ${config.home.dir} (${config.home.why}; the embedded PostgreSQL, as DATABASE_URL is not set)`;
}

/**
 * A home found in the current directory (home.ts's legacy rule) is used, and
 * said, with how to move it to the default; where the default holds a
 * database already, how to keep using this one instead.
 */
export function legacyNotice(home: Home, defaultHasDatabase: boolean): string | undefined {
  if (home.moveTo === undefined) return undefined;
  const keep = `or keep it where it is: export ${HOME_VARIABLE}='${home.dir}'`;
  if (defaultHasDatabase) {
    return (
      `using the database in ${home.dir}, found in the current directory (homes no longer follow it); the default, ` +
      `${home.moveTo}, holds another database, so this one cannot move there: to go on using this one, export ${HOME_VARIABLE}='${home.dir}'`
    );
  }
  return (
    `using the database in ${home.dir}, found in the current directory (homes no longer follow it; the default is ${home.moveTo}): ` +
    `to move it there, stop every gcore-image-sync process using it, then run: mkdir -p '${dirname(home.moveTo)}' && mv '${home.dir}' '${home.moveTo}'; ${keep}`
  );
}

export async function openDatabase(config: Config, access: Access = 'create'): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return { url: config.databaseUrl, lost: () => undefined, onLost: () => {}, close: async () => {} };
  }
  const notice = legacyNotice(config.home, config.home.moveTo !== undefined && holdsDatabase(config.home.moveTo));
  if (notice !== undefined) process.stderr.write(`gcore-image-sync: ${notice}\n`);
  const embedded = await openEmbeddedPostgres(config.home.dir, {
    create: access !== 'read',
    quiet: access === 'throwaway',
    why: config.home.why,
  });
  // Once, whoever asks first: the command when it ends, or a stop signal (undoIfStopped) that
  // ends it early, so a server it started is not left running behind it; a signal during the
  // command's own close waits for that close. The demo's teardown closes its throwaway database
  // itself, after the worker that uses it.
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= embedded.close().finally(() => forget()));
  const forget = access === 'throwaway' ? () => {} : undoIfStopped(close);
  return {
    url: embedded.url,
    socket: () => embedded.socket(),
    embeddedDataDir: embedded.dataDir,
    lost: () => embedded.lost(),
    onLost: (listener) => embedded.onLost(listener),
    close,
  };
}

/**
 * For a command that runs until stopped: rejects once the data is found gone
 * for good, with the error that ends the command (exit 3, saying why), so a
 * supervisor starts the process afresh on whatever the home holds then.
 */
export function whenLost(database: Pick<Database, 'onLost'> & { embeddedDataDir?: string }): Promise<never> {
  return new Promise((_, fail) =>
    database.onLost((reason) =>
      fail(new ServiceUnavailableError('Postgres', `the embedded server in ${database.embeddedDataDir}`, new Error(reason))),
    ),
  );
}
