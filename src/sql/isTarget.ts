import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

/** Whether the triple is a target that is refreshed (explicit, or discovered and still in its scope). */
export async function isTarget(sql: Sql, { projectId, regionId, imageId }: Triple): Promise<boolean> {
  const [row] = await sql`
    SELECT 1 FROM targets WHERE (project_id, region_id, image_id) = (${projectId}, ${regionId}, ${imageId}) AND left_scope_at IS NULL`;
  return row !== undefined;
}
