import type { Sql } from '../db.js';

/**
 * The schedule groups with work due since their time: no scheduled run of
 * the group has started since (one that has is doing that work, or did it:
 * its queued refreshes survive a restart), and a target listed by id was
 * never attempted or last attempted before it, or a discovery scope has had
 * no listing started since. Targets a scope found are refreshed by its
 * listing, so the scope stands for them.
 */
export async function dueGroups(sql: Sql, groups: Array<{ key: string; dueSince: Date }>): Promise<string[]> {
  if (groups.length === 0) return [];
  const rows = await sql<{ key: string }[]>`
    SELECT g.key FROM unnest(${groups.map((g) => g.key)}::text[], ${groups.map((g) => g.dueSince.toISOString())}::timestamptz[]) AS g(key, since)
    WHERE NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.kind = 'scheduled' AND r.schedule_key = g.key AND r.started_at >= g.since)
      AND (EXISTS (SELECT 1 FROM targets t
        WHERE t.schedule_key = g.key AND t.explicit AND t.left_scope_at IS NULL
          AND (t.last_attempt_at IS NULL OR t.last_attempt_at < g.since))
      OR EXISTS (SELECT 1 FROM scopes s
        WHERE s.schedule_key = g.key
          AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.scope_key = s.key AND l.started_at >= g.since)))
    ORDER BY g.key`;
  return rows.map((row) => row.key);
}
