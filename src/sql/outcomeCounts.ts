import type { Sql } from '../db.js';

/**
 * Outcome counts over the targets of run `r` attempted since it started; used
 * as a LATERAL subquery, where `r` is the sync_runs row.
 */
export function outcomeCounts(sql: Sql) {
  return sql`
    SELECT count(*) FILTER (WHERE t.last_outcome = 'unchanged')::int AS unchanged,
           count(*) FILTER (WHERE t.last_outcome = 'changed')::int AS changed,
           count(*) FILTER (WHERE t.last_outcome = 'deleted')::int AS deleted,
           count(*) FILTER (WHERE t.last_outcome = 'failed')::int AS failed
    FROM targets t
    WHERE (r.schedule_key IS NULL OR t.schedule_key = r.schedule_key)
      AND (r.target_image_id IS NULL
        OR (t.project_id, t.region_id, t.image_id) = (r.target_project_id, r.target_region_id, r.target_image_id))
      AND t.added_at <= r.started_at AND t.last_attempt_at >= r.started_at`;
}
