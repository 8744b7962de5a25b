// start -> schedule: a job scheduler ticks at its next time, which after a
// restart can be an hour away; work that fell due while no process ran (or
// while the key was wrong) is ticked at once instead, however often the
// process has started before.
import type { Sql } from './db.js';
import type { Schedule } from './interfaces.js';
import { nextTickAt, tickNow, type Queues } from './queue.js';
import { lastDueTime } from './schedule.js';
import { dueGroups } from './sql/dueGroups.js';

/** A scheduler about to tick anyway (a new `every` one ticks at once) needs no second run beside it. */
const TICKS_SOON_MS = 60_000;

export interface GroupStart {
  key: string;
  /** Ticked now because it had work due. */
  ticked: boolean;
  /** When its scheduler ticks next, ISO. */
  nextTickAt: string | undefined;
}

/** Ticks every schedule group with work due now; says for each group what it did and when it ticks next. */
export async function tickDueGroups(sql: Sql, queues: Queues, groups: Map<string, Schedule>, now = new Date()): Promise<GroupStart[]> {
  const due = new Set(
    await dueGroups(
      sql,
      [...groups].map(([key, schedule]) => ({ key, dueSince: lastDueTime(schedule, now) })),
    ),
  );
  const starts: GroupStart[] = [];
  for (const key of groups.keys()) {
    const next = await nextTickAt(queues.schedule, key);
    const ticked = due.has(key) && (next === undefined || next - now.getTime() > TICKS_SOON_MS);
    if (ticked) await tickNow(queues.schedule, key);
    starts.push({ key, ticked, nextTickAt: next === undefined ? undefined : new Date(next).toISOString() });
  }
  return starts;
}
