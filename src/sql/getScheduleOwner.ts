import type { Sql } from '../db.js';
import type { ScheduleOwner } from './claimSchedule.js';
import type { Tx } from './tripleLock.js';

/** The recorded owner, live or not, if any; within a claim's transaction too. */
export async function getScheduleOwner(sql: Sql | Tx, staleAfterSeconds: number): Promise<ScheduleOwner | undefined> {
  const [owner] = await sql<ScheduleOwner[]>`
    SELECT config_hash, targets_file, host, pid, command, target_count, claimed_at, heartbeat_at,
      floor(extract(epoch FROM now() - heartbeat_at))::int AS heartbeat_age_seconds,
      coalesce(heartbeat_at > now() - make_interval(secs => ${staleAfterSeconds}), false) AS live
    FROM schedule_owner`;
  return owner;
}
