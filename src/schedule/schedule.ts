// Schedules as the targets file writes them, and the canonical key that names
// a schedule group in Postgres and in BullMQ.
import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import { DEFAULT_ACCOUNT } from '../config/accounts.js';
import type { Schedule } from '../interfaces.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** Parses "90s", "15m", "1h30m" into milliseconds; throws with the reason. */
export function parseDuration(text: string): number {
  const compact = text.trim();
  if (!DURATION.test(compact)) {
    throw new Error(`"${text}" is not a duration (use a number with ms, s, m, h or d, e.g. 15m or 1h30m)`);
  }
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(amount) * UNIT_MS[unit as string]!;
  }
  return total;
}

/** Throws when the pattern or time zone would be rejected by the scheduler. */
export function checkCron(pattern: string, tz: string): void {
  // The parser reads an empty pattern as every minute; nobody means that by leaving it blank.
  if (pattern.trim() === '') throw new Error(`${JSON.stringify(pattern)} is not a cron pattern: it is empty`);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new Error(`unknown time zone "${tz}"`);
  }
  try {
    CronExpressionParser.parse(pattern, { tz });
  } catch (error) {
    throw new Error(`"${pattern}" is not a cron pattern: ${(error as Error).message}`);
  }
}

/**
 * Stable text naming a schedule group: an account's targets and scopes on
 * equal schedules share one. Each account has its own groups, so a run and
 * its schedule belong to one account and one account's failures leave the
 * others' runs to finish. The implied account adds nothing to the key, so
 * groups keep the keys (and job schedulers) they had before accounts.
 */
export function scheduleKey(schedule: Schedule, account: string = DEFAULT_ACCOUNT): string {
  const key = 'every' in schedule ? `every ${schedule.every}ms` : `cron ${schedule.cron} ${schedule.tz}`;
  return account === DEFAULT_ACCOUNT ? key : `${key} for ${account}`;
}

/** Milliseconds as the targets file writes them: 3600000 is "1h", 5400000 "1h30m". */
export function formatDuration(ms: number): string {
  let rest = ms;
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms']) {
    const size = UNIT_MS[unit]!;
    const amount = Math.floor(rest / size);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * size;
  }
  return text || '0ms';
}

/**
 * A schedule key as a person reads it: "every 1h", "cron 0 3 * * * (Europe/Amsterdam)"; null (a run
 * of every target) stays null. The key itself stays as stored.
 */
export function describeSchedule(key: string): string;
export function describeSchedule(key: string | null): string | null;
export function describeSchedule(key: string | null): string | null {
  if (key === null) return null;
  const [, schedule, account] = /^(.*?)( for [a-z][a-z0-9_-]*)?$/.exec(key)!;
  const every = /^every (\d+)ms$/.exec(schedule!);
  if (every) return `every ${formatDuration(Number(every[1]))}${account ?? ''}`;
  const cron = /^cron (.*) (\S+)$/.exec(schedule!);
  return cron ? `cron ${cron[1]} (${cron[2]})${account ?? ''}` : key;
}

/** The BullMQ job scheduler id for a schedule group (BullMQ ids avoid spaces and colons). */
export function schedulerId(key: string): string {
  return `refresh-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** The latest time, at or before `now`, at which the schedule was due: an interval ago, or a cron pattern's last fire time. */
export function lastDueTime(schedule: Schedule, now: Date): Date {
  if ('every' in schedule) return new Date(now.getTime() - schedule.every);
  return CronExpressionParser.parse(schedule.cron, { tz: schedule.tz, currentDate: now }).prev().toDate();
}

/** Nominal seconds between ticks, for staleness reports: a cron pattern's next two fire times apart. */
export function intervalSeconds(schedule: Schedule, now = new Date()): number {
  if ('every' in schedule) return Math.ceil(schedule.every / 1000);
  const expression = CronExpressionParser.parse(schedule.cron, { tz: schedule.tz, currentDate: now });
  const first = expression.next().getTime();
  return Math.ceil((expression.next().getTime() - first) / 1000);
}
