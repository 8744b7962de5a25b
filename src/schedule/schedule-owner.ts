// One configuration owns the schedule. Every command that writes the targets
// (start, schedule, sync) first claims it in Postgres: a different targets
// file while another one's `start` is running is refused, loudly and by name,
// instead of silently replacing that process's targets and schedules. The
// same configuration from several processes is fine; `--take-over` or a stale
// heartbeat lets a new one in, with a warning naming the one it replaces.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { IMPLIED_ACCOUNT } from '../config/accounts.js';
import type { Sql } from '../db/db.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { every } from '../ops/periodic.js';
import { scheduleKey } from './schedule.js';
import { claimSchedule, type Claimant } from '../sql/claimSchedule.js';
import { getScheduleOwner, type ScheduleOwner } from '../sql/getScheduleOwner.js';
import { releaseSchedule } from '../sql/releaseSchedule.js';
import { scheduleHeartbeat } from '../sql/scheduleHeartbeat.js';
import type { TargetsFile } from '../config/targets.js';
import { tripleKey } from '../images/triple.js';

/** How often a running `start` renews its claim. */
const HEARTBEAT_MS = 10_000;
/** A claim not renewed for this long belongs to a process that is gone (six missed beats: a busy or briefly cut-off process keeps it). */
const STALE_AFTER_SECONDS = 60;

/**
 * Names a configuration by what it schedules: every triple and every scope
 * with its schedule, and the snapshot schedule, in a fixed order. Comments,
 * ordering and the file's path do not change it, so one file copied to several
 * hosts is one configuration. A file without scopes or accounts has no lines
 * for them, so its hash is the one it had before they existed.
 */
export function configHash(file: TargetsFile): string {
  const lines = [
    ...file.targets.map((t) => `${tripleKey(t)} ${scheduleKey(t.schedule, t.account)}`),
    ...file.scopes.map((s) => `${s.key} ${scheduleKey(s.schedule, s.account)}`),
    ...file.accounts
      .filter((a) => a !== IMPLIED_ACCOUNT)
      .map((a) => `account ${a.name} ${a.apiKeyEnv} ${a.rateLimitPerSecond ?? '-'} ${a.baseUrl ?? '-'}`),
  ].sort();
  lines.push(`snapshot ${scheduleKey(file.snapshot)}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const short = (hash: string) => hash.slice(0, 12);

/** An owner as an operator needs it to find the process: file, host, pid, and when it was last heard of. */
function describeOwner(owner: ScheduleOwner): string {
  const seen = owner.heartbeat_age_seconds === null ? 'no process running it' : `last heartbeat ${owner.heartbeat_age_seconds} s ago`;
  return (
    `${owner.targets_file} on ${owner.host} (pid ${owner.pid}, ${owner.command}, config ${short(owner.config_hash)}, ` +
    `${owner.target_count} targets, since ${owner.claimed_at.toISOString()}; ${seen})`
  );
}

export interface ClaimOptions {
  targetsFile: string;
  command: 'start' | 'schedule' | 'sync';
  /** Replace a live owner's configuration (only start and schedule offer it: they also replace the schedules). */
  takeOver: boolean;
}

/**
 * Claims the schedule for `file` before its targets are written, or throws a
 * ConfigError (exit 2) naming the live owner. Replacing another configuration
 * is said on stderr and in the log. Returns the claim, for holdSchedule.
 */
export async function takeSchedule(
  sql: Sql,
  file: TargetsFile,
  options: ClaimOptions,
  logger: Logger,
  print: (line: string) => void,
): Promise<Claimant> {
  const hash = configHash(file);
  const me: Claimant = {
    configHash: hash,
    targetsFile: resolve(options.targetsFile),
    host: hostname(),
    pid: process.pid,
    command: options.command,
    targetCount: file.targets.length,
    keepsHeartbeat: options.command === 'start',
  };
  const { claimed, previous } = await claimSchedule(sql, me, options.takeOver, STALE_AFTER_SECONDS);
  if (!claimed) {
    const remedy =
      options.command === 'sync' ? 'run `schedule --take-over` with this file first to replace them' : 'pass --take-over to replace them';
    throw new ConfigError(options.targetsFile, [
      `another configuration owns the targets and schedules: ${describeOwner(previous!)}; this file is config ${short(hash)}. ` +
        `Stop that process or give it this file, or ${remedy}`,
    ]);
  }
  if (previous && previous.config_hash !== hash) {
    const message = `${previous.live ? 'taking over from a running configuration' : 'replacing the targets and schedules of'} ${describeOwner(previous)}`;
    // An edited file on its own host is the usual way to change the targets; anything else deserves a look.
    const edited = !previous.live && previous.targets_file === me.targetsFile && previous.host === me.host;
    if (edited) {
      logger.info({ previous_owner: previous, config: hash }, message);
    } else {
      logger.warn({ previous_owner: previous, config: hash }, message);
      print(message);
    }
  }
  return me;
}

export interface HeldSchedule {
  /** Stops the heartbeat and releases the claim (if still held), so a new configuration need not wait. */
  release(): Promise<void>;
}

/**
 * Renews a running `start`'s claim every HEARTBEAT_MS. If another
 * configuration takes the schedule, says so once, at error level, and stops:
 * this process goes on working the queues, which are shared.
 */
export function holdSchedule(sql: Sql, me: Claimant, logger: Logger): HeldSchedule {
  const hash = me.configHash;
  // Postgres away for a moment: the next beat tries again; the claim lasts STALE_AFTER_SECONDS.
  const failed = (error: Error) => logger.warn({ error: error.message }, 'schedule heartbeat failed');
  const sayTakenOver = async () => {
    const owner = await getScheduleOwner(sql, STALE_AFTER_SECONDS);
    logger.error(
      { owner: owner ?? null, config: hash },
      `another configuration took over the targets and schedules: ${owner ? describeOwner(owner) : 'its record is gone'}; ` +
        'this process goes on working the queues; restart it with that targets file, or with --take-over',
    );
  };
  const beats = every(
    HEARTBEAT_MS,
    async () => {
      if (await scheduleHeartbeat(sql, me)) return undefined;
      // The claim is another's: the beats end, even when its owner cannot be read to say so.
      await sayTakenOver().catch(failed);
      return 'stop';
    },
    { onError: failed },
  );
  return {
    async release() {
      await beats.stop();
      try {
        await releaseSchedule(sql, hash);
      } catch (error) {
        // Postgres away at shutdown: the claim goes stale on its own after STALE_AFTER_SECONDS.
        logger.warn({ error: (error as Error).message }, 'could not release the schedule');
      }
    },
  };
}
