import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { storableString } from '../images/storable-text.js';
import { markAttempt } from './tripleLock.js';

export interface FailureRecord {
  status: number | null;
  errorClass: string;
  message: string;
  attempts: number;
}

/** A refresh gave up: keep the error for the operator; stored image state is untouched. */
export async function recordFailure(sql: Sql, account: string, triple: Triple, failure: FailureRecord): Promise<void> {
  // A message quotes what the network sent, which may hold characters Postgres refuses.
  const message = storableString(failure.message);
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO sync_failures (project_id, region_id, image_id, account, status, error_class, message, attempts, failed_at)
      VALUES (${triple.projectId}, ${triple.regionId}, ${triple.imageId}, ${account}, ${failure.status}, ${failure.errorClass},
        ${message}, ${failure.attempts}, now())`;
    await markAttempt(tx, triple, 'failed', failure.status, message);
  });
}
