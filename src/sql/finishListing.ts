import type { Sql } from '../db.js';
import { PAGE_LIMIT } from '../list-query.js';
import { storableString } from '../storable-text.js';
import type { Claim } from './claimTargets.js';
import type { Tx } from './tripleLock.js';

export interface ListingScope {
  id: number;
  runId: number;
  scopeKey: string;
  status: 'expanding' | 'listing' | 'complete' | 'incomplete';
  /** The scope's projects, regions and filters; undefined when the scope is no longer configured. */
  definition: unknown;
}

export async function getListing(sql: Sql, listingId: number): Promise<ListingScope | undefined> {
  const [row] = await sql<ListingScope[]>`
    SELECT l.id, l.run_id AS "runId", l.scope_key AS "scopeKey", l.status, s.definition
    FROM listings l LEFT JOIN scopes s ON s.key = l.scope_key WHERE l.id = ${listingId}`;
  return row;
}

/** The scope's projects and regions could not be listed: the listing ends incomplete, with no page fetched. */
export async function abandonExpansion(sql: Sql, listingId: number, error: string): Promise<void> {
  await sql`UPDATE listings SET status = 'listing', error = ${storableString(error)} WHERE id = ${listingId} AND status = 'expanding'`;
}

export interface FinishedListing {
  status: 'complete' | 'incomplete';
  scopeKey: string;
  error: string | null;
  expected: number;
  listed: number;
  /** Live targets of the scope the complete listing did not return, claimed for a confirming GET. */
  confirm: Claim[];
}

interface Tally {
  failed_error: string | null;
  repeated: number;
  unusable: number;
  uneven: string | null;
  expected: number;
  listed: number;
}

/** Why a listing whose pages all answered cannot be trusted to be whole, or null. */
function incompleteness(tally: Tally): string | null {
  if (tally.failed_error !== null) return tally.failed_error;
  if (tally.repeated > 0) return `pages repeated ${tally.repeated} images other pages had listed (does the server honour offset?)`;
  if (tally.uneven !== null) return `the count changed between pages (${tally.uneven}): the images changed while they were listed`;
  if (tally.unusable > 0) return `${tally.unusable} results had no usable image id`;
  if (tally.listed !== tally.expected) return `the pages returned ${tally.listed} images where the API counts ${tally.expected}`;
  return null;
}

/** Targets that only the listing's scope refreshes, there before the listing started. */
function scopeTargets(tx: Tx) {
  return tx`t.scope_key = l.scope_key AND NOT t.explicit AND t.left_scope_at IS NULL AND t.added_at < l.started_at`;
}

/** Of those, the ones the listing did not return. */
function unlisted(tx: Tx, listingId: number) {
  return tx`${scopeTargets(tx)} AND NOT EXISTS (SELECT 1 FROM listing_ids x
      WHERE (x.listing_id, x.project_id, x.region_id, x.image_id) = (${listingId}, t.project_id, t.region_id, t.image_id))`;
}

/**
 * Ends a listing once none of its pages waits for an answer; exactly one of
 * the processes that try ends it. Complete (every page answered, no id
 * repeated, the ids add up to the counts): the scope's deleted images it did
 * not return keep their deletion, and its live ones are claimed for a
 * confirming GET. Incomplete: nothing is deleted or confirmed, and the
 * targets it did not reach record the failure, so runs finish and say so.
 */
