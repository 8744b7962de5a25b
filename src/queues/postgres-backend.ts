// The queue store on Postgres (REDIS_URL unset): BullMQ's PostgreSQL backend
// in its own schema of the deployment's database, and the request timeline and
// rejected-key records as rows beside it (migration 0014). BullMQ speaks
// through node-postgres (pg): one pool per process, shared by every queue and
// worker, its LISTEN clients included. The database is the deployment's own,
// so nothing else shares these queues and QUEUE_PREFIX has nothing to keep
// apart here.
import {
  createPostgresBackend,
  DEFAULT_SCHEMA,
  runMigrations,
  Worker,
  type BackendFactory,
  type IQueueBackend,
  type Job,
  type JobProgress,
  type Processor,
} from 'bullmq';
import pLimit from 'p-limit';
import pg from 'pg';
import type { QueueBackend, WorkedQueue, WorkerSettings } from './backend.js';
import type { Database } from '../db/database.js';
import type { Sql } from '../db/db.js';
import { ENTRY_TTL_MS, entryName, holdRecord } from './key-health.js';
import { openQueues } from './queue.js';
import { rateLimitKey } from '../gcore/rate-limiter.js';
import { deleteKeyRejection, liveKeyRejections, putKeyRejection } from '../sql/keyRejections.js';
import { takeApiSlot } from '../sql/takeApiSlot.js';

/** BullMQ's schema: the only one it uses over a pool it did not build. */
export const QUEUE_SCHEMA = DEFAULT_SCHEMA;

/**
 * Connections of the BullMQ pool for the queues' and workers' short queries
 * (the workers run at most a few jobs each at once). Each worker also holds
 * one for good, its LISTEN client: the pool grows by one per worker (two per
 * account, and the schedule worker), so no number of accounts starves it.
 */
const QUERY_CONNECTIONS = 3;

/**
 * How long a new connection may take to be ready. node-postgres waits
 * forever by default: a connection to a port another program took (the
 * embedded server's, after it died) would hold its worker for good.
 */
const CONNECT_TIMEOUT_MS = 5000;

/** The deployment's database as the queue store needs it: where to open BullMQ's pool, and a pool for the timeline. */
interface QueueDatabase extends Pick<Database, 'url' | 'socket'> {
  sql: Sql;
}

export async function openPostgresBackend(store: QueueDatabase, deployment: string): Promise<QueueBackend> {
  const schema = QUEUE_SCHEMA;
  const pool = new pg.Pool({
    connectionString: store.url,
    // The embedded server may come back on another port: each connection is opened where it is then.
    ...(store.socket && { stream: store.socket }),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    max: QUERY_CONNECTIONS,
    // BullMQ keeps its LISTEN clients for an hour at a time only over connections with keepalive.
    keepAlive: true,
    // BullMQ's statements name its tables without their schema.
    options: `-c search_path=${schema}`,
    application_name: 'gcore-image-sync queues',
  });
  // A client that loses its server is replaced by the pool; BullMQ reports what fails through the workers.
  pool.on('error', () => {});
  // Every queue and worker on the pool listens for its errors, and there are more of them with each account.
  pool.setMaxListeners(0);
  try {
    // Under BullMQ's advisory lock: processes starting together migrate once.
    await runMigrations(pool, schema);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const factory = createPostgresBackend as unknown as BackendFactory<IQueueBackend, unknown>;
  const queues = openQueues(() => ({ connection: pool }), factory, deployment);
  const { sql } = store;
  // The database is the deployment's own: one timeline per account for all its processes, whatever their QUEUE_PREFIX.
  const oneAtATime = pLimit(1);
  return {
    kind: 'postgres',
    where: `the queue schema "${schema}" of this database`,
    queues,
    // BullMQ's types tie a worker to Redis's connection options; the queue code needs only what both backends do.
    worker: <D>(queue: WorkedQueue, processor: Processor<D> | null, settings: WorkerSettings) => {
      pool.options.max = (pool.options.max ?? QUERY_CONNECTIONS) + 1;
      const worker = new Worker<D, unknown, string, IQueueBackend, JobProgress, unknown>(
        queue.name,
        processor,
        { ...settings, connection: pool },
        factory,
      ) as unknown as Worker<D>;
      worker.once('closed', () => (pool.options.max = pool.options.max - 1));
      return worker;
    },
    timeline: (account) => {
      const key = rateLimitKey(QUEUE_SCHEMA, account);
      return {
        // One take at a time per process: takers queue here rather than on the timeline's row lock in
        // Postgres, each holding a connection of the pool (a worker at SYNC_CONCURRENCY 20 held 20).
        take: (slotMs, throughPause) =>
          oneAtATime(async () => {
            const askedAt = performance.now();
            return { ...(await takeApiSlot(sql, key, { slotMs, throughPause })), askedAt };
          }),
        pause: async (pauseMs, askedMs) => void (await takeApiSlot(sql, key, { slotMs: 0, pauseMs, askedMs })),
        aheadMs: async () => Math.round((await takeApiSlot(sql, key, { slotMs: 0 })).waitMs),
      };
    },
    // The queues are in this deployment's own database: no other deployment can reach them.
    markDeployment: async () => [deployment],
    liveDeployments: async () => [deployment],
    holdKeyRejection: (rejection, onError) =>
      holdRecord(
        () => putKeyRejection(sql, entryName(rejection), rejection, ENTRY_TTL_MS),
        () => deleteKeyRejection(sql, entryName(rejection)),
        onError,
      ),
    keyRejections: () => liveKeyRejections(sql),
    // remove() without children answers 1 to exactly one of the processes removing a job at once.
    takeFailed: async (job: Job) => {
      const queue = queues.named(job.queueName)!;
      return (await queue.remove(job.id!, { removeChildren: false })) === 1;
    },
    ping: async () => void (await queues.refresh.getJobCounts('waiting')),
    async close() {
      await queues.close();
      await pool.end();
    },
  };
}
