// schedule -> job: turns a run's scope into claimed batches of triples and
// queues them, and queues the listings of its discovery scopes. A target is claimed by at most one queued batch at a time (see
// targets.queued_job), so however many ticks, syncs and processes ask at
// once, a triple is never queued twice.
import { randomBytes } from 'node:crypto';
import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { enqueueBatches, enqueueListJobs, missingJobs, type Queues, type RefreshItem } from '../queues/queue.js';
import { claimTargets, type Claim, type ClaimScope } from '../sql/claimTargets.js';
import { listOldClaims } from '../sql/listOldClaims.js';
import { openListings, pagesToQueue } from '../sql/listingPages.js';
import { openRunScopes } from '../sql/openRunScopes.js';
import { releaseClaims } from '../sql/releaseClaims.js';
import type { ListingJob } from '../sql/startRun.js';
import { LOST } from './retry-policy.js';

const CLAIM_PAGE = 5000;

export interface FanOut {
  /** Targets newly queued by this request. */
  queued: number;
  /** Claims freed because their job had been lost. */
  recovered: number;
}

/** Jobs holding claims for longer than `olderThanMs` that are gone from their account's queue. */
export async function lostJobs(sql: Sql, queues: Queues, olderThanMs: number): Promise<string[]> {
  const byAccount = Map.groupBy(await listOldClaims(sql, olderThanMs), (claim) => claim.account);
  const lost = await Promise.all(
    [...byAccount].map(([account, claims]) =>
      missingJobs(
        queues.forAccount(account).refresh,
        claims.map((claim) => claim.jobId),
      ),
    ),
  );
  return lost.flat();
}

/** Queues claimed batches, each on its account's queue. */
export async function enqueueClaims(queues: Queues, claims: Claim[], item: (triple: Triple) => RefreshItem): Promise<void> {
  for (const [account, batches] of Map.groupBy(claims, (claim) => claim.account)) {
    await enqueueBatches(
      queues.forAccount(account),
      batches.map((claim) => ({ jobId: claim.jobId, items: claim.triples.map(item) })),
    );
  }
}

/** Queues a refresh of every target in scope not already queued. */
export async function queueRefreshes(sql: Sql, queues: Queues, scope: ClaimScope, label: string, batchSize: number): Promise<FanOut> {
  const recovered = await releaseClaims(sql, await lostJobs(sql, queues, LOST.claimMs));
  const base = `${label}-${randomBytes(4).toString('hex')}`;
  let queued = 0;
  let after: Triple | null | undefined;
  for (let page = 0; after !== null; page++) {
    const { claims, next } = await claimTargets(sql, scope, `${base}-${page}`, batchSize, CLAIM_PAGE, after ?? undefined);
    after = next;
    await enqueueClaims(queues, claims, (t) => ({ ...t, attempt: 0 }));
    queued += claims.reduce((sum, claim) => sum + claim.triples.length, 0);
  }
  return { queued, recovered };
}

/**
 * Queues again, for every open run, the refreshes whose jobs were lost (a
 * store that lost its data, or the deployment moved from one store to the
 * other): without it they wait for the next fan-out, a tick that may be a day
 * away. Returns how many were queued.
 */
export async function requeueOpenRuns(sql: Sql, queues: Queues, batchSize: number): Promise<number> {
  const lost = await lostJobs(sql, queues, LOST.claimMs);
  if (lost.length === 0) return 0;
  await releaseClaims(sql, lost);
  let queued = 0;
  for (const run of await openRunScopes(sql)) {
    const scope = {
      scheduleKey: run.scheduleKey,
      account: run.account,
      target: run.target,
      unfinishedIn: { runId: run.id, startedAt: run.startedAt },
    };
    queued += (await queueRefreshes(sql, queues, scope, `r${run.id}-lost`, batchSize)).queued;
  }
  return queued;
}

/** Queues the listing of each discovery scope a run opened (startRun), on its account's queue; a retried tick queues none twice. */
export async function queueListings(queues: Queues, listings: ListingJob[]): Promise<void> {
  for (const { id, account } of listings) {
    await enqueueListJobs(queues.forAccount(account).list, [{ kind: 'expand', listingId: id, attempt: 0 }]);
  }
}

/**
 * Queues again the jobs of listings that have not ended (of one run, or every
 * one older than `olderThanMs`), for when their jobs were lost with Redis's
 * data or a crash. A job that exists is not added twice; a listing whose pages
 * have all answered gets a job for its first page, which ends it. Returns how
 * many listings are open.
 */
export async function requeueListings(sql: Sql, queues: Queues, which: { runId: number } | { olderThanMs: number }): Promise<number> {
  const open = await openListings(sql, which);
  for (const listing of open) {
    if (listing.status === 'expanding') {
      await queueListings(queues, [listing]);
      continue;
    }
    const pages = await pagesToQueue(sql, listing.id);
    await enqueueListJobs(
      queues.forAccount(listing.account).list,
      (pages.length > 0 ? pages : [{ part: 0, page: 0 }]).map(({ part, page }) => ({
        kind: 'page',
        listingId: listing.id,
        part,
        page,
        attempt: 0,
      })),
    );
  }
  return open.length;
}
