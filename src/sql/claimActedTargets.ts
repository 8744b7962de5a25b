import type { Tx } from './tripleLock.js';
import type { Triple } from '../interfaces.js';
import type { Claim } from './claimTargets.js';
import { tripleKey } from '../images/triple.js';

/** What the audit log's images are to the account's targets. */
export interface ActedTargets {
  /** Refreshes to queue now: targets no other job held, in batches. */
  claims: Claim[];
  /** Triples that are the account's targets (claimed now, or already queued, or another account's): no scope need take them in. */
  tracked: Set<string>;
}

/**
 * Claims, for jobs `${jobPrefix}-<n>` of `batchSize`, the targets among
 * `triples` that the account refreshes and no job holds: a target already
 * queued is refreshed by that job, after the action, so it is not queued
 * twice. A target that left its scope is no one's to refresh and is left out.
 */
export async function claimActedTargets(
  tx: Tx,
  account: string,
  triples: Triple[],
  jobPrefix: string,
  batchSize: number,
): Promise<ActedTargets> {
  if (triples.length === 0) return { claims: [], tracked: new Set() };
  const rows = await tx<{ project_id: number; region_id: number; image_id: string; claimed: string | null }[]>`
    WITH acted AS (
      SELECT DISTINCT project_id, region_id, image_id
      FROM unnest(${triples.map((t) => t.projectId)}::int[], ${triples.map((t) => t.regionId)}::int[],
        ${triples.map((t) => t.imageId)}::text[]) AS x(project_id, region_id, image_id)),
    known AS (
      SELECT t.project_id, t.region_id, t.image_id,
        t.account = ${account} AND t.left_scope_at IS NULL AND t.queued_job IS NULL AS free
      FROM targets t JOIN acted a USING (project_id, region_id, image_id)),
    chunks AS (
      SELECT project_id, region_id, image_id,
        (row_number() OVER (ORDER BY project_id, region_id, image_id) - 1) / ${batchSize} AS chunk
      FROM known WHERE free),
    claimed AS (
      UPDATE targets t SET queued_job = ${jobPrefix} || '-' || c.chunk, queued_at = now()
      FROM chunks c
      WHERE (t.project_id, t.region_id, t.image_id) = (c.project_id, c.region_id, c.image_id) AND t.queued_job IS NULL
      RETURNING t.project_id, t.region_id, t.image_id, t.queued_job)
    SELECT k.project_id, k.region_id, k.image_id, c.queued_job AS claimed
    FROM known k LEFT JOIN claimed c USING (project_id, region_id, image_id)
    ORDER BY k.project_id, k.region_id, k.image_id`;
  const claims = new Map<string, Claim>();
  for (const row of rows) {
    if (row.claimed === null) continue;
    const claim = claims.get(row.claimed) ?? { jobId: row.claimed, account, triples: [] };
    claim.triples.push({ projectId: row.project_id, regionId: row.region_id, imageId: row.image_id });
    claims.set(row.claimed, claim);
  }
  return {
    claims: [...claims.values()],
    tracked: new Set(rows.map((row) => tripleKey({ projectId: row.project_id, regionId: row.region_id, imageId: row.image_id }))),
  };
}
