// Every retry, backoff, hand-back and look-again delay of the project, each a
// named decision with the reason for its numbers, and the refresh policy that
// chooses among them after a request failed (decide). Nothing here waits:
// the callers carry the decisions out, and no other module picks a retry
// delay of its own. The schemes:
// - exponential backoff (backoffMs): a try that failed may pass later, so the
//   waits grow: API_BACKOFF, WEBHOOK_BACKOFF, BROKER_BACKOFF, STORE_AWAY.timeline, JOB_RETRY;
// - as asked: a 429 waits what the API asked for, up to the cap (rateLimitPause);
// - store away: Postgres or the queue store did not answer; the work waits and
//   runs again without spending an attempt (STORE_AWAY, decideBatchError);
// - hand back: work this process may not do goes back to the queue for
//   another process (HAND_BACK);
// - look again: a wait for something another process does (POLL), and work
//   presumed lost after a while, queued again (LOST, tickNowAtStart).
import type { BackoffOptions, JobsOptions } from 'bullmq';
import { AuthenticationError, GcoreApiError, overCapText, RateLimitedError, RequestWithheldError } from '../gcore/gcore-errors.js';
import { InvalidPayloadError } from '../images/image-payload.js';
import { isTransientStoreError, UnstorableImageError } from '../db/store-errors.js';

/** What the policy reads and counts on the thing it decides about: an image of a batch, or a page of a listing. */
export interface Attempts {
  /** Attempts spent so far. */
  attempt: number;
  /** 429s in a row so far; absent in jobs queued by older releases. */
  rateLimited?: number;
}

export interface RetryPolicy {
  /** Attempts per image before its failure is recorded (SYNC_ATTEMPTS). */
  attempts: number;
  /** The longest 429 wait honoured; a longer one ends the refresh as a recorded failure. */
  rateLimitMaxWaitMs: number;
  /** 429s in a row that spend no attempt; each one after them spends one, so every refresh ends. */
  freeRateLimitRetries: number;
}

/**
 * 429s in a row that spend no attempt: a limit shared with other clients of
 * the account can answer 429 a few times running through no fault of the
 * image's; past three, each spends one, so every refresh ends.
 */
export const FREE_RATE_LIMIT_RETRIES = 3;

/** A 429 without a usable Retry-After waits 1 s: the window of a per-second limit, which is how Gcore limits requests. */
export const RATE_LIMIT_DEFAULT_WAIT_MS = 1000;

/** Exponential backoff: `firstMs` after the first failure, doubling after each, up to `maxMs`, less up to `jitter` (a fraction) of it at random. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
  jitter: number;
}

/** The wait after `failures` failures in a row (the first failure and none count alike): min(firstMs * 2^(failures-1), maxMs), less the jitter. */
export function backoffMs(backoff: Backoff, failures: number, random = Math.random): number {
  const base = Math.min(backoff.firstMs * 2 ** Math.max(failures - 1, 0), backoff.maxMs);
  return Math.round(base * (1 - backoff.jitter * random()));
}

/**
 * A request to the API that failed and may pass later (a 5xx, a timeout, a
 * refused connection): 0.5 s doubling to 8 s, less up to 25 %, the numbers
 * of Gcore's own SDKs, so the API is retried at the pace its owner expects.
 * The jitter spreads the images of a batch that failed together over the
 * wait, rather than sending them back at the same instant.
 */
export const API_BACKOFF: Backoff = { firstMs: 500, maxMs: 8000, jitter: 0.25 };

/**
 * A webhook receiver that failed a delivery: 1 s doubling to a minute. The
 * changes wait in Postgres meanwhile, so a slow retry loses nothing, and a
 * receiver down for an hour is asked once a minute, not flooded. One sender
 * per process, so no jitter is needed to keep senders apart.
 */
export const WEBHOOK_BACKOFF: Backoff = { firstMs: 1000, maxMs: 60_000, jitter: 0 };

/**
 * A customer's AMQP broker that is away (restarting, unreachable, refusing):
 * 0.5 s doubling to 30 s, less up to 25 %. A restart is mostly over within
 * seconds, so the first tries come soon; a broker away for an hour is asked
 * twice a minute by each worker, and the jitter keeps a deployment's workers
 * from knocking all at once when it comes back. Polls go on meanwhile, so
 * nothing is lost while it is away, only the pushes' speed.
 */
