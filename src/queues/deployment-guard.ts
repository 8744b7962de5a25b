// Keeps a worker to its own deployment's jobs. Two deployments that share a
// Redis and a QUEUE_PREFIX see each other's jobs; done here, a refresh would
// be recorded in the wrong database. So each job is checked first: a job
// queued by another deployment is handed back, unprocessed and with its
// attempts unspent, for that deployment's workers to take. The guard also
// marks this deployment in the registry every few seconds and says, once per
// other deployment, that the prefix is shared.
import type { Job } from 'bullmq';
import type { QueueBackend } from './backend.js';
import type { Sql } from '../db/db.js';
import { MARK_TTL_MS, mixedStoresProblem, sharingProblem } from './deployment-registry.js';
import type { Logger } from '../ops/logger.js';
import { every } from '../ops/periodic.js';
import { HAND_BACK } from '../work/retry-policy.js';
import { clearQueueStoreMark, markQueueStore } from '../sql/queueStoreMarks.js';
import { handBack, jobDeployment, type DeploymentJobData } from './queue.js';

/** Marks are renewed three times in their life, so two beats lost to a slow store do not let one lapse. */
const HEARTBEAT_MS = MARK_TTL_MS / 3;

export interface DeploymentGuardDeps {
  backend: QueueBackend;
  sql: Sql;
  queuePrefix: string;
  /** This worker's id: its mark of the store it uses. */
  worker: string;
  /** This deployment's identity. */
  deployment: string;
  logger: Logger;
}

export interface DeploymentGuard {
  /** Returns when the job is this deployment's (or carries no identity); otherwise hands it back and throws BullMQ's DelayedError. */
  check(job: Job<DeploymentJobData>, token: string | undefined): Promise<void>;
  /** Stops the heartbeat and takes back this worker's store mark. */
  stop(): Promise<void>;
}

export function startDeploymentGuard({ backend, sql, queuePrefix, deployment, worker, logger }: DeploymentGuardDeps): DeploymentGuard {
  // Other deployments already named in the log, and those whose jobs were refused.
  const named = new Set<string>();
  const refused = new Set<string>();

  function reportSharing(live: string[]): void {
    for (const other of live) {
      if (other === deployment || named.has(other)) continue;
      named.add(other);
      logger.error({ deployment, other_deployment: other, queue_prefix: queuePrefix }, sharingProblem(backend.where, deployment, [other]));
    }
  }

  let mixedSaid = false;
  function reportStores(kinds: string[]): void {
    const problem = mixedStoresProblem(kinds);
    if (problem && !mixedSaid) logger.error({ deployment, queue_stores: kinds }, problem);
    mixedSaid = problem !== undefined;
  }

  async function heartbeat(): Promise<void> {
    try {
      reportSharing(await backend.markDeployment(deployment));
    } catch {
      // The store away: the queues report that; the next beat marks this deployment again.
    }
    try {
      reportStores(await markQueueStore(sql, backend.kind, worker, MARK_TTL_MS));
    } catch {
      // Postgres away: the refreshes report that; the next beat marks the store again.
    }
  }
  // heartbeat() says nothing of a failure: the work that needs the store reports it.
  const beats = every(HEARTBEAT_MS, heartbeat, { now: true, onError: () => {} });

  return {
    async check(job, token) {
      const owner = jobDeployment(job);
      if (owner === undefined || owner === deployment) return;
      if (!refused.has(owner)) {
        refused.add(owner);
        named.add(owner);
        logger.error(
          { deployment, other_deployment: owner, queue_prefix: queuePrefix, job_id: job.id },
          `refused a job of another deployment (database ${owner}) that uses ${backend.where} too ` +
            `(this one is database ${deployment}): its jobs are handed back for its own workers, not done here; ` +
            'give each deployment its own QUEUE_PREFIX or Redis database',
        );
      }
      logger.debug({ job_id: job.id, other_deployment: owner }, 'handed back a job of another deployment');
      // Marked, so that `status` and /readyz name the owner even while none of its processes runs;
      // a mark lost to a blip of the store is made again by the next foreign job.
      await backend.markDeployment(owner).catch(() => {});
      throw await handBack(job, token, HAND_BACK.foreignJobMs);
    },
    async stop() {
      // Not waiting for a beat in flight, as before: a store away would hold the stop up, and a mark it puts back lapses after MARK_TTL_MS.
      void beats.stop();
      await clearQueueStoreMark(sql, backend.kind, worker).catch(() => {});
    },
  };
}
