import type { Sql } from '../db/db.js';

export interface DueGroup {
  key: string;
  /** Work fell due since its time and no scheduled run has started for it. */
  overdue: boolean;
  /** When its latest attempt that failed for a reason the operator can fix ended; null when none did. */
  failedAt: Date | null;
}

/**
 * The schedule groups with work to do now. Overdue: no scheduled run of the
 * group has started since its due time (one that has is doing that work, or
 * did it: its queued refreshes survive a restart), and a target listed by id
 * was never attempted or last attempted before it, or a discovery scope has
 * had no listing started since. Targets a scope found are refreshed by its
 * listing, so the scope stands for them. Failed: a target listed by id last
 * failed with no answer (the API unreachable), a 5xx, a refused key (401,
 * 403) or a 404 without Gcore's body (a wrong base URL), or a scope's latest
 * listing is incomplete: a mistake the operator may have fixed since, which
 * must not wait for the next tick.
 */
export async function dueGroups(sql: Sql, groups: Array<{ key: string; dueSince: Date }>): Promise<DueGroup[]> {
  if (groups.length === 0) return [];
  const rows = await sql<{ key: string; overdue: boolean; failed_at: Date | null }[]>`
    SELECT * FROM (
      SELECT g.key,
        NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.kind = 'scheduled' AND r.schedule_key = g.key AND r.started_at >= g.since)
          AND (EXISTS (SELECT 1 FROM targets t
            WHERE t.schedule_key = g.key AND t.explicit AND t.left_scope_at IS NULL
              AND (t.last_attempt_at IS NULL OR t.last_attempt_at < g.since))
          OR EXISTS (SELECT 1 FROM scopes s
            WHERE s.schedule_key = g.key
              AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.scope_key = s.key AND l.started_at >= g.since))) AS overdue,
        greatest(
          (SELECT max(t.last_attempt_at) FROM targets t
            WHERE t.schedule_key = g.key AND t.explicit AND t.left_scope_at IS NULL AND t.last_outcome = 'failed'
              AND (t.last_status IS NULL OR t.last_status IN (401, 403, 404) OR t.last_status >= 500)),
          (SELECT max(l.finished_at) FROM scopes s
            CROSS JOIN LATERAL (SELECT * FROM listings l WHERE l.scope_key = s.key ORDER BY l.id DESC LIMIT 1) l
            WHERE s.schedule_key = g.key AND l.status = 'incomplete')) AS failed_at
      FROM unnest(${groups.map((g) => g.key)}::text[], ${groups.map((g) => g.dueSince.toISOString())}::timestamptz[]) AS g(key, since)) d
    WHERE d.overdue OR d.failed_at IS NOT NULL
    ORDER BY d.key`;
  return rows.map((row) => ({ key: row.key, overdue: row.overdue, failedAt: row.failed_at }));
}
