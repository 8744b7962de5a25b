import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

/** Of these triples, those whose target is now another account's than `account`, with that account. */
export async function movedTargets<T extends Triple>(sql: Sql, triples: T[], account: string): Promise<Map<string, T[]>> {
  if (triples.length === 0) return new Map();
  const rows = await sql<{ n: number; account: string }[]>`
    SELECT x.n::int AS n, t.account
    FROM unnest(${triples.map((x) => x.projectId)}::int[], ${triples.map((x) => x.regionId)}::int[],
      ${triples.map((x) => x.imageId)}::text[]) WITH ORDINALITY AS x(project_id, region_id, image_id, n)
    JOIN targets t ON (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)
    WHERE t.account <> ${account}`;
  const moved = Map.groupBy(rows, (row) => row.account);
  return new Map([...moved].map(([to, found]) => [to, found.map((row) => triples[row.n - 1]!)]));
}
