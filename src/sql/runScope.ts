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

/**
 * The one definition of the targets a listing `l` stands for: those only its
 * scope refreshes (no GET of their own), there before it started. As a
 * condition on a listings row `l` and a targets row `t`.
 */
export function inListingScope(sql: Sql | Tx) {
  return sql`t.scope_key = l.scope_key AND NOT t.explicit AND t.left_scope_at IS NULL AND t.added_at < l.started_at`;
}

/**
 * Of those, once `l` has ended, the ones it is the attempt of: it returned them (they are on the list, its
 * stored changes their own attempts), or their image is stored deleted (a deletion already confirmed needs no
 * request). Its incomplete listing recorded an attempt for every other one.
 */
export function doneByListing(sql: Sql | Tx) {
  return sql`${inListingScope(sql)} AND (NOT t.off_list OR EXISTS (SELECT 1 FROM image_rows i
    WHERE (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id) AND i.deleted_at IS NOT NULL))`;
}
