import type { Sql } from '../db.js';

/**
 * The request timeline on Postgres (take_api_slot, migration 0014): a slot
 * `slotMs` wide, a pause `pauseMs` long, or with both 0 a read. Returns the
 * wait (or, for a read, how far ahead the next free slot is) in ms.
 */
export async function takeApiSlot(sql: Sql, key: string, slotMs: number, pauseMs: number): Promise<number> {
  const [row] = await sql<{ wait: number }[]>`SELECT take_api_slot(${key}, ${slotMs}, ${pauseMs}) AS wait`;
  return row!.wait;
}
