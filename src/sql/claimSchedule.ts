import type { Sql } from '../db/db.js';
import { getScheduleOwner, type ScheduleOwner } from './getScheduleOwner.js';

const OWNER_LOCK = 727_003;

export interface Claimant {
  configHash: string;
  targetsFile: string;
  host: string;
  pid: number;
  command: string;
  targetCount: number;
  /** This process will keep a heartbeat (start); one-shot commands leave none. */
  keepsHeartbeat: boolean;
}

export interface ClaimResult {
  claimed: boolean;
  /** The owner before this claim, if one was recorded. */
  previous: ScheduleOwner | undefined;
}

/**
 * Records `me` as the schedule's owner unless a live owner runs another
 * configuration and `takeOver` is false. A one-shot command with the owner's
 * own configuration leaves the record (and its heartbeat) as it is. Claims
 * serialize on an advisory lock, so of two racing `start`s one wins.
 */
export async function claimSchedule(sql: Sql, me: Claimant, takeOver: boolean, staleAfterSeconds: number): Promise<ClaimResult> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${OWNER_LOCK})`;
    const previous = await getScheduleOwner(tx, staleAfterSeconds);
    const same = previous?.config_hash === me.configHash;
    if (previous && !same && previous.live && !takeOver) return { claimed: false, previous };
    if (same && !me.keepsHeartbeat) return { claimed: true, previous };
    await tx`
      INSERT INTO schedule_owner (config_hash, targets_file, host, pid, command, target_count, claimed_at, heartbeat_at)
      VALUES (${me.configHash}, ${me.targetsFile}, ${me.host}, ${me.pid}, ${me.command}, ${me.targetCount}, now(),
        ${me.keepsHeartbeat ? tx`now()` : null})
      ON CONFLICT (id) DO UPDATE SET
        config_hash = EXCLUDED.config_hash, targets_file = EXCLUDED.targets_file, host = EXCLUDED.host, pid = EXCLUDED.pid,
        command = EXCLUDED.command, target_count = EXCLUDED.target_count, heartbeat_at = EXCLUDED.heartbeat_at,
        -- when this configuration first took the schedule, however many processes run it since
        claimed_at = CASE WHEN schedule_owner.config_hash = EXCLUDED.config_hash THEN schedule_owner.claimed_at ELSE EXCLUDED.claimed_at END`;
    return { claimed: true, previous };
  });
}
