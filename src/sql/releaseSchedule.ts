import type { Sql } from '../db/db.js';

/**
 * Marks `configHash` as run by no process (a clean stop), so another
 * configuration may take the schedule at once; another process still running
 * it renews the heartbeat at its next beat.
 */
export async function releaseSchedule(sql: Sql, configHash: string): Promise<void> {
  await sql`UPDATE schedule_owner SET heartbeat_at = NULL WHERE config_hash = ${configHash}`;
}