export const BROKER_BACKOFF: Backoff = { firstMs: 500, maxMs: 30_000, jitter: 0.25 };

/**
 * A wake-up from the broker that could not be taken (the wake threw) goes
 * back to the queue after 1 s: at once, it would come straight back to this
 * or another worker and spin on the same failure.
 */
export const WAKE_REQUEUE_MS = 1000;

/** How long a webhook sender waits before its next look: at once after a full batch, the backoff after a failure, else its poll interval. */
export function webhookWaitMs(failures: number, sent: number, options: { batchSize: number; pollMs: number }): number {
  if (failures > 0) return backoffMs(WEBHOOK_BACKOFF, failures);
  return sent === options.batchSize ? 0 : options.pollMs;
}

/**
 * Postgres or the queue store did not answer (a restart, killed
 * connections, a deadlock): the work waits and runs again, spending no
 * attempt, as all its writes are idempotent.
 */
export const STORE_AWAY = {
  /** A job whose writes failed is moved to delayed for 2 s: long enough not to spin on a store that restarts, short enough that a deadlock's loser goes on soon. */
  jobMs: 2000,
  /**
   * A call to the request timeline (rate-limiter.ts): 100 ms first, as a blip
   * (a failover, a killed connection) is mostly over by then, doubling to 2 s,
   * so a store away for long is asked every 2 s by each waiting request. No
   * jitter: each call is one small command, and no request is sent meanwhile.
   */
  timeline: { firstMs: 100, maxMs: 2000, jitter: 0 } satisfies Backoff,
  /** `sync --wait` looks at its run once a second while Postgres does not answer, not every POLL.runMs: the run cannot move meanwhile, and each look is a connection attempt. */
  waiterPollMs: 1000,
  /** A process using the embedded server checks every 5 s that it runs, and starts it again until it does: queries fail meanwhile (and wait as a store away), so it must come back soon, without spinning on a start that fails. */
  embeddedCheckMs: 5000,
} as const;

/**
 * BullMQ's own backoff, for a job that threw as a whole (a bug, a lost
 * connection): each image's or page's attempts live in its item and follow
 * decide(). 2 s doubling: a job that threw is likelier a bug than a blip, so
 * its few attempts (JOB_RETRY) end soon; BullMQ's exponential backoff has no
 * cap, which those few attempts make moot.
 */
export const JOB_BACKOFF: Backoff = { firstMs: 2000, maxMs: Number.POSITIVE_INFINITY, jitter: 0 };

/** A Backoff as BullMQ's built-in exponential one (no cap, no jitter: the only ones it computes alike). */
export function jobBackoff(backoff: Backoff): BackoffOptions {
  if (backoff.maxMs !== Number.POSITIVE_INFINITY || backoff.jitter !== 0) throw new Error('BullMQ backs off without a cap or jitter');
  return { type: 'exponential', delay: backoff.firstMs };
}

export const JOB_RETRY = {
  /** Refresh and listing jobs, three attempts (waits of 2 and 4 s): then a failed job's items go back to the policy one by one (queue.ts failedBatches). */
  work: { attempts: 3, backoff: jobBackoff(JOB_BACKOFF) },
  /** A tick, five (waits of 2 to 16 s): a tick lost is work not done until the next one, which may be a day away. */
  tick: { attempts: 5, backoff: jobBackoff(JOB_BACKOFF) },
} as const satisfies Record<string, Pick<JobsOptions, 'attempts' | 'backoff'>>;

/** Work this process may not do goes back to the queue for another process, spending no attempt. */
export const HAND_BACK = {
  /**
   * Images whose requests this process withheld (its key was rejected) are
   * queued again at once, under a new job: this process's refresh worker of
   * the account is paused once its key is rejected, so only a process whose
   * key works takes them.
   */
  withheldRefreshMs: 0,
  /**
   * A listing job whose request this process withheld goes back as the same
   * job, to be taken after 2 s: this process's listing worker is being paused
   * meanwhile (worker.ts), and must not take the job straight back.
   */
  withheldListingMs: 2000,
  /** A job of another deployment is offered again after 1 s: long enough not to spin, short enough not to hold up its owner. */
  foreignJobMs: 1000,
} as const;

