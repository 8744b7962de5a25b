import type { Sql } from '../db/db.js';

export interface ScopeListing {
  scope_key: string;
  /** What outputs call the scope: its name, or its key until a reconcile has named it. */
  name: string;
  account: string;
  definition: unknown;
  targets: number;
  status: string | null;
  started_at: Date | null;
  expected: number | null;
  listed: number | null;
  absent: number | null;
  error: string | null;
  /** Of its usage listings (one per project and region, usage/usage-parts.ts): how many were whole, not whole, and their requests. */
  usage_complete: number;
  usage_incomplete: number;
  usage_requests: number;
}

/** Each configured scope (of one account, or all) with how many targets it lists and its latest listing. */
export async function lastListings(sql: Sql, account?: string): Promise<ScopeListing[]> {
  return sql<ScopeListing[]>`
    SELECT s.key AS scope_key, coalesce(s.name, s.key) AS name, s.account, s.definition,
      (SELECT count(*)::int FROM targets t WHERE t.scope_key = s.key AND t.left_scope_at IS NULL) AS targets,
      l.status, l.started_at, l.expected, l.listed, l.absent, l.error,
      coalesce(u.complete, 0) AS usage_complete, coalesce(u.incomplete, 0) AS usage_incomplete, coalesce(u.requests, 0) AS usage_requests
    FROM scopes s
    LEFT JOIN LATERAL (SELECT * FROM listings l WHERE l.scope_key = s.key ORDER BY l.id DESC LIMIT 1) l ON true
    LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE u.status = 'complete')::int AS complete, count(*) FILTER (WHERE u.status = 'incomplete')::int AS incomplete,
        sum(u.requests)::int AS requests
      FROM usage_listings u WHERE u.listing_id = l.id) u ON true
    WHERE ${account ?? null}::text IS NULL OR s.account = ${account ?? null}::text
    ORDER BY coalesce(s.name, s.key), s.key`;
}
