import type postgres from 'postgres';
import type { RefreshOutcome, Triple } from '../interfaces.js';
import { tripleKey } from '../images/triple.js';

export type Tx = postgres.TransactionSql;

/**
 * Serializes writers of one triple until the transaction ends (first insert
 * included). recordChanges takes the same lock, keyed the same way, for a batch.
 */
export async function lockTriple(tx: Tx, triple: Triple): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(hashtextextended(${tripleKey(triple)}, 0))`;
}

/** Records the attempt's outcome and the API's status on the target, which is what completes runs. */
export async function markAttempt(
  tx: Tx,
  { projectId, regionId, imageId }: Triple,
  outcome: RefreshOutcome,
  status: number | null,
  error: string | null = null,
): Promise<void> {
  await tx`
    UPDATE targets SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = ${outcome},
      last_error = ${error}, last_status = ${status}
    WHERE (project_id, region_id, image_id) = (${projectId}, ${regionId}, ${imageId})`;
}
