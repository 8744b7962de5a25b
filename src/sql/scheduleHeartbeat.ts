import type { Sql } from '../db/db.js';
import type { Claimant } from './claimSchedule.js';

/**
 * Renews the heartbeat of the owner running `me.configHash`, from any process
 * that runs it, and names this process as the owner: of several running one
 * configuration, the record always names one that is alive. False when
 * another configuration has taken the schedule.
 */
export async function scheduleHeartbeat(sql: Sql, me: Claimant): Promise<boolean> {
  const renewed = await sql`
    UPDATE schedule_owner SET heartbeat_at = now(), targets_file = ${me.targetsFile}, host = ${me.host}, pid = ${me.pid}, command = ${me.command}
    WHERE config_hash = ${me.configHash}`;
  return renewed.count === 1;
}
