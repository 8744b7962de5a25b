import type { Sql } from '../db/db.js';
import type { Pause } from '../gcore/rate-limiter.js';

/** What the timeline answers: the wait for the slot taken (a read: how far ahead the next free slot is), and the pause in force. */
export interface TimelineAnswer {
  waitMs: number;
  pause?: Pause;
}

/**
 * The request timeline on Postgres (take_api_slot, migrations 0014 and 0020):
 * a slot `slotMs` wide, or a pause `pauseMs` long the API asked to be
 * `askedMs` (Infinity: no bound), or with both 0 a read. While a pause is in
 * force a slot is taken only `throughPause`; otherwise the pause is answered.
 */
export async function takeApiSlot(
  sql: Sql,
  key: string,
  slot: { slotMs: number; pauseMs?: number; askedMs?: number; throughPause?: boolean },
): Promise<TimelineAnswer> {
  const { slotMs, pauseMs = 0, throughPause = false } = slot;
  const askedMs = slot.askedMs ?? pauseMs;
  const [row] = await sql<{ wait: number; paused: number; asked: number }[]>`
    SELECT wait_ms AS wait, pause_ms AS paused, asked_ms AS asked
    FROM take_api_slot(${key}, ${slotMs}::float8, ${pauseMs}::float8, ${String(askedMs)}::float8, ${throughPause})`;
  return { waitMs: row!.wait, pause: row!.paused > 0 ? { remainingMs: row!.paused, askedMs: row!.asked } : undefined };
}