/** A look again at something another process (or the server) does, until it is so. */
export const POLL = {
  /** `sync --wait` looks at its run 4 times a second: progress that moves as it happens, for one small query. */
  runMs: 250,
  /**
   * ...but after a look that took t, it waits at least 4 t: the live count
   * reads every target of the run (a second at 100,000 on a busy 2-core
   * machine), and looking back to back would spend a database core on the
   * wait instead of the refresh. So the wait's reads take at most a fifth of
   * one core, at any scale.
   */
  runReadFactor: 4,
  /** `sync --wait` runs the exact completeness check and looks for lost refreshes every 5 s: the look reads every queue of the run's accounts. */
  runCheckMs: 5000,
  /** A process without a rate limit looks for a 429 pause set by another at most every 250 ms: it holds back within a quarter second, at one store read per 250 ms, not one per request. */
  pauseMs: 250,
  /**
   * An audit-log follower looks again no sooner than 1 s, when a poll is due
   * but another process holds the lease: a sooner look would find it held
   * still, and the followers of every process share the lease's one row.
   */
  auditMinMs: 1000,
  /** The end of an embedded server's process, or the release of its home's lock, is looked for every 50 ms: each look is a kill(pid, 0) or a file create. */
  embeddedMs: 50,
  /** A lock of the embedded home is waited for 90 s before giving up: longer than a start (pg_ctl waits 60 s) and a stop (10 s) another process does under it. */
  embeddedLockMs: 90_000,
} as const;

/** How long an audit-log follower waits for its next look: until the poll is due, at least POLL.auditMinMs, at most its poll interval. */
export function auditWaitMs(dueAt: number, now: number, pollMs: number): number {
  return Math.min(Math.max(dueAt - now, POLL.auditMinMs), pollMs);
}

/** Work that should have run by now and has not (its job lost, or due while no process ran) is queued again after these bounds. */
export const LOST = {
  /** A claim younger than 5 s may belong to a job being added right now, and is not freed as lost by a waiter. */
  claimSettleMs: 5000,
  /** A claim a minute old whose job is gone from the queue store was lost (the store lost data or was switched, or the add failed): a claim becomes a job moments after it is made. */
  claimMs: 60_000,
  /** An audit follower's claim 30 s old whose job is not in the queue was never queued (its process died first): a live follower queues its claims moments after making them. */
  unqueuedClaimMs: 30_000,
  /**
   * A listing open 5 minutes may have lost its jobs (with the store's data, or
   * a crash between a commit and a queueing): they are queued again, which
   * costs nothing when they exist (a job is not added twice).
   */
  listingMs: 5 * 60_000,
  /** A worker looks for refreshes of open runs whose jobs were lost at start and every 10 minutes: a lost job is rare (a store emptied or switched), and the next tick would queue it anyway, perhaps a day later. */
  sweepMs: 10 * 60_000,
  /** A scheduler that ticks within a minute anyway needs no catch-up tick beside it at start (tickNowAtStart). */
  ticksSoonMs: 60_000,
} as const;

/**
 * Whether `start` ticks a group with work due (or failed) now, rather than
 * leave it to its scheduler: unless the scheduler ticks within a minute
 * anyway (a new `every` one ticks at once, an overdue one at its first
 * chance), which needs no second run beside it.
 */
export function tickNowAtStart(nextTickAt: number | undefined, now: number): boolean {
  return nextTickAt === undefined || nextTickAt - now > LOST.ticksSoonMs;
}

/** The batch job an image was in failed for good (a crash, or stalled too often): its images are decided one by one. */
export class BatchFailedError extends Error {
  constructor(reason: string) {
    super(`its batch job failed: ${reason}`);
    this.name = 'BatchFailedError';
  }
}

/** What a failure is, for sync_failures, targets.last_error and the log. */
export interface FailureInfo {
  status: number | null;
  errorClass: string;
  message: string;
}

