// The API request rate, shared by every worker process through one timeline
// kept by the queue store (backend.ts). Each request takes the next free slot
// (GCRA: evenly spaced slots, no bursts). A 429 moves the timeline past the
// server's wait, pausing every process at once. The store's clock decides, so
// machines with skewed clocks still agree.
import { setTimeout as delay } from 'node:timers/promises';
import { DEFAULT_ACCOUNT } from './accounts.js';
import { isTransientStoreError } from './store-errors.js';

/** A slot taken on the timeline. */
export interface Slot {
  /** How long to wait for it, in ms from when the store read its clock. */
  waitMs: number;
  /** performance.now() just before the request for it left this process (the store read its clock after). */
  askedAt: number;
}

/** The timeline as a store keeps it (redis-backend.ts, postgres-backend.ts). */
export interface RequestTimeline {
  /** Takes the next slot `slotMs` wide. */
  take(slotMs: number): Promise<Slot>;
  /** Holds back every process's slots for at least `pauseMs` from now. */
  pause(pauseMs: number): Promise<void>;
  /** How far ahead of now the next free slot is, in ms (0 when free now). */
  aheadMs(): Promise<number>;
}

/**
 * Slots are spaced for one second plus this much, so that a request sent up
 * to this late (a busy event loop, network jitter) still cannot push any
 * calendar second at the API over the limit. It costs 2 % at 100 req/s.
 */
const JITTER_ALLOWANCE_MS = 20;

/** The store key or row that holds an account's next free slot, for a queue prefix; the implied account's is the one of releases before accounts. */
export function rateLimitKey(queuePrefix: string, account: string = DEFAULT_ACCOUNT): string {
  const key = `${queuePrefix}:image-refresh:api-rate`;
  return account === DEFAULT_ACCOUNT ? key : `${key}:${account}`;
}

/**
 * How fast the quickest answer from the store may be assumed to get slower with
 * every take (ms), so that a store that became slower for good (another
 * network path) stops costing slots after a few dozen takes.
 */
const FASTEST_DRIFT_MS = 1;

/** How often a process without a rate limit looks for a pause set by another. */
const PAUSE_POLL_MS = 250;

/** The longest wait between two tries of a store that is away. */
const STORE_RETRY_MAX_MS = 2000;

/**
 * A call to the timeline, tried again while the store is away (a restart,
 * killed connections): no request is sent meanwhile, and the image it is for
 * spends no attempt. Redis's client queues commands while it reconnects; on
 * Postgres the timeline's query fails at once, and that failure must not be
 * taken for a failed request to the API.
 */
async function whileStoreAway<T>(call: () => Promise<T>): Promise<T> {
  for (let waitMs = 100; ; waitMs = Math.min(waitMs * 2, STORE_RETRY_MAX_MS)) {
    try {
      return await call();
    } catch (error) {
      if (!isTransientStoreError(error)) throw error;
      await delay(waitMs);
    }
  }
}

export class ApiRateLimiter {
  private readonly slotMs: number;
  private pausedUntil = 0;
  private checkedAt = 0;
  private fastestMs = Infinity;

  constructor(
    private readonly timeline: RequestTimeline,
    requestsPerSecond: number,
    /** Called for every slot given up as too late (a metric: many mean a store slow to answer). */
    private readonly onGivenUp: () => void = () => {},
  ) {
    this.slotMs = requestsPerSecond > 0 ? (1000 + JITTER_ALLOWANCE_MS) / requestsPerSecond : 0;
  }

  /** Resolves when this process may send one request. */
  async acquire(): Promise<void> {
    if (this.slotMs > 0) {
      for (;;) {
        const { waitMs: wait, askedAt: asked } = await whileStoreAway(() => this.timeline.take(this.slotMs));
        this.fastestMs = Math.min(performance.now() - asked, this.fastestMs + FASTEST_DRIFT_MS);
        if (wait > 0) await delay(wait);
        // The store read its clock after `asked`. Lateness every request shares (a store far away)
        // keeps the slots' spacing; lateness beyond the quickest answer's (a busy store slow to
        // answer, a stalled event loop) could put this request in the next calendar second beside
        // that second's own slots. Past the allowance the slot is given up, which only ever sends
        // fewer requests, and another is taken.
        if (performance.now() - asked - wait - this.fastestMs <= JITTER_ALLOWANCE_MS) return;
        this.onGivenUp();
      }
    }
    // Without a limit there is no timeline to wait on, only pauses after a 429.
    const now = Date.now();
    if (now - this.checkedAt > PAUSE_POLL_MS) {
      this.checkedAt = now;
      const ahead = await whileStoreAway(() => this.timeline.aheadMs());
      if (ahead > 0) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ahead);
    }
    if (this.pausedUntil > now) await delay(this.pausedUntil - now);
  }

  /** Holds back every process's requests for `ms` (the API answered 429). */
  async pause(ms: number): Promise<void> {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    await whileStoreAway(() => this.timeline.pause(Math.max(1, Math.round(ms))));
  }
}
