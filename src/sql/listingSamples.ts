import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { contradictions, type SampleAnswer } from '../discovery/scope-sample.js';
import type { Claim } from './claimTargets.js';
import { byJob, claimAbsences, failUnreached, unreached } from './finishListing.js';
import type { Tx } from './tripleLock.js';

/** A suspect listing's sample, once all of it has answered: believed (the rest of its absences claimed) or not. */
export type SampleDecision =
  | { listingId: number; scopeKey: string; believed: true; sampled: number; confirm: Claim[] }
  | { listingId: number; scopeKey: string; believed: false; sampled: number; contradicted: number; unconfirmed: number; error: string };

/**
 * Records what the confirming GET of a sampled absence found, in every
 * suspect listing of the scope whose sample holds the image and still waits
 * (a later listing may sample it too). The last answer of a sample decides,
 * exactly once: no contradiction and the listing is believed, its other
 * absences claimed for their confirming GETs (batches `jobPrefix-n`); else it
 * is incomplete, saying why, and its other absences record that as their
 * attempt, so its runs finish. Returns the decisions this answer made.
 */
export async function answerSample(
  sql: Sql,
  scopeKey: string,
  { projectId, regionId, imageId }: Triple,
  answer: SampleAnswer,
  confirm: { batchSize: number; jobPrefix: (listingId: number) => string },
): Promise<SampleDecision[]> {
  return sql.begin(async (tx) => {
    // The listings are locked first, so of two last answers committed at once one sees the other.
    // listing_samples holds only samples that wait, so it is the small side of the join.
    const listings = await tx<{ id: number; suspect: string; sampled: number }[]>`
      SELECT l.id, l.suspect, l.sampled FROM listing_samples s JOIN listings l ON l.id = s.listing_id
      WHERE (s.project_id, s.region_id, s.image_id) = (${projectId}, ${regionId}, ${imageId}) AND s.answer IS NULL
        AND l.scope_key = ${scopeKey} AND l.sample_contradicted IS NULL
      ORDER BY l.id
      FOR UPDATE OF l`;
    const decisions: SampleDecision[] = [];
    for (const listing of listings) {
      await tx`
        UPDATE listing_samples SET answer = ${answer}
        WHERE (listing_id, project_id, region_id, image_id) = (${listing.id}, ${projectId}, ${regionId}, ${imageId})`;
      const answers = await tx<{ answer: SampleAnswer | null }[]>`SELECT answer FROM listing_samples WHERE listing_id = ${listing.id}`;
      if (answers.some((a) => a.answer === null)) continue;
      decisions.push(await decide(tx, scopeKey, listing, contradictions(answers.map((a) => a.answer!)), confirm));
    }
    return decisions;
  });
}

/** Ends a listing's sample: believed, its other absences claimed; or not, and they record why they were not confirmed. */
async function decide(
  tx: Tx,
  scopeKey: string,
  listing: { id: number; suspect: string; sampled: number },
  contradicted: number,
  confirm: { batchSize: number; jobPrefix: (listingId: number) => string },
): Promise<SampleDecision> {
  await tx`DELETE FROM listing_samples WHERE listing_id = ${listing.id}`;
  const base = { listingId: listing.id, scopeKey, sampled: listing.sampled };
  if (contradicted === 0) {
    await tx`UPDATE listings SET sample_contradicted = 0 WHERE id = ${listing.id}`;
    const rows = await claimAbsences(tx, listing.id, unreached(tx), {
      batchSize: confirm.batchSize,
      jobPrefix: confirm.jobPrefix(listing.id),
    });
    return { ...base, believed: true, confirm: byJob(rows) };
  }
  const error =
    `suspect: ${listing.suspect}; of a sample of ${listing.sampled} images it did not return, ${contradicted} ` +
    'are still in the scope or did not answer: nothing else was confirmed, and nothing marked left';
  const [{ n: unconfirmed } = { n: 0 }] = await tx<{ n: number }[]>`
    SELECT count(*)::int AS n FROM targets t JOIN listings l ON l.id = ${listing.id} WHERE ${unreached(tx)}`;
  await failUnreached(tx, listing.id, `the listing of its scope was incomplete: ${error}`, unreached(tx));
  await tx`
    UPDATE listings SET sample_contradicted = ${contradicted}, status = 'incomplete', error = ${error}
    WHERE id = ${listing.id}`;
  return { ...base, believed: false, contradicted, unconfirmed, error };
}
