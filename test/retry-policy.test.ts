// The retry and outcome policy, decided without services.
import { Backoffs } from 'bullmq';
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  MalformedAnswerError,
  PausedPastCapError,
  RateLimitedError,
  RequestWithheldError,
  TransientApiError,
} from '../src/gcore/gcore-errors.js';
import { InvalidPayloadError } from '../src/images/image-payload.js';
import type { RefreshItem } from '../src/queues/queue.js';
import {
  API_BACKOFF,
  auditWaitMs,
  backoffMs,
  decide,
  decideBatchError,
  JOB_BACKOFF,
  JOB_RETRY,
  jobBackoff,
  POLL,
  rateLimitPause,
  retryDelayMs,
  STORE_AWAY,
  tickNowAtStart,
  WEBHOOK_BACKOFF,
  webhookWaitMs,
  type RetryPolicy,
} from '../src/work/retry-policy.js';
import { UnstorableImageError } from '../src/db/store-errors.js';

const policy: RetryPolicy = { attempts: 3, rateLimitMaxWaitMs: 60_000, freeRateLimitRetries: 2 };
const item = (attempt = 0, rateLimited?: number): RefreshItem => ({ projectId: 1, regionId: 7, imageId: 'i', attempt, rateLimited });
const limited = (ms: number) => new RateLimitedError('429: Too many requests', ms, true);

describe('refresh policy', () => {
  it('retries transient errors with backoff, spending attempts, and records the last', () => {
    const error = new TransientApiError('503: busy', 503, true);
    const first = decide(error, item(0), policy);
    expect(first).toMatchObject({
      kind: 'retry',
      item: { attempt: 1, rateLimited: 0 },
      failure: { status: 503, errorClass: 'TransientApiError' },
    });
    expect(decide(error, item(1), policy)).toMatchObject({ kind: 'retry', item: { attempt: 2 } });
    expect(decide(error, item(2), policy)).toEqual({
      kind: 'fail',
      attempts: 3,
      stopWorker: false,
      failure: { status: 503, errorClass: 'TransientApiError', message: '503: busy', retryable: true },
    });
  });

  it('records what another attempt cannot fix at once', () => {
    for (const error of [
      new MalformedAnswerError('too large', 200, false),
      new InvalidPayloadError('bad'),
      new UnstorableImageError(new Error('NUL')),
    ]) {
      expect(decide(error, item(0), policy)).toMatchObject({ kind: 'fail', attempts: 1, stopWorker: false });
    }
  });

  it('stops the worker on a rejected key and hands back what it did not send', () => {
    expect(decide(new AuthenticationError('401', 401, false), item(0), policy)).toMatchObject({ kind: 'fail', stopWorker: true });
    expect(decide(new RequestWithheldError('not sent', undefined, false), item(1, 2), policy)).toEqual({
      kind: 'hand-back',
      item: item(1, 2),
    });
  });

  it('waits as long as a 429 asks, free of attempts at first, then spending them, so every refresh ends', () => {
    expect(decide(limited(5000), item(0), policy)).toMatchObject({ kind: 'retry', delayMs: 5000, item: { attempt: 0, rateLimited: 1 } });
    expect(decide(limited(5000), item(0, 1), policy)).toMatchObject({ kind: 'retry', item: { attempt: 0, rateLimited: 2 } });
    expect(decide(limited(5000), item(0, 2), policy)).toMatchObject({ kind: 'retry', item: { attempt: 1, rateLimited: 3 } });
    expect(decide(limited(5000), item(2, 4), policy)).toMatchObject({ kind: 'fail', attempts: 3 });
  });

  it('records a 429 that asks for more than the cap, saying what was asked, and pauses for the cap only', () => {
    const error = limited(99_999_999_000);
    expect(decide(error, item(0), policy)).toMatchObject({
      kind: 'fail',
      attempts: 1,
      failure: {
        status: 429,
        message: '429: Too many requests (Gcore asked to wait 99999999 s, more than the 60 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS)',
      },
    });
    expect(rateLimitPause(error, policy)).toEqual({ pauseMs: 60_000, askedMs: 99_999_999_000 });
    const unbounded = limited(Number.POSITIVE_INFINITY);
    expect(decide(unbounded, item(0, 2), policy)).toMatchObject({
      kind: 'fail',
      attempts: 1,
      failure: {
        message:
          '429: Too many requests (Gcore asked to wait without limit, more than the 60 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS)',
      },
    });
    expect(rateLimitPause(unbounded, policy)).toEqual({ pauseMs: 60_000, askedMs: Number.POSITIVE_INFINITY });
    // The cap itself is still honoured.
    expect(decide(limited(60_000), item(0), policy)).toMatchObject({ kind: 'retry', delayMs: 60_000 });
    expect(rateLimitPause(limited(2500), policy)).toEqual({ pauseMs: 2500, askedMs: 2500 });
  });

  it('records a request held back by a pause past the cap at once, not sent, saying what was asked', () => {
    const held = new PausedPastCapError(99_999_999_000, 60_000, 59_500);
    expect(held.message).toBe(
      "request not sent: Gcore asked to wait 99999999 s, more than the 60 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS; the account's requests are held back for 60 s more",
    );
    expect(decide(held, item(0, 1), policy)).toEqual({
      kind: 'fail',
      attempts: 1,
      stopWorker: false,
      failure: { status: null, errorClass: 'PausedPastCapError', message: held.message, retryable: false },
    });
  });

  it('backs off from 0.5 s doubling to 8 s, less up to 25 % jitter', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => retryDelayMs(n, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(retryDelayMs(1, () => 1)).toBe(375);
  });

  it('waits out Postgres being away, and fails the job for anything else', () => {
    expect(decideBatchError(Object.assign(new Error('terminating'), { code: '57P01' }))).toBe('wait-for-store');
    expect(decideBatchError(Object.assign(new Error('gone'), { code: 'ECONNREFUSED' }))).toBe('wait-for-store');
    expect(decideBatchError(new Error('a bug'))).toBe('fail-job');
  });
});

