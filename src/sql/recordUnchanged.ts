import type { Sql } from '../db/db.js';
import type { Observation, Triple } from '../interfaces.js';

/**
 * The common case in one statement for a whole batch: each observation whose
 * hash equals the stored state only advances last_seen_at and its target's
 * attempt. Returns the triples so recorded; the rest (an image moved to another
 * account or seen by another kind's endpoint among them) go to recordChanges.
 */
export async function recordUnchanged(sql: Sql, observations: Observation[]): Promise<Triple[]> {
  if (observations.length === 0) return [];
  const rows = await sql<{ project_id: number; region_id: number; image_id: string }[]>`
    WITH input AS (
      SELECT * FROM unnest(
        ${observations.map((o) => o.triple.projectId)}::int[], ${observations.map((o) => o.triple.regionId)}::int[],
        ${observations.map((o) => o.triple.imageId)}::text[], ${observations.map((o) => o.contentHash)}::text[],
        ${observations.map((o) => o.observedAt.toISOString())}::timestamptz[], ${observations.map((o) => o.account)}::text[],
        ${observations.map((o) => o.kind.name)}::text[])
        AS x(project_id, region_id, image_id, content_hash, observed_at, account, kind)),
    seen AS (
      UPDATE images i SET last_seen_at = greatest(i.last_seen_at, x.observed_at)
      FROM input x
      WHERE (i.project_id, i.region_id, i.image_id) = (x.project_id, x.region_id, x.image_id)
        AND i.content_hash = x.content_hash AND i.deleted_at IS NULL AND i.account = x.account AND i.kind = x.kind
      RETURNING i.project_id, i.region_id, i.image_id),
    attempt AS (
      UPDATE targets t SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = 'unchanged', last_error = NULL, last_status = 200
      FROM seen s WHERE (t.project_id, t.region_id, t.image_id) = (s.project_id, s.region_id, s.image_id)
      RETURNING 1)
    SELECT project_id, region_id, image_id FROM seen`;
  return rows.map((r) => ({ projectId: r.project_id, regionId: r.region_id, imageId: r.image_id }));
}
