// The only module that knows BullMQ names and options: the two queues, the job
// shapes (each naming the deployment that queued it), how refreshes are
// enqueued and how schedule groups become Job Schedulers.
import { DelayedError, Queue, type BackendFactory, type IQueueBackend, type Job, type JobsOptions, type QueueOptions } from 'bullmq';
import pLimit from 'p-limit';
import { DEFAULT_ACCOUNT } from '../config/accounts.js';
import type { Schedule, Triple } from '../interfaces.js';
import { JOB_RETRY } from '../work/retry-policy.js';
import { schedulerId } from '../schedule/schedule.js';

export const REFRESH_QUEUE = 'image-refresh';
const SCHEDULE_QUEUE = 'image-schedule';
export const LIST_QUEUE = 'image-list';

/**
 * An account's queue: each account has its own refresh and list queues and
 * its own request timeline, so a 429 holds back, and a rejected key stops,
 * that account's requests only. The
 * implied account keeps the names queues had before accounts.
 */
export function accountQueueName(queue: typeof REFRESH_QUEUE | typeof LIST_QUEUE, account: string): string {
  return account === DEFAULT_ACCOUNT ? queue : `${queue}.${account}`;
}
export const REFRESH_JOB = 'refresh';
const TICK_JOB = 'tick';
export const SNAPSHOT_JOB = 'snapshot';
const SNAPSHOT_SCHEDULER = 'audit-snapshot';

/** One triple in a refresh job, with the attempts already spent on it. */
export interface RefreshItem extends Triple {
  attempt: number;
  /** 429s in a row so far (retry-policy.ts); absent in jobs queued by older releases. */
  rateLimited?: number;
  /** Set when the GET confirms an absence from this scope's complete listing: a 200 means the image left the scope. */
  confirmScope?: string;
}

/** Every job names the deployment (database) that queued it; jobs queued by older releases do not. */
export interface DeploymentJobData {
  deployment?: string;
}

/** A refresh job refreshes a batch of triples of one account; see fan-out.ts for how batches are claimed. */
export interface RefreshJobData extends DeploymentJobData {
  /** The account's name, never its key; absent in jobs queued before accounts (the implied account's). */
  account?: string;
  items: RefreshItem[];
}

/** Resolves a listing's projects and regions into parts and queues their first pages. */
export interface ExpandJobData extends DeploymentJobData {
  kind: 'expand';
  listingId: number;
  attempt: number;
  rateLimited?: number;
}

/** One page of one part of a listing (listing_pages holds what it asks for). */
export interface PageJobData extends DeploymentJobData {
  kind: 'page';
  listingId: number;
  part: number;
  page: number;
  attempt: number;
  rateLimited?: number;
}

export type ListJobData = ExpandJobData | PageJobData;

/** A tick names its schedule group; a snapshot job carries nothing else. */
export interface TickJobData extends DeploymentJobData {
  scheduleKey?: string;
}

/**
 * Job-level attempts only cover a batch that crashed as a whole (a bug, a
 * lost connection); each triple's own attempts live in its item, and a job
 * that fails for good hands its items back to the policy (failedBatches).
 */
const REFRESH_JOB_OPTIONS: JobsOptions = {
  ...JOB_RETRY.work,
  removeOnComplete: true,
  removeOnFail: { count: 1000 },
};

/**
 * A queue as one deployment sees it: it knows the deployment's identity, which
 * enqueueBatches and reconcileSchedulers put in every job and job scheduler
 * they add, whichever module calls them.
 */
export class DeploymentQueue<D extends DeploymentJobData> extends Queue<D, unknown, string, D, unknown, string, IQueueBackend, unknown> {
  constructor(
    name: string,
    opts: QueueOptions<unknown>,
    factory: BackendFactory<IQueueBackend, unknown> | undefined,
    readonly deployment: string,
  ) {
    super(name, opts, factory as never);
  }
}

