// Where the data lives: the server DATABASE_URL names, or, when it is unset,
// the embedded PostgreSQL under GCORE_IMAGE_SYNC_HOME. The one place that
// decides; every command opens its database through it.
import type { Config } from './config.js';
import { openEmbeddedPostgres, type ServerSocket } from './embedded-postgres.js';
import { ServiceUnavailableError } from './errors.js';

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

export async function openDatabase(config: Config): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return { url: config.databaseUrl, lost: () => undefined, onLost: () => {}, close: async () => {} };
  }
  const embedded = await openEmbeddedPostgres(config.home);
  return {
    url: embedded.url,
    socket: () => embedded.socket(),
    embeddedDataDir: embedded.dataDir,
    lost: () => embedded.lost(),
    onLost: (listener) => embedded.onLost(listener),
    close: () => embedded.close(),
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
