// The write path of observations: the unchanged majority in one statement (none for a listing),
// the rest (new versions, tags, changes) in one transaction, and an image
// Postgres refuses isolated as its own error so it never keeps another out.
import type { Sql } from '../db/db.js';
import type { Observation } from '../interfaces.js';
import { writeIsolating } from './isolating-write.js';
import { recordChanges } from '../sql/recordChanges.js';
import { recordUnchanged, type ObservationSource } from '../sql/recordUnchanged.js';
import { UnstorableImageError } from '../db/store-errors.js';
import { tripleKey } from '../images/triple.js';

/** Each observation's outcome by its triple's key, or the error that kept it out. */
export type StoredOutcomes = Map<string, 'unchanged' | 'changed' | Error>;

/** Stores validated observations from `source`; a transient store error (Postgres away) is thrown for the caller to retry. */
export async function storeObservations(sql: Sql, observations: Observation[], source: ObservationSource): Promise<StoredOutcomes> {
  const unchanged = new Set((await recordUnchanged(sql, observations, source)).map(tripleKey));
  const { written, refused } = await writeIsolating(
    observations.filter((o) => !unchanged.has(tripleKey(o.triple))),
    async (batch) => [...(await recordChanges(sql, batch))],
  );
  const stored: StoredOutcomes = new Map(written);
  for (const { item, error } of refused) stored.set(tripleKey(item.triple), new UnstorableImageError(error));
  for (const key of unchanged) stored.set(key, 'unchanged');
  return stored;
}
