// The retry and outcome policy, decided without services.
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  MalformedAnswerError,
  PausedPastCapError,
  RateLimitedError,
  RequestWithheldError,
  TransientApiError,
} from '../src/gcore-errors.js';
import { InvalidPayloadError } from '../src/image-payload.js';
import type { RefreshItem } from '../src/queue.js';
import { decide, decideBatchError, rateLimitPause, retryDelayMs, type RetryPolicy } from '../src/refresh-policy.js';
import { UnstorableImageError } from '../src/store-errors.js';

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
