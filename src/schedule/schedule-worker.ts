// The BullMQ worker for schedule ticks: a tick opens its group's run and fans
// it out into refresh batches; the snapshot job takes an audit snapshot.
import type { Job, Worker } from 'bullmq';
import type { LockSettings } from '../work/account-context.js';
import type { QueueBackend } from '../queues/backend.js';
import type { Sql } from '../db/db.js';
import type { DeploymentGuard } from '../queues/deployment-guard.js';
import { queueListings, queueRefreshes } from '../work/fan-out.js';
import type { Logger } from '../ops/logger.js';
import { finishRunsSaying, sayRunStarted } from '../ops/run-log.js';
import { SNAPSHOT_JOB, type Queues, type TickJobData } from '../queues/queue.js';
import { pruneOperational, type PruneBatches } from '../sql/pruneOperational.js';
import { startRun } from '../sql/startRun.js';
import { takeSnapshot } from '../sql/takeSnapshot.js';

export interface ScheduleWorkerDeps {
  sql: Sql;
  backend: QueueBackend;
  queues: Queues;
  logger: Logger;
  batchSize: number;
  retentionDays: number;
  workerOptions: LockSettings;
  workerId: string;
  /** Hands back jobs of another deployment before anything is done with them. */
  guard: DeploymentGuard;
}

export function startScheduleWorker(deps: ScheduleWorkerDeps): Worker<TickJobData> {
  const { sql, queues, logger } = deps;

  async function processTick(job: Job<TickJobData>, token?: string): Promise<number> {
    await deps.guard.check(job, token);
    if (job.name === SNAPSHOT_JOB) {
      const snapshot = await takeSnapshot(sql, `tick:${job.id}`);
      logger.info({ snapshot_id: snapshot.id, images: snapshot.imageCount, digest: snapshot.digest }, 'audit snapshot');
      return snapshot.imageCount;
    }
    const scheduleKey = job.data.scheduleKey!;
    const run = await startRun(sql, { kind: 'scheduled', scheduleKey, trigger: `tick:${job.id}` });
    const fanOut = await queueRefreshes(sql, queues, { scheduleKey }, `t${run.id}`, deps.batchSize);
    await queueListings(queues, run.listings);
    await sayRunStarted(queues, logger, run, scheduleKey, fanOut);
    await finishRunsSaying(sql, queues, logger);
    sayPruned(logger, await pruneOperational(sql, deps.retentionDays), deps.retentionDays);
    return fanOut.queued;
  }

  return deps.backend.worker<TickJobData>(queues.schedule, processTick, {
    ...deps.workerOptions,
    name: `schedule-${deps.workerId}`,
    concurrency: 1,
  });
}

/** One line for a prune that removed anything: the rows per table, and in how many batches. */
function sayPruned(logger: Logger, pruned: PruneBatches, retentionDays: number): void {
  const batches = Object.values(pruned).flat();
  if (batches.length === 0) return;
  const rows = (counts: number[]) => counts.reduce((sum, n) => sum + n, 0);
  logger.info(
    {
      runs: rows(pruned.runs),
      listings: rows(pruned.listings),
      listing_pages: rows(pruned.listingPages),
      listing_samples: rows(pruned.listingSamples),
      failures: rows(pruned.failures),
      batches: batches.length,
      retention_days: retentionDays,
    },
    'pruned rows past the retention',
  );
}
