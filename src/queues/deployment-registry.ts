// Which deployments (databases) use one set of queues. Workers mark their own
// identity every few seconds, and the identity of any foreign job they refuse;
// an entry lapses a short while after its last mark. More than one identity
// means two deployments take each other's jobs: `status`, /readyz and the
// worker log say so before, or without, a job crossing over. Only queues on a
// shared Redis can be shared (backend.ts). The workers of one deployment also
// mark, in its database, which kind of store their queues are on: all must
// agree.
import type { QueueBackend } from './backend.js';
import type { Sql } from '../db/db.js';
import { liveQueueStores } from '../sql/queueStoreMarks.js';

/** How long a mark lasts: a few missed heartbeats, so a stopped deployment drops out soon. */
export const MARK_TTL_MS = 30_000;

/** What is wrong when deployments other than `own` use the queues at `where`, in words an operator can act on; undefined when none do. */
export function sharingProblem(where: string, own: string, live: string[]): string | undefined {
  const others = live.filter((id) => id !== own).sort();
  if (others.length === 0) return undefined;
  const who =
    others.length === 1 ? `another deployment (database ${others[0]}) uses` : `other deployments (databases ${others.join(', ')}) use`;
  return (
    `${who} ${where} too (this one is database ${own}): ` +
    "each hands the other's jobs back instead of doing them, which holds up both; " +
    'give each deployment its own QUEUE_PREFIX or Redis database'
  );
}

/** What is wrong when this database's workers use more than one kind of queue store; undefined when they agree. */
export function mixedStoresProblem(kinds: string[]): string | undefined {
  if (kinds.length < 2) return undefined;
  const settings = kinds.includes('redis-cluster')
    ? { differ: 'REDIS_URL and REDIS_CLUSTER_NODES differ between them', same: 'REDIS_URL or REDIS_CLUSTER_NODES' }
    : { differ: 'some have REDIS_URL set and some not', same: 'REDIS_URL' };
  return (
    `the workers of this database use different queue stores (${kinds.join(' and ')}): ${settings.differ}, ` +
    `so each takes the other's queued refreshes for lost and queues them again; give every process of this deployment the same ${settings.same}`
  );
}

/** Both problems of deployment `own`, given the deployments on its queues and the kinds of store its workers use; undefined when there is none. */
export function problemOf(where: string, own: string, live: string[], kinds: string[]): string | undefined {
  const problems = [sharingProblem(where, own, live), mixedStoresProblem(kinds)].filter((p) => p !== undefined);
  return problems.length > 0 ? problems.join('; ') : undefined;
}

/** What is wrong with deployment `own`'s queues now (problemOf); undefined when nothing is. */
export async function deploymentProblem(sql: Sql, backend: QueueBackend, own: string): Promise<string | undefined> {
  const [live, kinds] = await Promise.all([backend.liveDeployments(), liveQueueStores(sql)]);
  return problemOf(backend.where, own, live, kinds);
}
