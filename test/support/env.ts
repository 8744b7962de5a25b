// Per-file isolation: each test file gets its own database (migrated) and its
// own queues: a key prefix in the shared Redis, or, when the tests run without
// Redis, a queue schema in that database. Removed again afterwards.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { connectPostgres, type Sql } from '../../src/db/db.js';
import { QUEUE_SCHEMA } from '../../src/queues/postgres-backend.js';

export interface TestEnv {
  databaseUrl: string;
  /** Undefined when the queues run on Postgres (the suite was given no Redis). */
  redisUrl: string | undefined;
  queuePrefix: string;
  /** The queue store the env's processes use. */
  queueStore: 'redis' | 'postgres';
  /** Where the queues are, as messages name it. */
  queuesWhere: string;
  /** Environment for a child process or loadConfig, pointing at this env. */
  env: Record<string, string>;
  config(overrides?: Record<string, string>): Config;
  /** What the queue store holds for this env: Redis keys, or the queue schema's jobs and schedulers. */
  queueEntries(): Promise<string[]>;
  /** The schedule queue's job scheduler ids. */
  schedulerIds(): Promise<string[]>;
  /** Everything the queue store holds for this env, as text (to look for secrets in). */
  queueContents(): Promise<string>;
  /** The store loses every queued job of this env, as a Redis without persistence does when restarted. */
  loseQueuedJobs(): Promise<void>;
  cleanup(): Promise<void>;
}

interface QueueStoreProbe {
  entries(): Promise<string[]>;
  schedulerIds(): Promise<string[]>;
  contents(): Promise<string>;
  loseJobs(): Promise<void>;
  close(): Promise<void>;
}

function redisProbe(redisUrl: string, queuePrefix: string): QueueStoreProbe {
  const redis = new Redis(redisUrl, { lazyConnect: true });
  const keys = async () => {
    if (redis.status === 'wait') await redis.connect();
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${queuePrefix}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found;
  };
  const value = async (key: string) => {
    const type = await redis.type(key);
    if (type === 'hash') return JSON.stringify(await redis.hgetall(key));
    if (type === 'string') return String(await redis.get(key));
    if (type === 'list') return JSON.stringify(await redis.lrange(key, 0, -1));
    if (type === 'zset') return JSON.stringify(await redis.zrange(key, 0, -1));
    if (type === 'set') return JSON.stringify(await redis.smembers(key));
    if (type === 'stream') return JSON.stringify(await redis.xrange(key, '-', '+'));
    return '';
  };
  return {
    entries: keys,
    schedulerIds: async () => (await keys(), redis.zrange(`${queuePrefix}:image-schedule:repeat`, 0, -1)),
    contents: async () => (await Promise.all((await keys()).map(async (key) => `${key} ${await value(key)}`))).join('\n'),
    async loseJobs() {
      const found = await keys();
      if (found.length > 0) await redis.del(...found);
    },
    async close() {
      const found = await keys();
      if (found.length > 0) await redis.del(...found);
      redis.disconnect();
    },
  };
}

function postgresProbe(databaseUrl: string): QueueStoreProbe {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const schema = QUEUE_SCHEMA;
  const exists = async () => (await sql`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`).length > 0;
  return {
    async entries() {
      if (!(await exists())) return [];
      const rows = await sql<{ entry: string }[]>`
        SELECT queue || ':job:' || id AS entry FROM ${sql(schema)}.job
        UNION ALL SELECT queue || ':scheduler:' || scheduler_id FROM ${sql(schema)}.scheduler ORDER BY 1`;
      return rows.map((row) => row.entry);
    },
    async schedulerIds() {
      const rows = await sql<{ id: string }[]>`
        SELECT scheduler_id AS id FROM ${sql(schema)}.scheduler WHERE queue = 'image-schedule' ORDER BY 1`;
      return rows.map((row) => row.id);
    },
    async contents() {
      const tables = ['job', 'scheduler', 'event', 'job_log'];
      const parts = await Promise.all(
        tables.map(async (table) => {
          const [row] = await sql<{ text: string | null }[]>`SELECT string_agg(t::text, '') AS text FROM ${sql(schema)}.${sql(table)} t`;
          return row?.text ?? '';
        }),
      );
      const [own] = await sql<{ text: string | null }[]>`
        SELECT (SELECT string_agg(t::text, '') FROM key_rejections t) || (SELECT string_agg(t::text, '') FROM api_rate_timeline t) AS text`;
      return [...parts, own?.text ?? ''].join('\n');
    },
    async loseJobs() {
      await sql`DELETE FROM ${sql(schema)}.job`;
    },
    close: () => sql.end(),
  };
}

export async function createTestEnv(options: { migrate?: boolean } = {}): Promise<TestEnv> {
  const suffix = `${inject('runId')}_${randomBytes(3).toString('hex')}`;
  const adminUrl = inject('databaseUrl');
  const redisUrl = inject('redisUrl') || undefined;
  const name = `gis_test_${suffix}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  // Migrated: a copy of the run's migrated template (test/support/services.ts), not migrations run again.
  await admin.unsafe(`CREATE DATABASE ${name}${options.migrate === false ? '' : ` TEMPLATE ${inject('templateDatabase')}`}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  if (options.migrate !== false) {
    // A copy comes with the template's identity; each test database is a deployment of its own (src/sql/deploymentId.ts).
    const copy = postgres(databaseUrl, { max: 1, onnotice: () => {} });
    await copy`UPDATE deployment SET id = gen_random_uuid(), created_at = now()`;
    await copy.end();
  }
  const queuePrefix = `gis-test-${suffix}`;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    QUEUE_PREFIX: queuePrefix,
    GCORE_API_KEY: 'test-key-$ecret',
    LOG_LEVEL: 'info',
    SYNC_RATE_LIMIT_PER_SECOND: '0',
    // Following the audit log adds requests that tests counting them do not expect; the tests of it turn it on.
    AUDIT_LOG_POLL_SECONDS: '0',
  };
  const probe = redisUrl ? redisProbe(redisUrl, queuePrefix) : postgresProbe(databaseUrl);
  return {
    databaseUrl,
    redisUrl,
    queuePrefix,
    queueStore: redisUrl ? 'redis' : 'postgres',
    queuesWhere: redisUrl ? `this Redis and QUEUE_PREFIX "${queuePrefix}"` : `the queue schema "${QUEUE_SCHEMA}" of this database`,
    env,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    queueEntries: () => probe.entries(),
    schedulerIds: () => probe.schedulerIds(),
    queueContents: () => probe.contents(),
    loseQueuedJobs: () => probe.loseJobs(),
    async cleanup() {
      await probe.close();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/**
 * For a file whose tests need only SQL: before them, a fresh migrated database
 * and a connection to it, handed to `use`; both gone after them.
 */
export function withDatabase(use: (sql: Sql) => void): void {
  let env: TestEnv | undefined;
  let sql: Sql | undefined;
  beforeAll(async () => {
    env = await createTestEnv();
    sql = await connectPostgres(env.databaseUrl);
    use(sql);
  });
  afterAll(async () => {
    await sql?.end();
    await env?.cleanup();
  });
}
