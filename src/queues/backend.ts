// What the rest of the code asks of the place where the queues, the job
// schedulers, the shared request timeline and the records other processes
// read (rejected keys, deployments) live: Redis (redis-backend.ts) or the
// deployment's own Postgres database (postgres-backend.ts). Which one runs is
// decided in services.ts (openBackend); nothing else learns it.
import type { Job, Processor, Worker, WorkerOptions } from 'bullmq';
import type { HeldRejection, KeyRejection } from './key-health.js';
import type { Queues } from './queue.js';
import type { RequestTimeline } from '../gcore/rate-limiter.js';

/** The options a worker chooses; the connection and namespace are the backend's. */
export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

/** What a worker needs of its queue: the name, and the prefix the store opened it under (redis-keys.ts). */
export interface WorkedQueue {
  readonly name: string;
  readonly opts: { prefix?: string };
}

export interface QueueBackend {
  /** Which store, as workers mark it in the database: processes of one deployment on different ones are split (deployment-registry.ts). */
  readonly kind: 'redis' | 'redis-cluster' | 'postgres';
  /** Where the queues are, for messages: 'this Redis and QUEUE_PREFIX "x"' or 'the queue schema "x" of this database'. */
  readonly where: string;
  readonly queues: Queues;
  /** A BullMQ worker on one of this store's queues (without a processor: one that takes jobs by hand). */
  worker<D>(queue: WorkedQueue, processor: Processor<D> | null, settings: WorkerSettings): Worker<D>;
  /** An account's request timeline, shared by every process of the deployment. */
  timeline(account: string): RequestTimeline;
  /**
   * Marks `deployment` as using these queues for a short while; returns every
   * deployment marked now. Queues in a deployment's own database cannot be
   * shared, so there it is only ever the deployment itself.
   */
  markDeployment(deployment: string): Promise<string[]>;
  liveDeployments(): Promise<string[]>;
  /** Records this worker's rejected key until release (a clean stop) or until renewals stop (a crash). */
  holdKeyRejection(rejection: KeyRejection, onError: (error: Error) => void): HeldRejection;
  /** The workers whose key is rejected now, oldest rejection first. */
  keyRejections(): Promise<KeyRejection[]>;
  /** Removes a job that failed for good; true for exactly one of the processes that try. */
  takeFailed(job: Job): Promise<boolean>;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
