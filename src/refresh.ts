// One refresh of one triple: fetch -> validate -> store -> history.
import type { Sql } from './db.js';
import type { GcoreClient } from './gcore-client.js';
import { contentHash } from './image-diff.js';
import { validateImage } from './image-payload.js';
import type { RefreshOutcome, Triple } from './interfaces.js';
import { finishRuns } from './sql/finishRuns.js';
import { recordDeletion } from './sql/recordDeletion.js';
import { recordFailure, type FailureRecord } from './sql/recordFailure.js';
import { recordObservation } from './sql/recordObservation.js';

export interface RefreshDeps {
  sql: Sql;
  client: GcoreClient;
}

/** Fetches and stores one image; throws (storing nothing) when the answer is not usable. */
export async function refreshImage({ sql, client }: RefreshDeps, triple: Triple): Promise<RefreshOutcome> {
  const answer = await client.getImage(triple);
  let outcome: RefreshOutcome;
  if (answer.kind === 'gone') {
    outcome = await recordDeletion(sql, triple, answer.observedAt);
  } else {
    const snapshot = validateImage(answer.body, triple);
    const result = await recordObservation(sql, {
      triple,
      snapshot,
      contentHash: contentHash(snapshot),
      raw: answer.body,
      observedAt: answer.observedAt,
    });
    outcome = result;
  }
  await finishRuns(sql, triple);
  return outcome;
}

/** The refresh gave up: record why, and let any run waiting on it finish. */
export async function failRefresh(sql: Sql, triple: Triple, failure: FailureRecord): Promise<void> {
  await recordFailure(sql, triple, failure);
  await finishRuns(sql, triple);
}
