// Opens what a command needs, in the order that fails fastest, and closes it.
import type { QueueBackend } from './backend.js';
import type { Config } from '../config/config.js';
import { openDatabase, type Access, type Database } from '../db/database.js';
import { connectPostgres, type Sql } from '../db/db.js';
import { runMigrations } from '../db/migrate.js';
import type { Queues } from './queue.js';
import { deploymentId } from '../sql/deploymentId.js';

export interface Services {
  sql: Sql;
  /** Set when the data is in the embedded server: its data directory. */
  embeddedDataDir: string | undefined;
  /** Where the queues, the request timeline and the cross-process records live (Redis or this database). */
  backend: QueueBackend;
  queues: Queues;
  /** This database's identity, which every job it queues carries. */
  deployment: string;
  /** Why the data is gone for good, or undefined (Database.lost). */
  lost: Database['lost'];
  onLost: Database['onLost'];
  close(): Promise<void>;
}

export interface Store extends Pick<Database, 'url' | 'socket' | 'lost' | 'onLost'> {
  sql: Sql;
  /** Set when it is the embedded server: its data directory. */
  embeddedDataDir: string | undefined;
  close(): Promise<void>;
}

/** The database (named, or embedded: database.ts), migrated and connected; a database that does not answer fails at once. */
export async function openStore(config: Config, max: number, access: Access = 'create'): Promise<Store> {
  const database = await openDatabase(config, access);
  try {
    // The pool connects while migrations are checked (a round trip or two each, every command's
    // start-up); it is used only once they are applied.
    const connecting = connectPostgres(database.url, { max, socket: database.socket });
    const migrated = runMigrations(database.url);
    const [sql] = await Promise.all([connecting, migrated]).catch(async (error: unknown) => {
      await connecting.then((pool) => pool.end({ timeout: 0 })).catch(() => {});
      throw error;
    });
    return {
      sql,
      url: database.url,
      socket: database.socket,
      lost: database.lost,
      onLost: database.onLost,
      embeddedDataDir: database.embeddedDataDir,
      async close() {
        await sql.end({ timeout: 5 });
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * Opens the queues of deployment `deployment` where the configuration puts
 * them: Redis when REDIS_URL or REDIS_CLUSTER_NODES is set, otherwise the deployment's own Postgres
 * database. The one place that decides; the rest of the code asks the
 * backend and never learns which one runs.
 */
async function openBackend(config: Config, store: Store, deployment: string): Promise<QueueBackend> {
  // Only the chosen store's client is loaded: start-up time is every command's cost.
  const redis = config.redisCluster ?? config.redisUrl;
  if (redis !== undefined) return (await import('./redis-backend.js')).openRedisBackend(redis, config.queuePrefix, deployment);
  return (await import('./postgres-backend.js')).openPostgresBackend(store, deployment);
}

/** Connects to Postgres (migrated) and the queue store; a service that does not answer fails at once. */
export async function openServices(config: Config, access: Access = 'create'): Promise<Services> {
  const store = await openStore(config, config.concurrency + 4, access);
  const { sql } = store;
  let backend: QueueBackend;
  let deployment: string;
  try {
    deployment = await deploymentId(sql);
    backend = await openBackend(config, store, deployment);
  } catch (error) {
    await store.close();
    throw error;
  }
  return {
    sql,
    embeddedDataDir: store.embeddedDataDir,
    backend,
    queues: backend.queues,
    deployment,
    lost: store.lost,
    onLost: store.onLost,
    async close() {
      await backend.close();
      await store.close();
    },
  };
}