/** One account's queues. */
export interface AccountQueues {
  account: string;
  refresh: DeploymentQueue<RefreshJobData>;
  list: DeploymentQueue<ListJobData>;
}

export interface Queues {
  /** The implied account's refresh queue (forAccount(DEFAULT_ACCOUNT).refresh). */
  refresh: DeploymentQueue<RefreshJobData>;
  schedule: DeploymentQueue<TickJobData>;
  /** The implied account's list queue. */
  list: DeploymentQueue<ListJobData>;
  /** An account's queues, opened on first use. */
  forAccount(account: string): AccountQueues;
  /** The queue of this name among those opened so far. */
  named(name: string): DeploymentQueue<DeploymentJobData> | undefined;
  close(): Promise<void>;
}

/**
 * The queues on a store (backend.ts): its connection options for an account's
 * queues, or for no account the schedule queue's (on a Redis Cluster each
 * account's queues have a prefix of their own: redis-keys.ts), and BullMQ's
 * backend factory when it is not Redis.
 */
export function openQueues(
  optionsFor: (account: string | undefined) => QueueOptions<unknown>,
  factory: BackendFactory<IQueueBackend, unknown> | undefined,
  deployment: string,
): Queues {
  const open = <D extends DeploymentJobData>(name: string, account: string | undefined) => {
    const queue = new DeploymentQueue<D>(name, optionsFor(account), factory, deployment);
    // Lost connections are retried by the store's client and reported by the workers; without a listener
    // BullMQ would print each retry's error.
    queue.on('error', () => {});
    return queue;
  };
  const byAccount = new Map<string, AccountQueues>();
  const forAccount = (account: string): AccountQueues => {
    let queues = byAccount.get(account);
    if (!queues) {
      queues = {
        account,
        refresh: open<RefreshJobData>(accountQueueName(REFRESH_QUEUE, account), account),
        list: open<ListJobData>(accountQueueName(LIST_QUEUE, account), account),
      };
      byAccount.set(account, queues);
    }
    return queues;
  };
  const implied = forAccount(DEFAULT_ACCOUNT);
  const schedule = open<TickJobData>(SCHEDULE_QUEUE, undefined);
  return {
    refresh: implied.refresh,
    schedule,
    list: implied.list,
    forAccount,
    named: (name) =>
      [schedule, ...[...byAccount.values()].flatMap((q) => [q.refresh, q.list])].find((q) => q.name === name) as
        DeploymentQueue<DeploymentJobData> | undefined,
    async close() {
      await Promise.all([schedule.close(), ...[...byAccount.values()].flatMap((q) => [q.refresh.close(), q.list.close()])]);
    },
  };
}

export interface RefreshBatch {
  /** The id its targets were claimed under (targets.queued_job). */
  jobId: string;
  items: RefreshItem[];
}

/** Queues claimed batches of an account as refresh jobs on its queue, optionally after a delay, or ahead of those waiting (`lifo`). */
export async function enqueueBatches(
  queues: AccountQueues,
  batches: RefreshBatch[],
  delayMs = 0,
  { lifo = false }: { lifo?: boolean } = {},
): Promise<void> {
  if (batches.length === 0) return;
  const queue = queues.refresh;
  await queue.addBulk(
    batches.map((batch) => ({
      name: REFRESH_JOB,
      data: { deployment: queue.deployment, account: queues.account, items: batch.items },
      opts: { ...REFRESH_JOB_OPTIONS, jobId: batch.jobId, delay: delayMs, lifo },
    })),
  );
}

/**
 * Queues listing jobs under ids made from what they do, so a retried tick or a
 * page answered twice queues each job once. Listing ids are serials of one
 * database: the deployment in the id keeps two deployments' jobs apart.
 */
