// The API request rate, shared by every worker process through Redis. Each
// request takes the next free slot on one timeline (GCRA: evenly spaced
// slots, no bursts). A 429 moves the timeline past the server's wait, pausing
// every process at once. Redis's own clock decides, so machines with skewed
// clocks still agree.
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';

// KEYS[1] = next free slot (ms); ARGV[1] = slot width (ms), ARGV[2] = pause (ms).
// Returns how long the caller waits before its slot.
const TAKE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local pause = tonumber(ARGV[2])
if pause > 0 then
  free = math.max(free, now + pause)
  redis.call('SET', KEYS[1], free, 'PX', math.ceil(free - now) + 1000)
  return 0
end
local slot = math.max(free, now)
local nextFree = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], nextFree, 'PX', math.ceil(nextFree - now) + 1000)
return slot - now
`;

/**
 * Slots are spaced for one second plus this much, so that a request sent up
 * to this late (a busy event loop, network jitter) still cannot push any
 * calendar second at the API over the limit. It costs 2 % at 100 req/s.
 */
const JITTER_ALLOWANCE_MS = 20;

/** The key that holds the next free slot, for a queue prefix. */
export function rateLimitKey(queuePrefix: string): string {
  return `${queuePrefix}:image-refresh:api-rate`;
}

/** How far ahead of now the next free request slot is, in ms, by Redis's clock (0 when free now). */
export async function timelineAheadMs(redis: Redis, key: string): Promise<number> {
  const [free, [seconds, micros]] = await Promise.all([redis.get(key), redis.time()]);
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return Math.max(0, Math.round(Number(free ?? 0) - now));
}

/** How often a process without a rate limit looks for a pause set by another. */
const PAUSE_POLL_MS = 250;

export class ApiRateLimiter {
  private readonly slotMs: number;
  private pausedUntil = 0;
  private checkedAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    requestsPerSecond: number,
  ) {
    this.slotMs = requestsPerSecond > 0 ? (1000 + JITTER_ALLOWANCE_MS) / requestsPerSecond : 0;
  }

  /** Resolves when this process may send one request. */
  async acquire(): Promise<void> {
    if (this.slotMs > 0) {
      const wait = Number(await this.redis.eval(TAKE_SLOT, 1, this.key, this.slotMs, 0));
      if (wait > 0) await delay(wait);
      return;
    }
    // Without a limit there is no timeline to wait on, only pauses after a 429.
    const now = Date.now();
    if (now - this.checkedAt > PAUSE_POLL_MS) {
      this.checkedAt = now;
      const free = Number(await this.redis.get(this.key));
      if (free > now) this.pausedUntil = free;
    }
    if (this.pausedUntil > now) await delay(this.pausedUntil - now);
  }

  /** Holds back every process's requests for `ms` (the API answered 429). */
  async pause(ms: number): Promise<void> {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    await this.redis.eval(TAKE_SLOT, 1, this.key, this.slotMs, Math.max(1, Math.round(ms)));
  }
}
