// Per-file isolation: each test file gets its own database (migrated) and its
// own BullMQ key prefix in the shared Redis, removed again afterwards.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { runMigrations } from '../../src/migrate.js';

export interface TestEnv {
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  /** Environment for a child process or loadConfig, pointing at this env. */
  env: Record<string, string>;
  config(overrides?: Record<string, string>): Config;
  /** Redis keys under this env's prefix. */
  redisKeys(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function createTestEnv(options: { migrate?: boolean } = {}): Promise<TestEnv> {
  const suffix = `${inject('runId')}_${randomBytes(3).toString('hex')}`;
  const adminUrl = inject('databaseUrl');
  const redisUrl = inject('redisUrl');
  const name = `gis_test_${suffix}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  if (options.migrate !== false) await runMigrations(databaseUrl);
  const queuePrefix = `gis-test-${suffix}`;
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: queuePrefix,
    GCORE_API_KEY: 'test-key-$ecret',
    LOG_LEVEL: 'info',
    SYNC_RATE_LIMIT_PER_SECOND: '0',
  };
  const redis = new Redis(redisUrl, { lazyConnect: true });
  const redisKeys = async () => {
    if (redis.status === 'wait') await redis.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${queuePrefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys;
  };
  return {
    databaseUrl,
    redisUrl,
    queuePrefix,
    env,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    redisKeys,
    async cleanup() {
      const keys = await redisKeys();
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
