// schedule -> job: turns a run's scope into claimed batches of triples and
// queues them. A target is claimed by at most one queued batch at a time (see
// targets.queued_job), so however many ticks, syncs and processes ask at
// once, a triple is never queued twice.
import { randomBytes } from 'node:crypto';
import type { Sql } from './db.js';
import type { Triple } from './interfaces.js';
import { enqueueBatches, missingJobs, type Queues } from './queue.js';
import { claimTargets, type ClaimScope } from './sql/claimTargets.js';
import { listOldClaims } from './sql/listOldClaims.js';
import { releaseClaims } from './sql/releaseClaims.js';

const CLAIM_PAGE = 5000;
/** A claim this old whose job is gone from Redis was lost (Redis lost data, or the add failed). */
const LOST_AFTER_MS = 60_000;

export interface FanOut {
  /** Targets newly queued by this request. */
  queued: number;
  /** Claims freed because their job had been lost. */
  recovered: number;
}

/** Queues a refresh of every target in scope not already queued. */
export async function queueRefreshes(sql: Sql, queues: Queues, scope: ClaimScope, label: string, batchSize: number): Promise<FanOut> {
  const lost = await missingJobs(queues.refresh, await listOldClaims(sql, LOST_AFTER_MS));
  const recovered = await releaseClaims(sql, lost);
  const base = `${label}-${randomBytes(4).toString('hex')}`;
  let queued = 0;
  let after: Triple | null | undefined;
  for (let page = 0; after !== null; page++) {
    const { claims, next } = await claimTargets(sql, scope, `${base}-${page}`, batchSize, CLAIM_PAGE, after ?? undefined);
    after = next;
    await enqueueBatches(
      queues.refresh,
      claims.map((claim) => ({ jobId: claim.jobId, items: claim.triples.map((t) => ({ ...t, attempt: 0 })) })),
    );
    queued += claims.reduce((sum, claim) => sum + claim.triples.length, 0);
  }
  return { queued, recovered };
}
