// Schedules as the targets file writes them, and the canonical key that names
// a schedule group in Postgres and in BullMQ.
import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import type { Schedule } from './interfaces.js';

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

/** Stable text naming a schedule: equal schedules share one key. */
export function scheduleKey(schedule: Schedule): string {
  return 'every' in schedule ? `every ${schedule.every}ms` : `cron ${schedule.cron} ${schedule.tz}`;
}

/** The BullMQ job scheduler id for a schedule group (BullMQ ids avoid spaces and colons). */
export function schedulerId(key: string): string {
  return `refresh-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** Nominal seconds between ticks, for staleness reports: a cron pattern's next two fire times apart. */
export function intervalSeconds(schedule: Schedule, now = new Date()): number {
  if ('every' in schedule) return Math.ceil(schedule.every / 1000);
  const expression = CronExpressionParser.parse(schedule.cron, { tz: schedule.tz, currentDate: now });
  const first = expression.next().getTime();
  return Math.ceil((expression.next().getTime() - first) / 1000);
}
