// What happens after a refresh of one image did not end in stored data: the
// whole retry and outcome policy in one pure function, as the Gcore SDKs keep
// theirs in two. The worker carries the decision out; nothing else decides.
import { AuthenticationError, GcoreApiError, overCapText, RateLimitedError, RequestWithheldError } from './gcore-errors.js';
import { InvalidPayloadError } from './image-payload.js';
import { isTransientStoreError, UnstorableImageError } from './store-errors.js';

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

export const FREE_RATE_LIMIT_RETRIES = 3;

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

/** Backoff before attempt n+1: min(0.5 s * 2^(n-1), 8 s), less up to 25 % jitter (as Gcore's SDKs do). */
export function retryDelayMs(attemptsMade: number, random = Math.random): number {
  const base = Math.min(500 * 2 ** Math.max(attemptsMade - 1, 0), 8000);
  return Math.round(base * (1 - 0.25 * random()));
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
