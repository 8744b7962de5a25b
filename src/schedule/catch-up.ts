// start -> schedule: a job scheduler ticks at its next time, which after a
// restart can be an hour away; work that fell due while no process ran (or
// while the key was wrong) is ticked at once instead, however often the
// process has started before. So is work whose last attempt failed for a
// reason the operator can fix (a wrong base URL or key, the API away): the
// restart is how the fix is made, and it must not wait an hour to show.
import type { Sql } from '../db/db.js';
import type { Schedule } from '../interfaces.js';
import { nextTickAt, tickNow, type Queues } from '../queues/queue.js';
import { tickNowAtStart } from '../work/retry-policy.js';
import { lastDueTime } from './schedule.js';
import { dueGroups } from '../sql/dueGroups.js';

export interface GroupStart {
  key: string;
  /** It has work due: nothing has refreshed it since its last due time. */
  due: boolean;
  /** Its last attempt failed for a reason the operator can fix: it is tried again now. */
  failed: boolean;
  /** Ticked now for that work, rather than left to its scheduler's next tick. */
  tickedNow: boolean;
  /** When its scheduler ticks next, ISO. */
  nextTickAt: string | undefined;
}

/**
 * Names a catch-up tick after the due time it makes up for, so that two
 * `start`s at once (or one restarted quickly) queue one tick, not two: a
 * cron group's last fire time, an `every` group's current interval.
 */
function duePeriod(schedule: Schedule, now: Date): string {
  return String('every' in schedule ? Math.floor(now.getTime() / schedule.every) : lastDueTime(schedule, now).getTime());
}

/** Names a retry tick after the failure it retries: starts at once queue one; a start after it failed again, another. */
const retryOf = (failedAt: Date) => `retry-${failedAt.getTime()}`;

/** Ticks every schedule group with work due now; says for each group what it found and did, and when it ticks next. */
export async function tickDueGroups(sql: Sql, queues: Queues, groups: Map<string, Schedule>, now = new Date()): Promise<GroupStart[]> {
  const found = await dueGroups(
    sql,
    [...groups].map(([key, schedule]) => ({ key, dueSince: lastDueTime(schedule, now) })),
  );
  const starts: GroupStart[] = [];
  for (const [key, schedule] of groups) {
    const group = found.find((g) => g.key === key);
    const next = await nextTickAt(queues.schedule, key);
    const tickedNow = group !== undefined && tickNowAtStart(next, now.getTime());
    if (tickedNow) await tickNow(queues.schedule, key, group.overdue ? duePeriod(schedule, now) : retryOf(group.failedAt!));
    starts.push({
      key,
      due: group?.overdue ?? false,
      failed: group?.failedAt != null,
      tickedNow,
      nextTickAt: next === undefined ? undefined : new Date(next).toISOString(),
    });
  }
  return starts;
}
