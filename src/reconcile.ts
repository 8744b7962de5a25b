// targets -> schedule: the configured triples into Postgres (targets) and
// their schedule groups (and the audit snapshot) into BullMQ Job Schedulers.
import type { Sql } from './db.js';
import type { Schedule, Target } from './interfaces.js';
import { reconcileSchedulers, type Queues, type SchedulerChanges } from './queue.js';
import { scheduleKey } from './schedule.js';
import { replaceTargets, type TargetChanges } from './sql/replaceTargets.js';
import { DEFAULT_SNAPSHOT_SCHEDULE } from './targets.js';

export interface ReconcileResult {
  targets: TargetChanges;
  schedulers: SchedulerChanges;
}

export function scheduleGroups(targets: Target[]): Map<string, Schedule> {
  const groups = new Map<string, Schedule>();
  for (const target of targets) groups.set(scheduleKey(target.schedule), target.schedule);
  return groups;
}

/** Idempotent: running it twice, or from two processes at once, changes nothing more. */
export async function reconcile(
  sql: Sql,
  queues: Queues,
  targets: Target[],
  snapshot: Schedule = DEFAULT_SNAPSHOT_SCHEDULE,
): Promise<ReconcileResult> {
  const targetChanges = await replaceTargets(sql, targets);
  const schedulers = await reconcileSchedulers(queues.schedule, scheduleGroups(targets), snapshot);
  return { targets: targetChanges, schedulers };
}