export type Decision<T extends Attempts> =
  /** Queue the image again after `delayMs`, with its counters as in `item`. */
  | { kind: 'retry'; item: T; delayMs: number; failure: FailureInfo }
  /** Queue the image again now, untried and unspent (this process may not send). */
  | { kind: 'hand-back'; item: T }
  /** Record the failure; after a rejected key this process stops taking refreshes. */
  | { kind: 'fail'; failure: FailureInfo; attempts: number; stopWorker: boolean };

/** Backoff before attempt n+1 of a request to the API (API_BACKOFF). */
export function retryDelayMs(attemptsMade: number, random = Math.random): number {
  return backoffMs(API_BACKOFF, attemptsMade, random);
}

/** Whether an error is worth another attempt, and how it reads. */
export function describeFailure(error: unknown): FailureInfo & { retryable: boolean } {
  if (error instanceof GcoreApiError) {
    return { status: error.status ?? null, errorClass: error.name, message: error.message, retryable: error.retryable };
  }
  if (error instanceof InvalidPayloadError || error instanceof UnstorableImageError) {
    return { status: 200, errorClass: error.name, message: error.message, retryable: false };
  }
  // Anything else (a bug, a constraint we did not expect) may pass: try again.
  const e = error as Error | undefined;
  return { status: null, errorClass: e?.name ?? 'Error', message: String(e?.message ?? error), retryable: true };
}

function decideRateLimited<T extends Attempts>(error: RateLimitedError, item: T, policy: RetryPolicy): Decision<T> {
  const failure = describeFailure(error);
  const wait = error.retryAfterMs;
  if (wait > policy.rateLimitMaxWaitMs) {
    const message = `${failure.message} (${overCapText(wait, policy.rateLimitMaxWaitMs)})`;
    return { kind: 'fail', failure: { ...failure, message }, attempts: item.attempt + 1, stopWorker: false };
  }
  const inARow = (item.rateLimited ?? 0) + 1;
  if (inARow <= policy.freeRateLimitRetries) return { kind: 'retry', item: { ...item, rateLimited: inARow }, delayMs: wait, failure };
  const attempt = item.attempt + 1;
  if (attempt >= policy.attempts) return { kind: 'fail', failure, attempts: attempt, stopWorker: false };
  return { kind: 'retry', item: { ...item, attempt, rateLimited: inARow }, delayMs: wait, failure };
}

/** A pause of an account's requests after a 429: how long, and how long the API asked for (more when over the cap). */
export interface RateLimitPause {
  pauseMs: number;
  askedMs: number;
}

/**
 * How long every process holds back the account's requests after a 429: as
 * asked, up to the cap. What was asked goes with it, so that a request that
 * would have to wait through a pause the API asked to be longer than the cap
 * fails at once, in any process (rate-limiter.ts), rather than waiting the cap out.
 */
export function rateLimitPause(error: RateLimitedError, policy: RetryPolicy): RateLimitPause {
  return { pauseMs: Math.min(error.retryAfterMs, policy.rateLimitMaxWaitMs), askedMs: error.retryAfterMs };
}

/** The policy: what to do with `item` after `error`. */
export function decide<T extends Attempts>(error: unknown, item: T, policy: RetryPolicy): Decision<T> {
  if (error instanceof RequestWithheldError) return { kind: 'hand-back', item };
  if (error instanceof RateLimitedError && error.retryable) return decideRateLimited(error, item, policy);
  const failure = describeFailure(error);
  const attempt = item.attempt + 1;
  if (failure.retryable && attempt < policy.attempts) {
    return { kind: 'retry', item: { ...item, attempt, rateLimited: 0 }, delayMs: retryDelayMs(attempt), failure };
  }
  return { kind: 'fail', failure, attempts: attempt, stopWorker: error instanceof AuthenticationError };
}

/**
 * A batch that threw as a whole: Postgres unreachable (or a deadlock) is
 * waited out without spending attempts; anything else fails the job, which
 * BullMQ runs again with its backoff.
 */
export function decideBatchError(error: unknown): 'wait-for-store' | 'fail-job' {
  return isTransientStoreError(error) ? 'wait-for-store' : 'fail-job';
}
