import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

/** Claims these targets for job `jobId` where no other job holds them; returns those claimed. */
export async function claimTriples(sql: Sql, triples: Triple[], jobId: string): Promise<Triple[]> {
  if (triples.length === 0) return [];
  const rows = await sql<{ project_id: number; region_id: number; image_id: string }[]>`
    UPDATE targets t SET queued_job = ${jobId}, queued_at = now()
    FROM unnest(${triples.map((x) => x.projectId)}::int[], ${triples.map((x) => x.regionId)}::int[],
      ${triples.map((x) => x.imageId)}::text[]) AS c(project_id, region_id, image_id)
    WHERE (t.project_id, t.region_id, t.image_id) = (c.project_id, c.region_id, c.image_id) AND t.queued_job IS NULL
    RETURNING t.project_id, t.region_id, t.image_id`;
  return rows.map((r) => ({ projectId: r.project_id, regionId: r.region_id, imageId: r.image_id }));
}
