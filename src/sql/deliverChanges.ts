import type { Sql } from '../db/db.js';
import type { ChangeRow } from './listChanges.js';

export interface DeliveredChange extends ChangeRow {
  id: number;
}

const CURSOR = 'webhook';

/**
 * Hands the next changes after the delivery cursor to `send`, and moves the
 * cursor past them only if `send` succeeds (at-least-once). The cursor row is
 * locked meanwhile, and a process that finds it locked delivers nothing, so
 * several workers never send the same change at once. The first delivery
 * starts from the newest change: history before alerts were enabled is not sent.
 */
export async function deliverChanges(sql: Sql, limit: number, send: (changes: DeliveredChange[]) => Promise<void>): Promise<number> {
  await sql`
    INSERT INTO alert_cursor (name, last_change_id)
    SELECT ${CURSOR}, coalesce(max(id), 0) FROM image_changes
    ON CONFLICT (name) DO NOTHING`;
  return sql.begin(async (tx) => {
    const [cursor] = await tx<{ last_change_id: number }[]>`
      SELECT last_change_id FROM alert_cursor WHERE name = ${CURSOR} FOR UPDATE SKIP LOCKED`;
    if (!cursor) return 0;
    const changes = await tx<DeliveredChange[]>`
      SELECT id, changed_at, project_id, region_id, image_id, account, image_name, change_type, field, old_value, new_value,
        actor_email, actor_user_id, action_type, action_id, actor_candidates
      FROM image_change_log WHERE id > ${cursor.last_change_id} ORDER BY id LIMIT ${limit}`;
    if (changes.length === 0) return 0;
    await send(changes);
    await tx`UPDATE alert_cursor SET last_change_id = ${changes.at(-1)!.id} WHERE name = ${CURSOR}`;
    return changes.length;
  });
}
