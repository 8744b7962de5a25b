// The API request rate, shared by every worker process through one timeline
// kept by the queue store (backend.ts). Each request takes the next free slot
// (GCRA: evenly spaced slots, no bursts). A 429 moves the timeline past the
// server's wait, pausing every process at once, and records the pause with how
// long the API asked for: a request that would have to wait through a pause the
// API asked to be longer than the cap fails at once instead, in every process.
// The store's clock decides, so machines with skewed clocks still agree.
import { setTimeout as delay } from 'node:timers/promises';
import { DEFAULT_ACCOUNT } from '../config/accounts.js';
import { DEFAULTS } from '../config/config.js';
import { PausedPastCapError } from './gcore-errors.js';
import { backoffMs, POLL, STORE_AWAY } from '../work/retry-policy.js';
import { isTransientStoreError } from '../db/store-errors.js';

/** A pause in force on a timeline (after a 429): how much longer it lasts, and how long the API asked for (Infinity: no bound). */
export interface Pause {
  remainingMs: number;
  askedMs: number;
}

/** A slot taken on the timeline, or the pause that kept it from being taken. */
interface Slot {
  /** How long to wait for it, in ms from when the store read its clock (a read: how far ahead the next free slot is). */
  waitMs: number;
  /** performance.now() just before the request for it left this process (the store read its clock after). */
  askedAt: number;
  /** The pause in force when the store was asked; a take not through pauses took no slot then. */
  pause?: Pause;
}

/** The timeline as a store keeps it (redis-backend.ts, postgres-backend.ts). */
export interface RequestTimeline {
  /**
   * Takes the next slot `slotMs` wide (0: only reads). While a pause is in
   * force, only `throughPause`: without it the store answers the pause and
   * takes nothing, so a request that fails instead of waiting costs no slot.
   */
  take(slotMs: number, throughPause: boolean): Promise<Slot>;
  /** Holds back every process's slots for at least `pauseMs` from now, the API having asked for `askedMs` (>= pauseMs, may be Infinity). */
  pause(pauseMs: number, askedMs: number): Promise<void>;
  /** How far ahead of now the next free slot is, in ms (0 when free now). */
  aheadMs(): Promise<number>;
}

/**
 * Whether a request facing `pause` fails now rather than waits: the API asked
 * for longer than this process waits after a 429 (`maxWaitMs`, the cap), or
 * the pause would outlast that (set by a process with a longer cap). Its
 * refresh is then recorded as failed at once, instead of waiting a pause of
 * the cap out in the limiter with the rest of its batch.
 */
export function mustFailNow(pause: Pause | undefined, maxWaitMs: number): boolean {
  if (pause === undefined || !(pause.remainingMs > 0)) return false;
  return pause.askedMs > maxWaitMs || pause.remainingMs > maxWaitMs;
}

/**
 * Slots are spaced for one second plus this much, so that a request sent up
 * to this late (a busy event loop, network jitter) still cannot push any
 * calendar second at the API over the limit. It costs 2 % at 100 req/s.
 */
const JITTER_ALLOWANCE_MS = 20;

/** The store key or row that holds an account's next free slot, for a queue prefix; the implied account's is the one of releases before accounts. */
export function rateLimitKey(queuePrefix: string, account: string = DEFAULT_ACCOUNT): string {
  return accountKey(`${queuePrefix}:image-refresh:api-rate`, account);
}

/** The Redis key that holds the pause in force on an account's timeline (what the API asked for, expiring with the pause); Postgres keeps it on the timeline's row. */
export function apiPauseKey(queuePrefix: string, account: string = DEFAULT_ACCOUNT): string {
  return accountKey(`${queuePrefix}:image-refresh:api-pause`, account);
}

function accountKey(key: string, account: string): string {
  return account === DEFAULT_ACCOUNT ? key : `${key}:${account}`;
}

/**
 * How fast the quickest answer from the store may be assumed to get slower with
 * every take (ms), so that a store that became slower for good (another
 * network path) stops costing slots after a few dozen takes.
 */
const FASTEST_DRIFT_MS = 1;

/**
 * A call to the timeline, tried again while the store is away (a restart,
 * killed connections): no request is sent meanwhile, and the image it is for
 * spends no attempt. Redis's client queues commands while it reconnects; on
 * Postgres the timeline's query fails at once, and that failure must not be
 * taken for a failed request to the API.
 */
async function whileStoreAway<T>(call: () => Promise<T>): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransientStoreError(error)) throw error;
      await delay(backoffMs(STORE_AWAY.timeline, failures));
    }
  }
}

export class ApiRateLimiter {
  private readonly slotMs: number;
  private pausedUntil = 0;
  /** The pause seen last (unlimited rate only), and until when by this process's clock. */
  private seenPause: { until: number; askedMs: number } | undefined;
  private checkedAt = 0;
  private fastestMs = Infinity;

  constructor(
    private readonly timeline: RequestTimeline,
    requestsPerSecond: number,
    /** Called for every slot given up as too late (a metric: many mean a store slow to answer). */
    private readonly onGivenUp: () => void = () => {},
    /** The longest pause after a 429 this process waits through (SYNC_RATE_LIMIT_MAX_WAIT_SECONDS). */
    private readonly maxWaitMs: number = DEFAULTS.rateLimitMaxWaitSeconds * 1000,
  ) {
    this.slotMs = requestsPerSecond > 0 ? (1000 + JITTER_ALLOWANCE_MS) / requestsPerSecond : 0;
  }

  /** Resolves when this process may send one request; throws PausedPastCapError when it would wait through a pause past the cap. */
  async acquire(): Promise<void> {
    if (this.slotMs > 0) {
      let throughPause = false;
      for (;;) {
        const { waitMs: wait, askedAt: asked, pause } = await whileStoreAway(() => this.timeline.take(this.slotMs, throughPause));
        this.fastestMs = Math.min(performance.now() - asked, this.fastestMs + FASTEST_DRIFT_MS);
        this.failIfPastCap(pause);
        if (pause !== undefined && !throughPause) {
          // No slot was taken: a pause this process waits through is waited through behind it.
          throughPause = true;
          continue;
        }
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
    if (now - this.checkedAt > POLL.pauseMs) {
      this.checkedAt = now;
      const { waitMs: ahead, pause } = await whileStoreAway(() => this.timeline.take(0, false));
      if (ahead > 0) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ahead);
      if (pause !== undefined) this.seePause(pause);
    }
    const seen = this.seenPause;
    if (seen !== undefined) this.failIfPastCap({ remainingMs: seen.until - Date.now(), askedMs: seen.askedMs });
    if (this.pausedUntil > now) await delay(this.pausedUntil - now);
  }

  /** Holds back every process's requests for `ms` (the API answered 429, asking for `askedMs`). */
  async pause(ms: number, askedMs: number = ms): Promise<void> {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    this.seePause({ remainingMs: ms, askedMs });
    const pauseMs = Math.max(1, Math.round(ms));
    await whileStoreAway(() => this.timeline.pause(pauseMs, Math.max(askedMs, pauseMs)));
  }

  private seePause(pause: Pause): void {
    const until = Date.now() + pause.remainingMs;
    if (this.seenPause === undefined || until >= this.seenPause.until) this.seenPause = { until, askedMs: pause.askedMs };
  }

  private failIfPastCap(pause: Pause | undefined): void {
    if (mustFailNow(pause, this.maxWaitMs)) throw new PausedPastCapError(pause!.askedMs, this.maxWaitMs, pause!.remainingMs);
  }
}
