import type { Sql } from '../db.js';
import type { Triple } from '../interfaces.js';

/**
 * A GET found alive an image its scope's complete listing did not return: it
 * left the scope (its visibility or tags no longer match). It is no longer
 * refreshed through the scope, and its target keeps when it left. False when
 * the target is not the scope's any more (another listing took it meanwhile).
 */
export async function leaveScope(sql: Sql, { projectId, regionId, imageId }: Triple, scopeKey: string): Promise<boolean> {
  const rows = await sql`
    UPDATE targets SET left_scope_at = now()
    WHERE (project_id, region_id, image_id) = (${projectId}, ${regionId}, ${imageId}) AND scope_key = ${scopeKey}
      AND NOT explicit AND left_scope_at IS NULL
    RETURNING 1`;
  return rows.length > 0;
}
