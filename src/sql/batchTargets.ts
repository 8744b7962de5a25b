import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { tripleKey } from '../images/triple.js';

/** What a refresh batch needs to know of its triples' targets before it asks the API. */
export interface BatchTargets<T extends Triple> {
  /** Those whose target is now another account's than the batch's, by that account. */
  moved: Map<string, T[]>;
  /**
   * The kind of image each triple (by tripleKey) is refreshed as: its stored image's kind
   * (images.kind, learned), else its target's (the list that found it, or the targets file's).
   * A triple with neither is of the ordinary kind.
   */
  kinds: Map<string, string>;
}

/** The targets of a batch's triples, read in one statement: which moved to another account, and each one's kind. */
export async function batchTargets<T extends Triple>(sql: Sql, triples: T[], account: string): Promise<BatchTargets<T>> {
  if (triples.length === 0) return { moved: new Map(), kinds: new Map() };
  const rows = await sql<{ n: number; account: string | null; kind: string }[]>`
    SELECT x.n::int AS n, t.account, coalesce(i.kind, t.kind, 'ordinary') AS kind
    FROM unnest(${triples.map((x) => x.projectId)}::int[], ${triples.map((x) => x.regionId)}::int[],
      ${triples.map((x) => x.imageId)}::text[]) WITH ORDINALITY AS x(project_id, region_id, image_id, n)
    LEFT JOIN targets t ON (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)
    LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (x.project_id, x.region_id, x.image_id)`;
  const moved = Map.groupBy(
    rows.filter((row) => row.account !== null && row.account !== account),
    (row) => row.account!,
  );
  return {
    moved: new Map([...moved].map(([to, found]) => [to, found.map((row) => triples[row.n - 1]!)])),
    kinds: new Map(rows.map((row) => [tripleKey(triples[row.n - 1]!), row.kind])),
  };
}
