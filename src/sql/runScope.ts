import type { Sql } from '../db/db.js';
import type { Tx } from './tripleLock.js';

/**
 * The one definition of which targets a run covers, as a condition on a
 * sync_runs row `r` and a targets row `t`: the run's schedule group (or every
 * group), its account (or every account), its single target if it names one, and only targets that existed
 * when it started and had not left their discovery scope by then. Planning, crediting, counting and finishing runs all use it.
 */
export function inRunScope(sql: Sql | Tx) {
  return sql`(r.schedule_key IS NULL OR t.schedule_key = r.schedule_key) AND (r.account IS NULL OR t.account = r.account)
    AND (r.target_image_id IS NULL
      OR (t.project_id, t.region_id, t.image_id) = (r.target_project_id, r.target_region_id, r.target_image_id))
    AND t.added_at <= r.started_at
    AND (t.left_scope_at IS NULL OR t.left_scope_at >= r.started_at)`;
}