export async function finishListing(
  sql: Sql,
  listingId: number,
  confirm: { batchSize: number; jobPrefix: string },
): Promise<FinishedListing | undefined> {
  const finished = await sql.begin(async (tx) => {
    const [listing] = await tx<{ scope_key: string; error: string | null }[]>`
      SELECT scope_key, error FROM listings WHERE id = ${listingId} AND status = 'listing' FOR UPDATE`;
    if (!listing) return undefined;
    const [waiting] = await tx`SELECT 1 FROM listing_pages WHERE listing_id = ${listingId} AND status = 'queued' LIMIT 1`;
    if (waiting) return undefined;
    const [tally] = await tx<Tally[]>`
      SELECT
        (SELECT endpoint || ' ' || project_id || '/' || region_id || ' offset ' || page * ${PAGE_LIMIT} || ': ' || error
          FROM listing_pages WHERE listing_id = ${listingId} AND status = 'failed' ORDER BY part, page LIMIT 1) AS failed_error,
        (SELECT coalesce(sum(repeated), 0)::int FROM listing_pages WHERE listing_id = ${listingId}) AS repeated,
        (SELECT coalesce(sum(unusable), 0)::int FROM listing_pages WHERE listing_id = ${listingId}) AS unusable,
        (SELECT string_agg(DISTINCT endpoint || ' ' || project_id || '/' || region_id, ', ') FROM (
          SELECT endpoint, project_id, region_id FROM listing_pages WHERE listing_id = ${listingId} AND status = 'done'
          GROUP BY part, endpoint, project_id, region_id HAVING min(count) <> max(count)) u) AS uneven,
        (SELECT coalesce(sum(count), 0)::bigint FROM listing_pages WHERE listing_id = ${listingId} AND page = 0) AS expected,
        (SELECT count(*)::bigint FROM listing_ids WHERE listing_id = ${listingId}) AS listed`;
    const error = listing.error ?? incompleteness(tally!);
    const status = error === null ? 'complete' : 'incomplete';
    let absent: ClaimRow[] = [];
    if (status === 'complete') {
      // A deletion already confirmed needs no request: the attempt is recorded as the GET's 404 would be.
      await tx`
        UPDATE targets t SET prev_attempt_at = t.last_attempt_at, last_attempt_at = now(), last_outcome = 'unchanged',
          last_status = 404, last_error = NULL
        FROM listings l, images i
        WHERE l.id = ${listingId} AND ${unlisted(tx, listingId)}
          AND (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id) AND i.deleted_at IS NOT NULL`;
      absent = await tx`
        WITH absent AS (
          SELECT t.project_id, t.region_id, t.image_id,
            (row_number() OVER (ORDER BY t.project_id, t.region_id, t.image_id) - 1) / ${confirm.batchSize} AS chunk
          FROM targets t JOIN listings l ON l.id = ${listingId}
          WHERE ${unlisted(tx, listingId)} AND t.queued_job IS NULL
            AND NOT EXISTS (SELECT 1 FROM images i
              WHERE (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id) AND i.deleted_at IS NOT NULL))
        UPDATE targets t SET queued_job = ${confirm.jobPrefix} || '-' || a.chunk, queued_at = now()
        FROM absent a WHERE (t.project_id, t.region_id, t.image_id) = (a.project_id, a.region_id, a.image_id) AND t.queued_job IS NULL
        RETURNING t.project_id, t.region_id, t.image_id, t.account, t.queued_job`;
    } else {
      // Every image the listing did not store, listed or not (a page may have been listed, then failed before it was stored).
      await tx`
        UPDATE targets t SET prev_attempt_at = t.last_attempt_at, last_attempt_at = now(), last_outcome = 'failed',
          last_status = NULL, last_error = ${`the listing of its scope was incomplete: ${error}`}
        FROM listings l
        WHERE l.id = ${listingId} AND ${scopeTargets(tx)} AND t.last_attempt_at < l.started_at`;
    }
    await tx`DELETE FROM listing_ids WHERE listing_id = ${listingId}`;
    await tx`
      UPDATE listings SET status = ${status}, finished_at = now(), error = ${error}, expected = ${tally!.expected},
        listed = ${tally!.listed}, absent = ${absent.length}
      WHERE id = ${listingId}`;
    return { status, scopeKey: listing.scope_key, error, expected: tally!.expected, listed: tally!.listed, absent } as const;
  });
  if (!finished) return undefined;
  const { absent, ...rest } = finished;
  return { ...rest, confirm: byJob(absent) };
}

type ClaimRow = { project_id: number; region_id: number; image_id: string; account: string; queued_job: string };

/** Claimed rows as batches: a scope's targets are of its account, so each batch is of one. */
function byJob(rows: ClaimRow[]): Claim[] {
  const claims = new Map<string, Claim>();
  for (const row of rows) {
    const claim = claims.get(row.queued_job) ?? { jobId: row.queued_job, account: row.account, triples: [] };
    claim.triples.push({ projectId: row.project_id, regionId: row.region_id, imageId: row.image_id });
    claims.set(row.queued_job, claim);
  }
  return [...claims.values()];
}

/**
 * The confirming GETs a listing that has ended still holds claims for: after
 * a crash between ending it and queueing them, they are queued again under
 * the same job ids (a job that exists is not added twice).
 */
export async function pendingConfirmations(
  sql: Sql,
  listingId: number,
  jobPrefix: string,
): Promise<{ scopeKey: string; claims: Claim[] } | undefined> {
  const [listing] = await sql<{ scope_key: string }[]>`
    SELECT scope_key FROM listings WHERE id = ${listingId} AND status = 'complete'`;
  if (!listing) return undefined;
  const rows = await sql<ClaimRow[]>`
    SELECT project_id, region_id, image_id, account, queued_job FROM targets
    WHERE scope_key = ${listing.scope_key} AND queued_job LIKE ${`${jobPrefix}-%`}`;
  return { scopeKey: listing.scope_key, claims: byJob(rows) };
}
