import type { Sql } from '../db.js';
import type { Observation } from '../interfaces.js';
import { recordChanges, tripleKey, type ObservationResult } from './recordChanges.js';
import { recordUnchanged } from './recordUnchanged.js';

/** Stores one validated answer: the batch path for a batch of one. */
export async function recordObservation(sql: Sql, observation: Observation): Promise<ObservationResult> {
  const [unchanged] = await recordUnchanged(sql, [observation]);
  if (unchanged) return 'unchanged';
  return (await recordChanges(sql, [observation])).get(tripleKey(observation.triple))!;
}