describe('delay schemes', () => {
  it('backs off exponentially up to a cap, less up to the jitter, the first failure and none alike', () => {
    const backoff = { firstMs: 100, maxMs: 1000, jitter: 0.5 };
    expect([0, 1, 2, 3, 4, 5, 40].map((n) => backoffMs(backoff, n, () => 0))).toEqual([100, 100, 200, 400, 800, 1000, 1000]);
    expect(backoffMs(backoff, 5, () => 1)).toBe(500);
    expect(backoffMs(backoff, 2, () => 0.5)).toBe(150);
    expect(retryDelayMs(4, () => 0.5)).toBe(backoffMs(API_BACKOFF, 4, () => 0.5));
  });

  it('tries a store that is away again from 100 ms doubling to 2 s, without jitter', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(STORE_AWAY.timeline, n, () => 1))).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('delivers to a webhook again at once after a full batch, at its interval after less, and backs off to a minute after failures', () => {
    const options = { batchSize: 100, pollMs: 5000 };
    expect(webhookWaitMs(0, 100, options)).toBe(0);
    expect(webhookWaitMs(0, 99, options)).toBe(5000);
    expect(webhookWaitMs(0, 0, options)).toBe(5000);
    expect([1, 2, 3, 6, 7, 8, 20].map((n) => webhookWaitMs(n, 0, options))).toEqual([1000, 2000, 4000, 32_000, 60_000, 60_000, 60_000]);
    expect(backoffMs(WEBHOOK_BACKOFF, 3, () => 1)).toBe(4000);
  });

  it('gives BullMQ the job backoff it computes alike: 2 s doubling, three attempts for work, five for a tick', () => {
    for (const retry of [JOB_RETRY.work, JOB_RETRY.tick]) {
      for (let attemptsMade = 1; attemptsMade <= 5; attemptsMade++) {
        expect(Backoffs.calculate(retry.backoff, attemptsMade, new Error('crashed'), undefined as never)).toBe(
          backoffMs(JOB_BACKOFF, attemptsMade),
        );
      }
    }
    expect([JOB_RETRY.work.attempts, JOB_RETRY.tick.attempts]).toEqual([3, 5]);
    expect(() => jobBackoff(API_BACKOFF)).toThrow('BullMQ backs off without a cap or jitter');
  });

  it('has an audit follower look again when its poll is due, not sooner than a second, not later than its interval', () => {
    const now = 1_000_000;
    expect(auditWaitMs(now + 10_000, now, 30_000)).toBe(10_000);
    expect(auditWaitMs(now + 10, now, 30_000)).toBe(POLL.auditMinMs);
    expect(auditWaitMs(now - 5000, now, 30_000)).toBe(1000);
    expect(auditWaitMs(now + 90_000, now, 30_000)).toBe(30_000);
  });

  it('ticks due work at start unless its scheduler ticks within a minute anyway', () => {
    const now = 1_000_000;
    expect(tickNowAtStart(undefined, now)).toBe(true);
    expect(tickNowAtStart(now + 60_000, now)).toBe(false);
    expect(tickNowAtStart(now + 60_001, now)).toBe(true);
    expect(tickNowAtStart(now - 1000, now)).toBe(false);
  });
});
