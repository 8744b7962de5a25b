// A slot whose answer came back from the store much later than its quickest
// answer could put its request in the next calendar second beside that
// second's own: it is given up (counted), and another taken.
import { afterEach, expect, it, vi } from 'vitest';
import { ApiRateLimiter, type RequestTimeline } from '../src/gcore/rate-limiter.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * A timeline whose n-th take answers answerMs[n] after it was asked (the store's own work: no wait for the slot),
 * on a clock of its own: performance.now() moves only with the answers, so a busy machine's own delays are not seen.
 */
function answering(answerMs: number[]): RequestTimeline & { takes: number } {
  let now = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  const timeline = {
    takes: 0,
    async take() {
      const askedAt = now;
      now += answerMs[timeline.takes++] ?? 0;
      return { waitMs: 0, askedAt };
    },
    async pause() {},
    async aheadMs() {
      return 0;
    },
  };
  return timeline;
}

it('gives up a slot that came back late, counts it, and takes another', async () => {
  const timeline = answering([1, 1, 200, 1]);
  let givenUp = 0;
  const limiter = new ApiRateLimiter(timeline, 50, () => (givenUp += 1));
  await limiter.acquire();
  await limiter.acquire();
  expect([timeline.takes, givenUp]).toEqual([2, 0]);
  // 200 ms late against a quickest answer of about 1 ms: past the 20 ms allowance.
  await limiter.acquire();
  expect([timeline.takes, givenUp]).toEqual([4, 1]);
});
