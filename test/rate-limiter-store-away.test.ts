// The request timeline on Postgres fails at once while the database is away
// (Redis's client would queue the command). The limiter must wait that out:
// its failure is not a failed request to the API, which would spend an image's
// attempt, or fail it outright with SYNC_ATTEMPTS=1.
import { expect, it } from 'vitest';
import { ApiRateLimiter, type RequestTimeline } from '../src/gcore/rate-limiter.js';

function awayThen(times: number, code: string): RequestTimeline & { calls: number } {
  const timeline = {
    calls: 0,
    async take() {
      timeline.calls += 1;
      if (timeline.calls <= times) throw Object.assign(new Error(`write ${code}`), { code });
      return { waitMs: 0, askedAt: performance.now() };
    },
    async pause() {
      timeline.calls += 1;
      if (timeline.calls <= times) throw Object.assign(new Error(`write ${code}`), { code });
    },
    async aheadMs() {
      timeline.calls += 1;
      if (timeline.calls <= times) throw Object.assign(new Error(`write ${code}`), { code });
      return 0;
    },
  };
  return timeline;
}

it('acquire() and pause() wait while the store is away, and go on once it answers', async () => {
  const limited = awayThen(2, 'CONNECTION_CLOSED');
  await new ApiRateLimiter(limited, 50).acquire();
  expect(limited.calls).toBe(3);
  const unlimited = awayThen(1, 'ECONNREFUSED');
  await new ApiRateLimiter(unlimited, 0).acquire();
  expect(unlimited.calls).toBe(2);
  const pausing = awayThen(1, '57P01');
  await new ApiRateLimiter(pausing, 50).pause(10);
  expect(pausing.calls).toBe(2);
});

it('acquire() still fails on an error that is not about the store being away', async () => {
  const broken = awayThen(1, '42883');
  await expect(new ApiRateLimiter(broken, 50).acquire()).rejects.toThrow('42883');
});
