import type { Sql } from '../db/db.js';
import type { ChangeRow } from './listChanges.js';

/** A change of an image something used as it changed (in_use_alert in migrations/objects/11_image_usage.sql). */
interface InUseAlert {
  event: 'deleted_in_use' | 'visibility_changed_in_use' | 'ssh_key_changed_in_use';
  consumers: number;
  /** Up to five of them. */
  examples: Array<{ kind: string; id: string; name: string | null }>;
}

export interface DeliveredChange extends ChangeRow {
  id: number;
  /** Set for a deletion, or a change of visibility or ssh_key, of an image in use when it changed; else null. */
  in_use_alert: InUseAlert | null;
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
        actor_email, actor_user_id, action_type, action_id, actor_candidates,
        in_use_alert(project_id, region_id, image_id, change_type, field, changed_at) AS in_use_alert
      FROM image_change_log WHERE id > ${cursor.last_change_id} ORDER BY id LIMIT ${limit}`;
    if (changes.length === 0) return 0;
    await send(changes);
    await tx`UPDATE alert_cursor SET last_change_id = ${changes.at(-1)!.id} WHERE name = ${CURSOR}`;
    return changes.length;
  });
}
