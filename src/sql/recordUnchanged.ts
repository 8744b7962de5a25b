import type { Sql } from '../db/db.js';
import type { Observation, Triple } from '../interfaces.js';
import type { Tx } from './tripleLock.js';

/** Where observations came from: an answer about each image alone (a GET), or a page of a list. */
export type ObservationSource = 'answer' | 'listing';

/** The observations as rows `x`, with the stored image `i` each matches exactly: same state, live, same account and kind. */
function sameAsStored(sql: Sql | Tx, observations: Observation[]) {
  return sql`
    SELECT x.* FROM unnest(
        ${observations.map((o) => o.triple.projectId)}::int[], ${observations.map((o) => o.triple.regionId)}::int[],
        ${observations.map((o) => o.triple.imageId)}::text[], ${observations.map((o) => o.contentHash)}::text[],
        ${observations.map((o) => o.observedAt.toISOString())}::timestamptz[], ${observations.map((o) => o.account)}::text[],
        ${observations.map((o) => o.kind.name)}::text[])
      AS x(project_id, region_id, image_id, content_hash, observed_at, account, kind)
    JOIN image_rows i ON (i.project_id, i.region_id, i.image_id) = (x.project_id, x.region_id, x.image_id)
      AND i.content_hash = x.content_hash AND i.deleted_at IS NULL AND i.account = x.account AND i.kind = x.kind`;
}

/**
 * The common case in one statement for a whole batch: the observations whose
 * hash equals the stored state. An answer about one image advances its
 * seen_at and records its target's attempt. A listing writes nothing for them
 * (its latest_listings row, written once as it ends, says they were seen),
 * except for a target with no attempt yet or whose last one failed. Returns the triples so
 * recorded; the rest (changes, an image moved to another account or seen by
 * another kind's endpoint) go to recordChanges.
 */
export async function recordUnchanged(sql: Sql, observations: Observation[], source: ObservationSource): Promise<Triple[]> {
  if (observations.length === 0) return [];
  const rows =
    source === 'listing'
      ? await sql<{ project_id: number; region_id: number; image_id: string }[]>`
    WITH same AS (${sameAsStored(sql, observations)}),
    cleared AS (
      UPDATE targets t SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = 'unchanged', last_error = NULL,
        last_status = 200
      FROM same s WHERE (t.project_id, t.region_id, t.image_id) = (s.project_id, s.region_id, s.image_id)
        AND (t.last_outcome IS NULL OR t.last_outcome = 'failed')
      RETURNING 1)
    SELECT project_id, region_id, image_id FROM same`
      : await sql<{ project_id: number; region_id: number; image_id: string }[]>`
    WITH same AS (${sameAsStored(sql, observations)}),
    seen AS (
      UPDATE image_rows i SET seen_at = greatest(i.seen_at, s.observed_at)
      FROM same s WHERE (i.project_id, i.region_id, i.image_id) = (s.project_id, s.region_id, s.image_id)
      RETURNING i.project_id, i.region_id, i.image_id),
    attempt AS (
      UPDATE targets t SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = 'unchanged', last_error = NULL,
        last_status = 200
      FROM seen s WHERE (t.project_id, t.region_id, t.image_id) = (s.project_id, s.region_id, s.image_id)
      RETURNING 1)
    SELECT project_id, region_id, image_id FROM seen`;
  return rows.map((r) => ({ projectId: r.project_id, regionId: r.region_id, imageId: r.image_id }));
}
