// A 429 that asks for longer than the cap pauses the account for the cap, and
// every request that would have to wait through that pause fails at once, in
// every process: the pause and what the API asked are kept by the queue store
// (Postgres or Redis), so another process's limiter sees them. Each store is
// opened twice here, as two worker processes would.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PausedPastCapError } from '../src/gcore/gcore-errors.js';
import { ApiRateLimiter, mustFailNow } from '../src/gcore/rate-limiter.js';
import { openServices, type Services } from '../src/queues/services.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { throwawayRedis, type ThrowawayRedis } from './support/throwaway.js';

describe('mustFailNow', () => {
  const cap = 900_000;
  it('fails a request facing a pause the API asked to be longer than the cap, however little of it is left', () => {
    expect(mustFailNow({ remainingMs: 900_000, askedMs: 99_999_999_000 }, cap)).toBe(true);
    expect(mustFailNow({ remainingMs: 1, askedMs: 900_001 }, cap)).toBe(true);
    expect(mustFailNow({ remainingMs: 5, askedMs: Number.POSITIVE_INFINITY }, cap)).toBe(true);
  });

  it('fails a request facing a pause that outlasts the cap (set by a process with a longer one)', () => {
    expect(mustFailNow({ remainingMs: 3_000_000, askedMs: 3_000_000 }, cap)).toBe(true);
    expect(mustFailNow({ remainingMs: 900_001, askedMs: 900_000 }, cap)).toBe(true);
  });

  it('lets a request wait through a pause within the cap, the cap itself included, and go when there is none', () => {
    expect(mustFailNow({ remainingMs: 900_000, askedMs: 900_000 }, cap)).toBe(false);
    expect(mustFailNow({ remainingMs: 1000, askedMs: 1000 }, cap)).toBe(false);
    expect(mustFailNow(undefined, cap)).toBe(false);
  });

  it('does not fail on a pause that has ended, or a remaining time that is not a number', () => {
    expect(mustFailNow({ remainingMs: 0, askedMs: Number.POSITIVE_INFINITY }, cap)).toBe(false);
    expect(mustFailNow({ remainingMs: -10, askedMs: 99_999_999_000 }, cap)).toBe(false);
    expect(mustFailNow({ remainingMs: Number.NaN, askedMs: 99_999_999_000 }, cap)).toBe(false);
  });
});

let env: TestEnv;
let ownRedis: ThrowawayRedis | undefined;
const opened: Services[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  if (!inject('redisUrl')) ownRedis = await throwawayRedis();
});

afterAll(async () => {
  for (const services of opened.splice(0)) await services.close();
  await ownRedis?.stop();
  await env?.cleanup();
});

/** Two processes' services on one queue store. */
async function twoProcesses(store: 'postgres' | 'redis'): Promise<[Services, Services]> {
  const redisUrl = store === 'redis' ? inject('redisUrl') || ownRedis!.url : '';
  const open = async () => {
    const services = await openServices(env.config({ REDIS_URL: redisUrl }));
    opened.push(services);
    return services;
  };
  return [await open(), await open()];
}

describe.each(['postgres', 'redis'] as const)('the pause on the %s queue store', (store) => {
  let one: Services;
  let other: Services;
  beforeAll(async () => {
    [one, other] = await twoProcesses(store);
  });

  it("fails another process's requests at once, with or without a rate, and takes no slot for them", async () => {
    const cap = 60_000;
    await new ApiRateLimiter(one.backend.timeline('over'), 10, undefined, cap).pause(cap, 99_999_999_000);
    const timeline = other.backend.timeline('over');
    for (const rate of [10, 0]) {
      const limiter = new ApiRateLimiter(timeline, rate, undefined, cap);
      for (let n = 0; n < 20; n++) {
        const error = await limiter.acquire().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, `rate ${rate}, request ${n}`).toBeInstanceOf(PausedPastCapError);
        expect((error as Error).message).toMatch(
          /^request not sent: Gcore asked to wait 99999999 s, more than the 60 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS; the account's requests are held back for (59|60) s more$/,
        );
      }
    }
    // Forty refused requests took no slot: the next free one is still the end of the pause.
    expect(await timeline.aheadMs()).toBeLessThanOrEqual(cap);
    expect(await timeline.aheadMs()).toBeGreaterThan(cap - 10_000);
  });

  it('fails the requests of a process whose cap is shorter than a pause another process honours', async () => {
    await new ApiRateLimiter(one.backend.timeline('longer-cap'), 10, undefined, 3_600_000).pause(120_000, 120_000);
    const shorter = new ApiRateLimiter(other.backend.timeline('longer-cap'), 10, undefined, 60_000);
    await expect(shorter.acquire()).rejects.toThrow(
      /^request not sent: Gcore asked to wait 120 s, more than the 60 s cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS/,
    );
  });

  it('lets requests wait through a pause within the cap, and go once it has passed', async () => {
    for (const rate of [10, 0]) {
      const account = `within-${rate}`;
      await new ApiRateLimiter(one.backend.timeline(account), rate, undefined, 60_000).pause(600, 600);
      const started = Date.now();
      await new ApiRateLimiter(other.backend.timeline(account), rate, undefined, 60_000).acquire();
      // Not sent before the pause ended (the store's clock and this one's may differ by a few ms).
      expect(Date.now() - started, `rate ${rate}`).toBeGreaterThanOrEqual(500);
    }
  });
});
