import type { Sql } from '../db.js';
import { inRunScope } from './runScope.js';

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
    WHERE ${inRunScope(sql)} AND t.last_attempt_at >= r.started_at`;
}
