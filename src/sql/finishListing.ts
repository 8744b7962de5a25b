import type { Sql } from '../db/db.js';
import { PAGE_LIMIT } from '../gcore/list-query.js';
import { storableString } from '../images/storable-text.js';
import { samplePlan, suspicion, type RegionTally } from '../discovery/scope-sample.js';
import type { Claim } from './claimTargets.js';
import type { Tx } from './tripleLock.js';
import { inListingScope } from './runScope.js';
import { creditListing } from './creditRuns.js';

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
  /** Live targets of the scope the complete listing did not return, claimed for a confirming GET (only a sample when `sampled`). */
  confirm: Claim[];
  /** Why the listing contradicts what is stored (scope-sample.ts), when that makes it confirm a sample first; else null. */
  suspect: string | null;
  /** How many of its absences are confirmed first as a sample; null exactly when `suspect` is. */
  sampled: number | null;
}

interface Tally {
  failed_error: string | null;
  repeated: number;
  unusable: number;
  uneven: string | null;
  expected: number;
  listed: number;
  /** Ids listed by two kinds' lists: counted by both, listed once. */
  shared: number;
}

/** Why the ids a listing returned are not all in listing_ids, or null: a crash emptied it (schema.ts, listing_ids_intact). */
async function lostIds(tx: Tx, listingId: number): Promise<string | null> {
  const [row] = await tx<{ lost: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM listing_pages WHERE listing_id = ${listingId})
      AND NOT EXISTS (SELECT 1 FROM listing_ids_intact WHERE listing_id = ${listingId}) AS lost`;
  return row!.lost
    ? 'the ids it had listed were lost: Postgres restarted after a crash, which empties the unlogged listing_ids; the next listing starts afresh'
    : null;
}

/** Why a listing whose pages all answered cannot be trusted to be whole, or null. */
function incompleteness(tally: Tally): string | null {
  if (tally.failed_error !== null) return tally.failed_error;
  if (tally.repeated > 0) return `pages repeated ${tally.repeated} images other pages had listed (does the server honour offset?)`;
  if (tally.uneven !== null) return `the count changed between pages (${tally.uneven}): the images changed while they were listed`;
  if (tally.unusable > 0) return `${tally.unusable} results had no usable image id`;
  if (Number(tally.listed) + tally.shared !== Number(tally.expected))
    return `the pages returned ${tally.listed} images where the API counts ${tally.expected}`;
  return null;
}

/** Of the targets in the listing's scope, the ones it did not return (while it is open: listing_ids holds what it returned). */
function unlisted(tx: Tx, listingId: number) {
  return tx`${inListingScope(tx)} AND NOT ${listedBy(tx, listingId)}`;
}

function listedBy(tx: Tx, listingId: number) {
  return tx`EXISTS (SELECT 1 FROM listing_ids x
      WHERE (x.listing_id, x.project_id, x.region_id, x.image_id) = (${listingId}, t.project_id, t.region_id, t.image_id))`;
}

/**
 * Of those, once a complete listing has ended, the ones it has not reached: not returned (off_list, as it
 * ended) and no attempt since it started. The ones it returned need none: it stored what changed.
 */
export function unreached(tx: Tx) {
  return tx`${inListingScope(tx)} AND t.off_list AND t.last_attempt_at < l.started_at`;
}

/** Records `error` as the attempt of every target `which` selects, so its runs finish and say why. */
export async function failUnreached(tx: Tx, listingId: number, error: string, which: ReturnType<typeof unreached>): Promise<void> {
  await tx`
    UPDATE targets t SET prev_attempt_at = t.last_attempt_at, last_attempt_at = now(), last_outcome = 'failed',
      last_status = NULL, last_error = ${error}
    FROM listings l
    WHERE l.id = ${listingId} AND ${which}`;
}

/** The target's image is stored as deleted. */
function storedDeleted(tx: Tx) {
  return tx`EXISTS (SELECT 1 FROM image_rows i
    WHERE (i.project_id, i.region_id, i.image_id) = (t.project_id, t.region_id, t.image_id) AND i.deleted_at IS NOT NULL)`;
}

/**
 * What a complete listing says of its scope, written as it ends and only where it changes something: its
 * targets it did not return are off the list, those it returned are on it, and it is the scope's latest
 * listing. Every image on the list was seen at its start (the view images), with no row written for it.
 */
async function recordSightings(tx: Tx, listingId: number): Promise<void> {
  await tx`
    UPDATE targets t SET off_list = true FROM listings l
    WHERE l.id = ${listingId} AND t.scope_key = l.scope_key AND t.left_scope_at IS NULL AND NOT t.off_list
      AND NOT ${listedBy(tx, listingId)}`;
  await tx`
    UPDATE targets t SET off_list = false FROM listing_ids x, listings l
    WHERE x.listing_id = ${listingId} AND l.id = ${listingId} AND (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)
      AND t.scope_key = l.scope_key AND t.off_list`;
  await tx`
    INSERT INTO latest_listings (scope_key, listing_id, started_at)
    SELECT scope_key, id, started_at FROM listings WHERE id = ${listingId}
    ON CONFLICT (scope_key) DO UPDATE SET listing_id = EXCLUDED.listing_id, started_at = EXCLUDED.started_at`;
}

/**
 * An incomplete listing's targets: those it did not reach record its failure; those it returned that were
 * off the list record an attempt (it stored what changed), so its runs can finish. It moves nothing on or off
 * the list: it is not the scope's latest complete listing.
 */
async function recordIncomplete(tx: Tx, listingId: number, error: string): Promise<void> {
  await failUnreached(
    tx,
    listingId,
    `the listing of its scope was incomplete: ${error}`,
    tx`${unlisted(tx, listingId)} AND t.last_attempt_at < l.started_at`,
  );
  await tx`
    UPDATE targets t SET prev_attempt_at = t.last_attempt_at, last_attempt_at = now(), last_outcome = 'unchanged', last_status = 200,
      last_error = NULL
    FROM listings l
    WHERE l.id = ${listingId} AND ${inListingScope(tx)} AND t.off_list AND t.last_attempt_at < l.started_at AND ${listedBy(tx, listingId)}`;
}

/**
 * Claims for confirming GETs the scope's live targets that `which` selects,
 * in batches named `jobPrefix-n`; with `limit`, only that many, picked
 * evenly by a hash (the same ones if the listing is ended again).
 */
export async function claimAbsences(
  tx: Tx,
  listingId: number,
  which: ReturnType<typeof unlisted>,
  confirm: { batchSize: number; jobPrefix: string },
  limit: number | null = null,
): Promise<ClaimRow[]> {
  return tx<ClaimRow[]>`
    WITH picked AS (
      SELECT t.project_id, t.region_id, t.image_id
      FROM targets t JOIN listings l ON l.id = ${listingId}
      WHERE ${which} AND t.queued_job IS NULL AND NOT ${storedDeleted(tx)}
      ORDER BY md5(t.image_id || ${String(listingId)}) LIMIT ${limit}::int),
    absent AS (
      SELECT *, (row_number() OVER (ORDER BY project_id, region_id, image_id) - 1) / ${confirm.batchSize} AS chunk FROM picked)
    UPDATE targets t SET queued_job = ${confirm.jobPrefix} || '-' || a.chunk, queued_at = now()
    FROM absent a WHERE (t.project_id, t.region_id, t.image_id) = (a.project_id, a.region_id, a.image_id) AND t.queued_job IS NULL
    RETURNING t.project_id, t.region_id, t.image_id, t.account, t.queued_job`;
}

/**
 * Per project and region the scope holds live stored images in (less those a
 * listing is not expected to return: the server may read a filter otherwise
 * for them): how many, and the counts the listing's parts answered there.
 */
async function regionTallies(tx: Tx, listingId: number): Promise<RegionTally[]> {
  return tx<RegionTally[]>`
    SELECT t.project_id AS "projectId", t.region_id AS "regionId", count(*)::int AS stored,
      (SELECT sum(p.count)::int FROM listing_pages p
        WHERE p.listing_id = ${listingId} AND p.page = 0 AND (p.project_id, p.region_id) = (t.project_id, t.region_id)) AS counted
    FROM targets t JOIN listings l ON l.id = ${listingId}
    WHERE ${inListingScope(tx)} AND NOT ${storedDeleted(tx)} AND t.filter_unsure_at IS NULL
    GROUP BY t.project_id, t.region_id
    ORDER BY t.project_id, t.region_id`;
}

async function pagesWaiting(sql: Sql | Tx, listingId: number): Promise<boolean> {
  const [waiting] = await sql`SELECT 1 FROM listing_pages WHERE listing_id = ${listingId} AND status = 'queued' LIMIT 1`;
  return waiting !== undefined;
}

/**
 * Ends a listing once none of its pages waits for an answer; exactly one of
 * the processes that try ends it. Complete (every page answered, no id
 * repeated, the ids add up to the counts): the scope's deleted images it did
 * not return keep their deletion, and its live ones are claimed for a
 * confirming GET; if it contradicts what is stored (scope-sample.ts), only a
 * sample of them is, kept in listing_samples for its answers to decide
 * (sql/listingSamples.ts). Incomplete: nothing is deleted or confirmed, and
 * the targets it did not reach record the failure, so runs finish and say so.
 */
export async function finishListing(
  sql: Sql,
  listingId: number,
  confirm: { batchSize: number; jobPrefix: string },
): Promise<FinishedListing | undefined> {
  // Most pages end while others still wait: they look without the lock, which the listing's end holds for seconds at
  // scale. A page's answer commits before it looks, so the last to commit sees none waiting and takes the lock.
  if (await pagesWaiting(sql, listingId)) return undefined;
  const finished = await sql.begin(async (tx) => {
    const [listing] = await tx<{ scope_key: string; error: string | null }[]>`
      SELECT scope_key, error FROM listings WHERE id = ${listingId} AND status = 'listing' FOR UPDATE`;
    if (!listing) return undefined;
    if (await pagesWaiting(tx, listingId)) return undefined;
    // listing_ids fills and empties with each listing, so its statistics are never current (autovacuum last saw it
    // empty, say): without fresh ones the planner takes the anti-joins below for nested loops, a minute at 25,000 ids.
    await tx`ANALYZE listing_ids`;
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
        (SELECT coalesce(sum(shared), 0)::int FROM listing_pages WHERE listing_id = ${listingId}) AS shared,
        (SELECT count(*)::bigint FROM listing_ids WHERE listing_id = ${listingId}) AS listed`;
    const error = listing.error ?? (await lostIds(tx, listingId)) ?? incompleteness(tally!);
    const status = error === null ? 'complete' : 'incomplete';
    let absent: ClaimRow[] = [];
    let unconfirmed = 0;
    let suspect: string | null = null;
    let sampled: number | null = null;
    if (error === null) {
      const contradiction = suspicion(await regionTallies(tx, listingId));
      const [live] = await tx<{ n: number }[]>`
        SELECT count(*)::int AS n FROM targets t JOIN listings l ON l.id = ${listingId}
        WHERE ${unlisted(tx, listingId)} AND t.queued_job IS NULL AND NOT ${storedDeleted(tx)}`;
      unconfirmed = live!.n;
      sampled = samplePlan(unconfirmed, contradiction);
      // A contradiction over no more absences than a sample would take changes nothing: each is confirmed, and judged by the scope.
      suspect = sampled === null ? null : contradiction;
      absent = await claimAbsences(tx, listingId, unlisted(tx, listingId), confirm, sampled);
      if (sampled !== null) {
        await tx`
          INSERT INTO listing_samples (listing_id, project_id, region_id, image_id)
          SELECT ${listingId}, * FROM unnest(${absent.map((a) => a.project_id)}::int[], ${absent.map((a) => a.region_id)}::int[],
            ${absent.map((a) => a.image_id)}::text[])`;
        sampled = absent.length;
        // Every absence was claimed by another job meanwhile: each is refreshed by its GET there, and no sample waits.
        if (sampled === 0) await tx`UPDATE listings SET sample_contradicted = 0 WHERE id = ${listingId}`;
      }
      await recordSightings(tx, listingId);
    } else {
      await recordIncomplete(tx, listingId, error);
    }
    await creditListing(tx, listingId);
    // An image the listing returned is no longer one the server may read its scope's filters otherwise for. Found
    // from the scope's targets (its index, then the few noted), not from the ids listed: joined to those, the
    // planner reads every target there is.
    await tx`
      UPDATE targets t SET filter_unsure_at = NULL FROM listings l
      WHERE l.id = ${listingId} AND t.scope_key = l.scope_key AND t.filter_unsure_at IS NOT NULL AND ${listedBy(tx, listingId)}`;
    await tx`DELETE FROM listing_ids WHERE listing_id = ${listingId}`;
    await tx`DELETE FROM listing_ids_intact WHERE listing_id = ${listingId}`;
    await tx`
      UPDATE listings SET status = ${status}, finished_at = now(), error = ${error}, expected = ${tally!.expected},
        listed = ${tally!.listed}, absent = ${unconfirmed}, suspect = ${suspect}, sampled = ${sampled}
      WHERE id = ${listingId}`;
    return {
      status,
      scopeKey: listing.scope_key,
      error,
      expected: tally!.expected,
      listed: tally!.listed,
      absent,
      suspect,
      sampled,
    } as const;
  });
  if (!finished) return undefined;
  const { absent, ...rest } = finished;
  return { ...rest, confirm: byJob(absent) };
}

export type ClaimRow = { project_id: number; region_id: number; image_id: string; account: string; queued_job: string };

/** Claimed rows as batches: a scope's targets are of its account, so each batch is of one. */
export function byJob(rows: ClaimRow[]): Claim[] {
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
