import type { Sql } from '../db.js';
import type { Triple } from '../interfaces.js';

/** Pages through the targets of one schedule group (or all, for null) in key order. */
export async function* listTargets(sql: Sql, key: string | null, pageSize = 5000): AsyncGenerator<Triple[]> {
  let after: [number, number, string] = [0, 0, ''];
  for (;;) {
    const rows = await sql<{ project_id: number; region_id: number; image_id: string }[]>`
      SELECT project_id, region_id, image_id FROM targets
      WHERE (${key}::text IS NULL OR schedule_key = ${key})
        AND (project_id, region_id, image_id) > (${after[0]}, ${after[1]}, ${after[2]})
      ORDER BY project_id, region_id, image_id
      LIMIT ${pageSize}`;
    if (rows.length === 0) return;
    yield rows.map((r) => ({ projectId: r.project_id, regionId: r.region_id, imageId: r.image_id }));
    const last = rows.at(-1)!;
    after = [last.project_id, last.region_id, last.image_id];
  }
}
