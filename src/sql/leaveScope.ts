import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

/**
 * A GET found alive, and outside its scope's projects, regions or filters, an
 * image the scope's complete listing did not return: it left the scope. It is
 * no longer refreshed through the scope, its target keeps when it left, and
 * the scope's latest ended listing counts it (listings.marked_left). False
 * when the target is not the scope's any more (another listing took it
 * meanwhile).
 */
export async function leaveScope(sql: Sql, { projectId, regionId, imageId }: Triple, scopeKey: string): Promise<boolean> {
  const rows = await sql`
    WITH left_scope AS (
      UPDATE targets SET left_scope_at = now()
      WHERE (project_id, region_id, image_id) = (${projectId}, ${regionId}, ${imageId}) AND scope_key = ${scopeKey}
        AND NOT explicit AND left_scope_at IS NULL
      RETURNING 1),
    counted AS (
      UPDATE listings SET marked_left = marked_left + 1
      WHERE id = (SELECT max(id) FROM listings WHERE scope_key = ${scopeKey} AND finished_at IS NOT NULL)
        AND EXISTS (SELECT 1 FROM left_scope))
    SELECT 1 FROM left_scope`;
  return rows.length > 0;
}

/**
 * A GET found alive an image its scope's listing did not return, where the
 * server may read one of the scope's filters otherwise: it stays in the scope,
 * and is noted, so that a listing that keeps not returning it is not suspect.
 */
export async function noteFilterUnsure(sql: Sql, { projectId, regionId, imageId }: Triple, scopeKey: string): Promise<void> {
  await sql`
    UPDATE targets SET filter_unsure_at = now()
    WHERE (project_id, region_id, image_id) = (${projectId}, ${regionId}, ${imageId}) AND scope_key = ${scopeKey}`;
}