export async function enqueueListJobs(
  queue: DeploymentQueue<ListJobData>,
  jobs: Array<Omit<ExpandJobData, 'deployment'> | Omit<PageJobData, 'deployment'>>,
): Promise<void> {
  if (jobs.length === 0) return;
  await queue.addBulk(
    jobs.map((job) => ({
      name: job.kind,
      data: { ...job, deployment: queue.deployment },
      opts: {
        ...REFRESH_JOB_OPTIONS,
        jobId: job.kind === 'expand' ? `expand-${job.listingId}` : `page-${job.listingId}-${job.part}-${job.page}`,
      },
    })),
  );
}

/** The id prefix of the refresh jobs that confirm what a listing did not return (deployment-unique, as for listing jobs). */
export function confirmJobPrefix(queue: DeploymentQueue<RefreshJobData>, listingId: number): string {
  return `confirm-${queue.deployment}-${listingId}`;
}

/** Which of these job ids no longer exist in the queue store (a lost job leaves its claims behind). */
export async function missingJobs(queue: DeploymentQueue<RefreshJobData>, jobIds: string[]): Promise<string[]> {
  const limit = pLimit(16);
  const states = await Promise.all(jobIds.map((id) => limit(() => queue.getJobState(id))));
  return jobIds.filter((_, n) => states[n] === 'unknown');
}

/**
 * How often a job may be found stalled (its worker died or hung past its lock)
 * and be run again before it fails: enough for a few crashed workers, few
 * enough that a batch that kills its workers ends.
 */
export const MAX_STALLED_COUNT = 3;

/** A refresh job that failed for good (its attempts spent, or stalled too often), kept until someone takes it. */
export interface FailedBatch {
  jobId: string;
  items: RefreshItem[];
  reason: string;
  /** Removes the job; true for exactly one of the processes that try, which then owns its items. */
  take(): Promise<boolean>;
}

/**
 * Failed refresh jobs of this deployment (or of a release older than deployment
 * identities), up to `limit`. Another deployment's failed jobs are left for its
 * own workers: their images are in its database, not this one.
 */
export async function failedBatches(
  queue: DeploymentQueue<RefreshJobData>,
  takeFailed: (job: Job) => Promise<boolean>,
  limit = 100,
): Promise<FailedBatch[]> {
  const own: Job<RefreshJobData>[] = [];
  // Paged, so that another deployment's failed jobs ahead of ours cannot hide ours.
  for (let start = 0; own.length < limit; start += limit) {
    const jobs = await queue.getFailed(start, start + limit - 1);
    for (const job of jobs) {
      if (job?.data?.items === undefined) continue;
      const owner = jobDeployment(job);
      if (owner === undefined || owner === queue.deployment) own.push(job);
    }
    if (jobs.length < limit) break;
  }
  return own.slice(0, limit).map((job) => ({
    jobId: job.id!,
    items: job.data.items,
    reason: job.failedReason || 'unknown reason',
    take: () => takeFailed(job),
  }));
}

export interface SchedulerChanges {
  upserted: number;
  removed: number;
}

const TICK_JOB_OPTIONS: JobsOptions = {
  ...JOB_RETRY.tick,
  removeOnComplete: 100,
  removeOnFail: 100,
};

/**
 * One Job Scheduler per schedule group, whose tick fans out the group's
 * refreshes, and one for audit snapshots. Upserts are idempotent; schedulers
 * of groups no longer configured are removed. Scheduler ids end with the
 * deployment's identity, and schedulers of another deployment are left alone,
 * so deployments that share a prefix by mistake do not replace or remove each
 * other's schedules.
 */
