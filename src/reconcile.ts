// targets -> schedule: the configured triples into Postgres (targets) and
// their schedule groups into BullMQ Job Schedulers.
import type { Sql } from './db.js';
import type { Schedule, Target } from './interfaces.js';
import { reconcileSchedulers, type Queues, type SchedulerChanges } from './queue.js';
import { scheduleKey } from './schedule.js';
import { replaceTargets, type TargetChanges } from './sql/replaceTargets.js';

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
export async function reconcile(sql: Sql, queues: Queues, targets: Target[]): Promise<ReconcileResult> {
  const targetChanges = await replaceTargets(sql, targets);
  const schedulers = await reconcileSchedulers(queues.schedule, scheduleGroups(targets));
  return { targets: targetChanges, schedulers };
}
