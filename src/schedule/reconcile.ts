// targets -> schedule: the configured triples and scopes into Postgres (targets, scopes) and
// their schedule groups (and the audit snapshot) into BullMQ Job Schedulers.
import type { Account } from '../config/accounts.js';
import type { Sql } from '../db/db.js';
import type { Schedule, Target } from '../interfaces.js';
import { reconcileSchedulers, type Queues, type SchedulerChanges } from '../queues/queue.js';
import { scheduleKey } from './schedule.js';
import type { Scope } from '../config/scope.js';
import { replaceTargets, type TargetChanges } from '../sql/replaceTargets.js';
import { DEFAULT_SNAPSHOT_SCHEDULE } from '../config/targets.js';

export interface ReconcileResult {
  targets: TargetChanges;
  schedulers: SchedulerChanges;
}

/** The schedule groups of the explicit targets and the discovery scopes: one Job Scheduler each. */
export function scheduleGroups(targets: Array<{ account: string; schedule: Schedule }>): Map<string, Schedule> {
  const groups = new Map<string, Schedule>();
  for (const target of targets) groups.set(scheduleKey(target.schedule, target.account), target.schedule);
  return groups;
}

export interface ReconcileOptions {
  snapshot?: Schedule;
  scopes?: Scope[];
  /** The implied account alone when absent. */
  accounts?: Account[];
}

/** Idempotent: running it twice, or from two processes at once, changes nothing more. */
export async function reconcile(sql: Sql, queues: Queues, targets: Target[], options: ReconcileOptions = {}): Promise<ReconcileResult> {
  const scopes = options.scopes ?? [];
  const targetChanges = await replaceTargets(sql, targets, scopes, options.accounts);
  const schedulers = await reconcileSchedulers(
    queues.schedule,
    scheduleGroups([...targets, ...scopes]),
    options.snapshot ?? DEFAULT_SNAPSHOT_SCHEDULE,
  );
  return { targets: targetChanges, schedulers };
}
