import type { Sql } from '../db/db.js';

/**
 * Rows one DELETE removes at most. Each batch is a transaction of its own, so it holds its row locks
 * for milliseconds: a worker recording a page or finishing a listing never queues behind a prune, and
 * a backlog (a retention just lowered) goes in as many short steps as it takes. 1,000 rows is one
 * listing's pages for a scope of 1,000,000 images (a page holds up to 1,000), and a round of such
 * batches took about 60 ms on a busy 2-core machine (docs/operations.md, "Retention").
 */
const PRUNE_BATCH_ROWS = 1000;

/** The rows each batch removed, per table (a batch that removed nothing is not listed). */
export interface PruneBatches {
  listingPages: number[];
  listingSamples: number[];
  listings: number[];
  runs: number[];
  failures: number[];
}

/** One batch's DELETE: at most `batchSize` rows older than `cutoff`. */
type Statement = (sql: Sql, cutoff: string, batchSize: number) => Promise<{ count: number }>;

/**
 * Drops what SYNC_RETENTION_DAYS has outlived from the operational tables, in batches of at most
 * `batchSize` rows, each its own transaction, children before parents so that no DELETE cascades
 * into more than its batch. History (image_versions, image_changes, audit snapshots) and the audit
 * log's entries (image_actions) are never pruned. Several processes may prune at once: a batch skips
 * the rows another holds (SKIP LOCKED), which that one removes, so neither waits for the other.
 */
export async function pruneOperational(sql: Sql, retentionDays: number, batchSize = PRUNE_BATCH_ROWS): Promise<PruneBatches> {
  // One cutoff for every batch, from the database's clock, so the tables agree on what is old.
  const [row] = await sql<{ cutoff: string }[]>`SELECT (now() - make_interval(days => ${retentionDays}))::text AS cutoff`;
  const batch = async (statement: Statement) => (await statement(sql, row!.cutoff, batchSize)).count;
  const pruned: PruneBatches = { listingPages: [], listingSamples: [], listings: [], runs: [], failures: [] };
  const record = (table: keyof PruneBatches, removed: number) => {
    if (removed > 0) pruned[table].push(removed);
    return removed;
  };
  // Runs go with what they hold, a round at a time, the oldest first: a round removes pages and samples of
  // the oldest listings left, those listings once empty, then runs with no listing left; so no round passes
  // again over what an earlier one emptied. A round that removed nothing found nothing it could take: what
  // is left is held by another prune, whose rounds go on while they remove something.
  let removed: number;
  do {
    removed =
      record('listingPages', await batch(oldListingPages)) +
      record('listingSamples', await batch(oldListingSamples)) +
      record('listings', await batch(oldListings)) +
      record('runs', await batch(oldRuns));
  } while (removed > 0);
  // A failure is no other table's parent: a short batch means the rest is gone, or held by a prune that removes it.
  do removed = record('failures', await batch(oldFailures));
  while (removed === batchSize);
  return pruned;
}

/**
 * The oldest listings whose time is over, at most a batch: ended, of a finished run that started before
 * the cutoff, and not their scope's latest ended listing (`status`, the catch-up after a restart and a
 * confirming GET's leaving read a scope's latest). An open listing, and every listing of a running run
 * (whose counts are read from them), stays. The order reads them through sync_runs_started_idx: a
 * prune with nothing to do reads only the few old runs kept, where without it the planner scans every
 * listing; and the batch bounds what the statements around it probe, so none passes again over the
 * pages and listings an earlier round removed.
 */
function oldestListings(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    SELECT l.id FROM sync_runs r JOIN listings l ON l.run_id = r.id
    WHERE r.started_at < ${cutoff}::timestamptz AND r.finished_at IS NOT NULL AND l.finished_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM listings n WHERE n.scope_key = l.scope_key AND n.id > l.id AND n.finished_at IS NOT NULL)
    ORDER BY r.started_at LIMIT ${batchSize}`;
}

function oldListingPages(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    DELETE FROM listing_pages WHERE (listing_id, part, page) IN (
      SELECT p.listing_id, p.part, p.page FROM (${oldestListings(sql, cutoff, batchSize)}) l
      JOIN listing_pages p ON p.listing_id = l.id
      LIMIT ${batchSize} FOR UPDATE OF p SKIP LOCKED)`;
}

function oldListingSamples(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    DELETE FROM listing_samples WHERE (listing_id, project_id, region_id, image_id) IN (
      SELECT s.listing_id, s.project_id, s.region_id, s.image_id FROM (${oldestListings(sql, cutoff, batchSize)}) l
      JOIN listing_samples s ON s.listing_id = l.id
      LIMIT ${batchSize} FOR UPDATE OF s SKIP LOCKED)`;
}

/**
 * Of the oldest listings, those whose pages and samples are gone (a listing whose pages a round left
 * goes in a later one); an ended listing's ids went when it ended, so the cascade removes nothing.
 * `= ANY (ARRAY(...))` makes the planner look each one up by its key, where `IN` had it scan them all.
 */
function oldListings(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    DELETE FROM listings WHERE id IN (
      SELECT l.id FROM listings l
      WHERE l.id = ANY (ARRAY(${oldestListings(sql, cutoff, batchSize)}))
        AND NOT EXISTS (SELECT 1 FROM listing_pages p WHERE p.listing_id = l.id)
        AND NOT EXISTS (SELECT 1 FROM listing_samples s WHERE s.listing_id = l.id)
      FOR UPDATE SKIP LOCKED)`;
}

/** Finished runs that started before the cutoff and have no listing left (a scope's latest keeps its run). */
function oldRuns(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    DELETE FROM sync_runs WHERE id IN (
      SELECT r.id FROM sync_runs r
      WHERE r.started_at < ${cutoff}::timestamptz AND r.finished_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.run_id = r.id)
      ORDER BY r.started_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}

/**
 * Failures recorded before the cutoff, except the latest of a target whose last refresh failed: the
 * cookbook's "triples whose last refresh failed" reads its attempts and time from it.
 */
function oldFailures(sql: Sql, cutoff: string, batchSize: number) {
  return sql`
    DELETE FROM sync_failures WHERE id IN (
      SELECT f.id FROM sync_failures f
      WHERE f.failed_at < ${cutoff}::timestamptz
        AND NOT EXISTS (SELECT 1 FROM targets t
          WHERE (t.project_id, t.region_id, t.image_id) = (f.project_id, f.region_id, f.image_id) AND t.last_outcome = 'failed'
            AND NOT EXISTS (SELECT 1 FROM sync_failures n
              WHERE (n.project_id, n.region_id, n.image_id) = (f.project_id, f.region_id, f.image_id)
                AND (n.failed_at, n.id) > (f.failed_at, f.id)))
      ORDER BY f.failed_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
