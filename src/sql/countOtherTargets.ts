import type { Sql } from '../db.js';
import type { Triple } from '../interfaces.js';

/** How many configured targets are not among `triples`. */
export async function countOtherTargets(sql: Sql, triples: Triple[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM targets t
    WHERE NOT EXISTS (
      SELECT 1 FROM unnest(${triples.map((x) => x.projectId)}::int[], ${triples.map((x) => x.regionId)}::int[],
        ${triples.map((x) => x.imageId)}::text[]) AS d(project_id, region_id, image_id)
      WHERE (d.project_id, d.region_id, d.image_id) = (t.project_id, t.region_id, t.image_id))`;
  return row!.n;
}