export async function reconcileSchedulers(
  queue: DeploymentQueue<TickJobData>,
  groups: Map<string, Schedule>,
  snapshot: Schedule,
): Promise<SchedulerChanges> {
  const { deployment } = queue;
  const wanted = new Map<string, { name: string; key?: string; schedule: Schedule }>([
    ...[...groups].map(([key, schedule]): [string, { name: string; key: string; schedule: Schedule }] => [
      `${schedulerId(key)}-${deployment}`,
      { name: TICK_JOB, key, schedule },
    ]),
    [`${SNAPSHOT_SCHEDULER}-${deployment}`, { name: SNAPSHOT_JOB, schedule: snapshot }],
  ]);
  const limit = pLimit(8);
  await Promise.all(
    [...wanted].map(([id, { name, key, schedule }]) =>
      limit(() =>
        queue.upsertJobScheduler(id, 'every' in schedule ? { every: schedule.every } : { pattern: schedule.cron, tz: schedule.tz }, {
          name,
          data: key === undefined ? { deployment } : { deployment, scheduleKey: key },
          opts: TICK_JOB_OPTIONS,
        }),
      ),
    ),
  );
  const existing = await queue.getJobSchedulers(0, -1);
  const own = existing.filter((s) => (s.template?.data?.deployment ?? deployment) === deployment);
  const stale = own.filter((s) => !wanted.has(s.key));
  await Promise.all(stale.map((s) => limit(() => queue.removeJobScheduler(s.key))));
  return { upserted: groups.size, removed: stale.length };
}

/** When a schedule group's scheduler ticks next (ms since the epoch); undefined when it has none. */
export async function nextTickAt(queue: DeploymentQueue<TickJobData>, key: string): Promise<number | undefined> {
  return (await queue.getJobScheduler(`${schedulerId(key)}-${queue.deployment}`))?.next ?? undefined;
}

/**
 * Queues a tick of a schedule group now, beside its scheduler's own: `start`
 * catching up on what is due. One tick per `period` (see catch-up.ts): a
 * second request for the same period finds the job and adds nothing.
 */
export async function tickNow(queue: DeploymentQueue<TickJobData>, key: string, period: string): Promise<void> {
  const { deployment } = queue;
  await queue.add(
    TICK_JOB,
    { deployment, scheduleKey: key },
    { ...TICK_JOB_OPTIONS, jobId: `due-${schedulerId(key)}-${deployment}-${period}` },
  );
}

/** The deployment that queued a job; undefined for a job queued by a release older than deployment identities. */
export function jobDeployment(job: Job<DeploymentJobData>): string | undefined {
  return job.data.deployment;
}

/**
 * Hands an active job back to the queue, to be taken again after `delayMs`
 * without spending an attempt. The processor then throws the error returned.
 */
export async function handBack(job: Job, token: string | undefined, delayMs: number): Promise<DelayedError> {
  await job.moveToDelayed(Date.now() + delayMs, token);
  return new DelayedError();
}

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;
export type QueueDepth = Record<(typeof STATES)[number], number>;

const depth = async <D extends DeploymentJobData>(queue: DeploymentQueue<D>) => (await queue.getJobCounts(...STATES)) as QueueDepth;

/** Jobs by state in the schedule queue and in each account's refresh and list queues. */
export async function queueDepths(
  queues: Queues,
  accounts: string[],
): Promise<{ schedule: QueueDepth; accounts: Record<string, { refresh: QueueDepth; list: QueueDepth }> }> {
  const [schedule, ...perAccount] = await Promise.all([
    depth(queues.schedule),
    ...accounts.map(async (account) => {
      const { refresh, list } = queues.forAccount(account);
      return { refresh: await depth(refresh), list: await depth(list) };
    }),
  ]);
  return { schedule: schedule, accounts: Object.fromEntries(accounts.map((account, n) => [account, perAccount[n]!])) };
}

/** Whether no refresh or listing job of these accounts is waiting, delayed or running anywhere. */
export async function refreshQueueIdle(queues: Queues, accounts: string[]): Promise<boolean> {
  const counts = await Promise.all(
    accounts
      .flatMap((account) => [queues.forAccount(account).refresh, queues.forAccount(account).list])
      .map((queue) => queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')),
  );
  return counts.every((c) => Object.values(c).every((n) => n === 0));
}
