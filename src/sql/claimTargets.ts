import { DEFAULT_ACCOUNT } from '../config/accounts.js';
import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { doneByListing } from './runScope.js';

export interface Claim {
  jobId: string;
  /** A batch is of one account: it goes to that account's queue. */
  account: string;
  triples: Triple[];
}

/**
 * Which targets a request covers: a schedule group (or all for null),
 * optionally one target, optionally only those not attempted since a time.
 * Targets that only a scope lists are refreshed by its listing, not by a GET,
 * unless the request names one or asks for them.
 */
export interface ClaimScope {
  scheduleKey: string | null;
  /** Only this account's targets (a schedule group is of one account already). */
  account?: string;
  target?: Triple;
  /** Only targets without an outcome in this run (outcomeCounts.ts): not attempted since it started, and no ended listing of it stands for them. */
  unfinishedIn?: { runId: number; startedAt: string };
  /** Include targets that only a scope lists (their listing ended without reaching them). */
  discovered?: boolean;
}

export interface ClaimPage {
  claims: Claim[];
  /** Where the next page starts; null when the scope is exhausted. */
  next: Triple | null;
}

const START: Triple = { projectId: 0, regionId: 0, imageId: '' };

/** Key order, so a batch lists its triples as they were claimed (ids compared as JavaScript strings). */
function byKey(
  a: { project_id: number; region_id: number; image_id: string },
  b: { project_id: number; region_id: number; image_id: string },
): number {
  return a.project_id - b.project_id || a.region_id - b.region_id || (a.image_id < b.image_id ? -1 : a.image_id > b.image_id ? 1 : 0);
}

/**
 * Marks up to `limit` unqueued targets in scope after `after`, in key order, as queued, in batches of `batchSize`
 * of one account each, named `${jobPrefix}-<n>` (the implied account's) or `${jobPrefix}-<account>-<n>`. A target already queued is left alone: its queued
 * refresh serves this request too. Concurrent claimers never take the same
 * target (the row lock decides); paging by key means a request never claims a
 * target twice, even when a batch releases it meanwhile.
 */
export async function claimTargets(
  sql: Sql,
  scope: ClaimScope,
  jobPrefix: string,
  batchSize: number,
  limit: number,
  after: Triple = START,
): Promise<ClaimPage> {
  const t = scope.target;
  const run = scope.unfinishedIn;
  // The claimed rows and the last candidate, without joining the two CTEs: a join of CTE scans is planned
  // from guesses, and a nested loop over 5,000 x 5,000 rows took seconds.
  const rows = await sql<
    { project_id: number; region_id: number; image_id: string; account: string; queued_job: string | null; last: boolean }[]
  >`
    WITH candidates AS (
      SELECT project_id, region_id, image_id, account,
        CASE WHEN account = ${DEFAULT_ACCOUNT} THEN '' ELSE account || '-' END
          || (row_number() OVER (PARTITION BY account ORDER BY project_id, region_id, image_id) - 1) / ${batchSize} AS chunk
      FROM targets t
      WHERE queued_job IS NULL AND (${scope.scheduleKey}::text IS NULL OR schedule_key = ${scope.scheduleKey})
        AND (${scope.account ?? null}::text IS NULL OR account = ${scope.account ?? null}::text)
        AND left_scope_at IS NULL AND (explicit OR ${scope.discovered === true || t !== undefined})
        AND (${t?.imageId ?? null}::text IS NULL
          OR (project_id, region_id, image_id) = (${t?.projectId ?? null}::int, ${t?.regionId ?? null}::int, ${t?.imageId ?? null}::text))
        AND (${run?.runId ?? null}::bigint IS NULL OR (t.last_attempt_at < ${run?.startedAt ?? null}::timestamptz
          AND NOT EXISTS (SELECT 1 FROM listings l
            WHERE l.run_id = ${run?.runId ?? null}::bigint AND l.status IN ('complete', 'incomplete') AND ${doneByListing(sql)})))
        AND (project_id, region_id, image_id) > (${after.projectId}, ${after.regionId}, ${after.imageId})
      ORDER BY project_id, region_id, image_id
      LIMIT ${limit}),
    claimed AS (
      UPDATE targets t SET queued_job = ${jobPrefix} || '-' || c.chunk, queued_at = now()
      FROM candidates c
      WHERE (t.project_id, t.region_id, t.image_id) = (c.project_id, c.region_id, c.image_id) AND t.queued_job IS NULL
      RETURNING t.project_id, t.region_id, t.image_id, t.account, t.queued_job)
    SELECT project_id, region_id, image_id, account, queued_job, false AS last FROM claimed
    UNION ALL
    (SELECT project_id, region_id, image_id, account, NULL, true FROM candidates ORDER BY project_id DESC, region_id DESC, image_id DESC LIMIT 1)`;
  const claims = new Map<string, Claim>();
  for (const row of rows.filter((r) => !r.last).sort(byKey)) {
    const claim = claims.get(row.queued_job!) ?? { jobId: row.queued_job!, account: row.account, triples: [] };
    claim.triples.push({ projectId: row.project_id, regionId: row.region_id, imageId: row.image_id });
    claims.set(row.queued_job!, claim);
  }
  const last = rows.find((r) => r.last);
  return {
    claims: [...claims.values()],
    next: last ? { projectId: last.project_id, regionId: last.region_id, imageId: last.image_id } : null,
  };
}
