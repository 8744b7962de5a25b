// One refused item must never keep the others out. Every batch write of
// API-shaped data (images of a page, entries of the audit log) goes through
// here: the batch is written in one go, and when the store refuses it for a
// reason that is about the data, not about the store being away, its halves
// are written apart until each refused item stands alone.
import { isTransientStoreError } from '../db/store-errors.js';

export interface Isolated<T, R> {
  /** What the accepted writes returned, in the order written. */
  written: R[];
  /** Each item the store refused on its own, with the store's error. */
  refused: Array<{ item: T; error: unknown }>;
}

/**
 * Writes `items` with `write` (which returns what it wrote); a transient store
 * error (Postgres away, a deadlock) is thrown as it is, for the caller to retry
 * the whole batch. `write` must leave nothing behind when it throws (one
 * transaction, or a savepoint inside the caller's).
 */
export async function writeIsolating<T, R>(items: T[], write: (batch: T[]) => Promise<R[]>): Promise<Isolated<T, R>> {
  if (items.length === 0) return { written: [], refused: [] };
  try {
    return { written: await write(items), refused: [] };
  } catch (error) {
    if (isTransientStoreError(error)) throw error;
    if (items.length === 1) return { written: [], refused: [{ item: items[0]!, error }] };
    const half = Math.ceil(items.length / 2);
    // In order, not at once: the halves of one transaction's savepoints cannot run side by side.
    const first = await writeIsolating(items.slice(0, half), write);
    const second = await writeIsolating(items.slice(half), write);
    return { written: [...first.written, ...second.written], refused: [...first.refused, ...second.refused] };
  }
}
