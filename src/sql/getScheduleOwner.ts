import type { Sql } from '../db/db.js';
import type { Tx } from './tripleLock.js';

/** Who recorded the stored targets and schedules, as `schedule_owner` holds it. */
export interface ScheduleOwner {
  config_hash: string;
  targets_file: string;
  host: string;
  pid: number;
  command: string;
  target_count: number;
  claimed_at: Date;
  heartbeat_at: Date | null;
  /** Whole seconds since the last heartbeat; null when no process keeps one. */
  heartbeat_age_seconds: number | null;
  /** A process running this configuration renewed its heartbeat within the stale bound. */
  live: boolean;
}

/** The recorded owner, live or not, if any; within a claim's transaction too. */
export async function getScheduleOwner(sql: Sql | Tx, staleAfterSeconds: number): Promise<ScheduleOwner | undefined> {
  const [owner] = await sql<ScheduleOwner[]>`
    SELECT config_hash, targets_file, host, pid, command, target_count, claimed_at, heartbeat_at,
      floor(extract(epoch FROM now() - heartbeat_at))::int AS heartbeat_age_seconds,
      coalesce(heartbeat_at > now() - make_interval(secs => ${staleAfterSeconds}), false) AS live
    FROM schedule_owner`;
  return owner;
}
