import type { Sql } from '../db/db.js';

export interface ChangeFilter {
  since: Date;
  projectId?: number;
  regionId?: number;
  account?: string;
  /** A field name; `tags` matches every tag field. */
  field?: string;
  limit: number;
}

export interface ChangeRow {
  changed_at: string;
  project_id: number;
  region_id: number;
  image_id: string;
  account: string | null;
  image_name: string | null;
  change_type: string;
  field: string | null;
  old_value: unknown;
  new_value: unknown;
  /** Who made it, as the audit log says (image_change_log): the latest action in its window, and how many fell there. */
  actor_email: string | null;
  actor_user_id: number | null;
  action_type: string | null;
  action_id: string | null;
  actor_candidates: number;
}

/** Changes since a moment, newest first, from the image_change_log view. */
export async function listChanges(sql: Sql, filter: ChangeFilter): Promise<ChangeRow[]> {
  const field = filter.field === 'tags' ? sql`AND field LIKE 'tags.%'` : filter.field ? sql`AND field = ${filter.field}` : sql``;
  return sql<ChangeRow[]>`
    SELECT changed_at, project_id, region_id, image_id, account, image_name, change_type, field, old_value, new_value,
      actor_email, actor_user_id, action_type, action_id, actor_candidates
    FROM image_change_log
    WHERE changed_at >= ${filter.since.toISOString()}
      ${filter.projectId === undefined ? sql`` : sql`AND project_id = ${filter.projectId}`}
      ${filter.regionId === undefined ? sql`` : sql`AND region_id = ${filter.regionId}`}
      ${filter.account === undefined ? sql`` : sql`AND account = ${filter.account}`}
      ${field}
    ORDER BY changed_at DESC, id DESC
    LIMIT ${filter.limit}`;
}
