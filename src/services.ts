// Opens what a command needs, in the order that fails fastest, and closes it.
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { connectPostgres, type Sql } from './db.js';
import { runMigrations } from './migrate.js';
import { connectRedis, openQueues, type Queues } from './queue.js';
import { deploymentId } from './sql/deploymentId.js';

export interface Services {
  sql: Sql;
  redis: Redis;
  queues: Queues;
  /** This database's identity, which every job it queues carries. */
  deployment: string;
  close(): Promise<void>;
}

/** Connects to Postgres (migrated) and Redis; a service that does not answer fails at once. */
export async function openServices(config: Config): Promise<Services> {
  await runMigrations(config.databaseUrl);
  const sql = await connectPostgres(config.databaseUrl, { max: config.concurrency + 4 });
  let redis: Redis;
  let deployment: string;
  try {
    deployment = await deploymentId(sql);
    redis = await connectRedis(config.redisUrl);
  } catch (error) {
    await sql.end({ timeout: 5 });
    throw error;
  }
  const queues = openQueues(redis, config.queuePrefix, deployment);
  return {
    sql,
    redis,
    queues,
    deployment,
    async close() {
      await queues.close();
      redis.disconnect();
      await sql.end({ timeout: 5 });
    },
  };
}
