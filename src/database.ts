// Where the data lives: the server DATABASE_URL names, or, when it is unset,
// the embedded PostgreSQL under GCORE_IMAGE_SYNC_HOME. The one place that
// decides; every command opens its database through it.
import type { Config } from './config.js';
import { openEmbeddedPostgres } from './embedded-postgres.js';

export interface Database {
  url: string;
  /** Set for the embedded server: its data directory, for people to find it. */
  embeddedDataDir?: string;
  /** Lets go of the embedded server (stopped if no other process uses it); nothing for a named one. */
  close(): Promise<void>;
}

export async function openDatabase(config: Config): Promise<Database> {
  if (config.databaseUrl !== undefined) return { url: config.databaseUrl, close: async () => {} };
  const embedded = await openEmbeddedPostgres(config.home);
  return { url: embedded.url, embeddedDataDir: embedded.dataDir, close: () => embedded.close() };
}
