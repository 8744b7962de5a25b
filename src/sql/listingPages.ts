import type { Sql } from '../db/db.js';
import type { ListPart } from '../gcore/list-query.js';
import type { PageJobData } from '../queues/queue.js';
import { ORDINARY, type ImageKind } from '../images/image-kinds.js';
import type { Triple } from '../interfaces.js';
import { storableString } from '../images/storable-text.js';
import { TARGETS_LOCK } from './replaceTargets.js';
import type { Tx } from './tripleLock.js';

/** A page to fetch, as listing_pages holds it, with the scope its listing is of. */
export interface QueuedPage {
  listingId: number;
  scopeKey: string;
  part: number;
  page: number;
  projectId: number;
  regionId: number;
  /** A kind's list endpoint (image-kinds.ts). */
  endpoint: string;
  query: Array<[string, string]>;
  /** False once the scope is no longer configured: the page is not fetched. */
  scopeConfigured: boolean;
}

/** The page a job is for, while it still waits for its answer; undefined once it has one (the job ran before). */
export async function queuedPage(sql: Sql, job: Pick<PageJobData, 'listingId' | 'part' | 'page'>): Promise<QueuedPage | undefined> {
  const [row] = await sql<QueuedPage[]>`
    SELECT p.listing_id AS "listingId", l.scope_key AS "scopeKey", p.part, p.page, p.project_id AS "projectId",
      p.region_id AS "regionId", p.endpoint, p.query, EXISTS (SELECT 1 FROM scopes s WHERE s.key = l.scope_key) AS "scopeConfigured"
    FROM listing_pages p JOIN listings l ON l.id = p.listing_id
    WHERE (p.listing_id, p.part, p.page) = (${job.listingId}, ${job.part}, ${job.page}) AND p.status = 'queued'`;
  return row;
}

/** Pages of a listing (or of one part) still without an answer: the jobs to queue again after a crash between commit and queueing. */
export async function pagesToQueue(sql: Sql, listingId: number, part?: number): Promise<Array<{ part: number; page: number }>> {
  return sql<Array<{ part: number; page: number }>>`
    SELECT part, page FROM listing_pages
    WHERE listing_id = ${listingId} AND status = 'queued' AND (${part ?? null}::int IS NULL OR part = ${part ?? null}::int)
    ORDER BY part, page`;
}

/** A listing's parts, each with its first page; the listing moves from expanding to listing. False when it had already moved. */
export async function planParts(sql: Sql, listingId: number, parts: ListPart[]): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [moved] = await tx`UPDATE listings SET status = 'listing' WHERE id = ${listingId} AND status = 'expanding' RETURNING 1`;
    if (!moved) return false;
    // Before any id is listed, and emptied with listing_ids by a crash (schema.ts, listing_ids_intact).
    await tx`INSERT INTO listing_ids_intact (listing_id) VALUES (${listingId}) ON CONFLICT DO NOTHING`;
    if (parts.length > 0) {
      await tx`
        INSERT INTO listing_pages (listing_id, part, page, project_id, region_id, endpoint, query)
        SELECT ${listingId}, n - 1, 0, p, r, e, q::jsonb
        FROM unnest(${parts.map((x) => x.projectId)}::int[], ${parts.map((x) => x.regionId)}::int[], ${parts.map((x) => x.endpoint)}::text[],
          ${parts.map((x) => JSON.stringify(x.query))}::text[]) WITH ORDINALITY AS x(p, r, e, q, n)`;
    }
    return true;
  });
}

/** What recordListed found of a page's triples. */
export interface Listed {
  /** How many another page of the same kind's lists had already listed (a server that does not honour offset repeats them). */
  repeated: number;
  /** How many another kind's list of the listing had already listed: one image that both kinds' endpoints return. */
  shared: number;
  /** Image ids that are targets of another account: that account's key fetches and stores them, not this listing. */
  otherAccounts: Set<string>;
}

/**
 * Marks every listed triple as a target of the scope and notes which page
 * listed it. A new one is a target of the scope, of its account, on its
 * schedule; an explicit one of the same account, or one that had left a
 * scope (of any account: no one refreshes it), is taken in; one of another
 * live scope, or an explicit one of another account, stays with it. A new
 * one is of `kind` (the list's) until its image is stored (images.kind).
 */
export async function recordListed(
  sql: Sql,
  page: QueuedPage,
  triples: Triple[],
  kind: ImageKind = ORDINARY,
  passedOver: Triple[] = [],
): Promise<Listed> {
  if (triples.length + passedOver.length === 0) return { repeated: 0, shared: 0, otherAccounts: new Set() };
  const ids = triples.map((t) => t.imageId);
  // Listed, so not absent, but not in the scope: a list that takes no filters returned them, and the scope's filters leave them out.
  const seen = [...ids, ...passedOver.map((t) => t.imageId)];
  const ownLists = kind.lists.map((list) => list.endpoint);
  return sql.begin(async (tx) => {
    // A reconcile that removes or reschedules the scope waits for this page, or this page for it.
    await tx`SELECT pg_advisory_xact_lock_shared(${TARGETS_LOCK})`;
    // One statement for the common case (every id already a target of the scope, listed once): each id is
    // looked up once in targets, and recorded in listing_ids. Its RETURNING leaves out what another page
    // (or this one, run before) had listed: a page listing the same id at the same time waits on the
    // unique key, so exactly one of them records it.
    const rows = await tx<{ image_id: string; recorded: boolean; writes: boolean; other: boolean }[]>`
    WITH seen AS (SELECT image_id, n <= ${ids.length} AS kept FROM unnest(${seen}::text[]) WITH ORDINALITY AS x(image_id, n)),
    listed AS (
      INSERT INTO listing_ids (listing_id, project_id, region_id, image_id, part, page)
      SELECT ${page.listingId}, ${page.projectId}, ${page.regionId}, image_id, ${page.part}, ${page.page} FROM seen
      ON CONFLICT DO NOTHING
      RETURNING image_id)
    SELECT x.image_id, r.image_id IS NOT NULL AS recorded,
      coalesce(x.kept AND (t.image_id IS NULL OR ${adoptable(tx)}), false) AS writes,
      coalesce(x.kept AND t.account <> l.account, false) AS other
    FROM seen x LEFT JOIN listed r ON r.image_id = x.image_id
    LEFT JOIN scopes s ON s.key = ${page.scopeKey} LEFT JOIN listings l ON l.id = ${page.listingId}
    LEFT JOIN targets t ON (t.project_id, t.region_id, t.image_id) = (${page.projectId}, ${page.regionId}, x.image_id)`;
    const recorded = new Set(rows.filter((r) => r.recorded).map((r) => r.image_id));
    let otherAccounts = new Set(rows.filter((r) => r.other).map((r) => r.image_id));
    if (rows.some((r) => r.writes)) {
      await addTargets(tx, page, ids, kind);
      // Read after the writes, in a statement of its own, so it sees what a page listed at the same time committed.
      const others = await tx<{ image_id: string }[]>`
        SELECT t.image_id FROM targets t JOIN listings l ON l.id = ${page.listingId}
        WHERE (t.project_id, t.region_id) = (${page.projectId}, ${page.regionId}) AND t.image_id = ANY(${ids}::text[])
          AND t.account <> l.account`;
      otherAccounts = new Set(others.map((o) => o.image_id));
    }
    const unrecorded = seen.filter((id) => !recorded.has(id));
    if (unrecorded.length === 0) return { repeated: 0, shared: 0, otherAccounts };
    const [row] = await tx<{ repeated: number; shared: number }[]>`
      SELECT count(*) FILTER (WHERE p.endpoint = ANY(${ownLists}::text[]))::int AS repeated,
        count(*) FILTER (WHERE p.endpoint <> ALL(${ownLists}::text[]))::int AS shared
      FROM unnest(${unrecorded}::text[]) AS x(image_id)
      JOIN listing_ids l
        ON (l.listing_id, l.project_id, l.region_id, l.image_id) = (${page.listingId}, ${page.projectId}, ${page.regionId}, x.image_id)
        AND (l.part, l.page) <> (${page.part}, ${page.page})
      JOIN listing_pages p ON (p.listing_id, p.part, p.page) = (l.listing_id, l.part, l.page)`;
    return { repeated: row!.repeated, shared: row!.shared, otherAccounts };
  });
}

/**
 * Of a listed id's target `t` and its scope `s`: one recordListed takes in (it had left a scope, or was
 * explicit), unless it is another account's that someone still refreshes.
 */
function adoptable(tx: Tx) {
  return tx`(t.scope_key IS NULL OR t.left_scope_at IS NOT NULL)
    -- Another account's target stays its own, unless no one refreshes it any more (it left its scope).
    AND (t.account = s.account OR (NOT t.explicit AND t.left_scope_at IS NOT NULL))`;
}

/** A page's new triples become targets of its scope; the adoptable ones are taken in. */
async function addTargets(tx: Tx, page: QueuedPage, ids: string[], kind: ImageKind): Promise<void> {
  // Only what changes is written: a target already of this scope (the common case) is neither updated nor
  // locked (an ON CONFLICT DO UPDATE ... WHERE would lock every row it skips, a WAL record and a page image each).
  await tx`
    WITH input AS (SELECT image_id FROM unnest(${ids}::text[]) AS x(image_id)),
    added AS (
      INSERT INTO targets (project_id, region_id, image_id, account, schedule_key, interval_seconds, explicit, scope_key, kind)
      SELECT ${page.projectId}, ${page.regionId}, x.image_id, s.account, s.schedule_key, s.interval_seconds, false, s.key, ${kind.name}
      FROM input x JOIN scopes s ON s.key = ${page.scopeKey}
      WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE (t.project_id, t.region_id, t.image_id) = (${page.projectId}, ${page.regionId}, x.image_id))
      ON CONFLICT (project_id, region_id, image_id) DO NOTHING
      RETURNING 1),
    -- Taken in: off the list until a complete listing of the scope returns it (images.last_seen_at must not
    -- claim the scope's earlier listings saw it).
    adopted AS (
      UPDATE targets t SET scope_key = s.key, left_scope_at = NULL, account = s.account, off_list = true,
        schedule_key = CASE WHEN t.explicit THEN t.schedule_key ELSE s.schedule_key END,
        interval_seconds = CASE WHEN t.explicit THEN t.interval_seconds ELSE s.interval_seconds END
      FROM input x, scopes s
      WHERE s.key = ${page.scopeKey} AND (t.project_id, t.region_id, t.image_id) = (${page.projectId}, ${page.regionId}, x.image_id)
        AND ${adoptable(tx)}
      RETURNING 1)
    SELECT 1`;
}

export interface PageAnswer {
  count: number;
  results: number;
  repeated: number;
  unusable: number;
  /** Listed by another kind's list of the listing before (Listed.shared). */
  shared: number;
}

/**
 * Records a page's answer or its failure. The first page of a part also adds
 * the part's other pages, as its count says; returns them, to be queued.
 */
export async function finishPage(
  sql: Sql,
  page: QueuedPage,
  outcome: { answer: PageAnswer; pageLimit: number } | { error: string },
): Promise<Array<{ part: number; page: number }>> {
  const added = await sql.begin(async (tx) => {
    const key = tx`(listing_id, part, page) = (${page.listingId}, ${page.part}, ${page.page}) AND status = 'queued'`;
    if ('error' in outcome) {
      // The error quotes what the network sent, which may hold characters Postgres refuses.
      await tx`UPDATE listing_pages SET status = 'failed', error = ${storableString(outcome.error)} WHERE ${key}`;
      return [];
    }
    const { answer, pageLimit } = outcome;
    const [done] = await tx`
      UPDATE listing_pages SET status = 'done', count = ${answer.count}, results = ${answer.results}, repeated = ${answer.repeated},
        unusable = ${answer.unusable}, shared = ${answer.shared}
      WHERE ${key} RETURNING 1`;
    if (!done || page.page !== 0) return [];
    // A first page shorter than the count allows already proves the listing incomplete: its other pages are not fetched.
    const short = answer.results < Math.min(pageLimit, answer.count);
    const pages = short ? 1 : Math.ceil(answer.count / pageLimit);
    return tx<Array<{ part: number; page: number }>>`
      INSERT INTO listing_pages (listing_id, part, page, project_id, region_id, endpoint, query)
      SELECT ${page.listingId}, ${page.part}, n, ${page.projectId}, ${page.regionId}, ${page.endpoint}, ${JSON.stringify(page.query)}::jsonb
      FROM generate_series(1, ${pages - 1}) n
      ON CONFLICT DO NOTHING
      RETURNING part, page`;
  });
  return added as Array<{ part: number; page: number }>;
}

/** Listings that have not ended: of one run, or every one started more than `olderThanMs` ago. */
export async function openListings(
  sql: Sql,
  which: { runId: number } | { olderThanMs: number },
): Promise<Array<{ id: number; account: string; status: 'expanding' | 'listing' }>> {
  const runId = 'runId' in which ? which.runId : null;
  const olderThanMs = 'olderThanMs' in which ? which.olderThanMs : null;
  return sql<Array<{ id: number; account: string; status: 'expanding' | 'listing' }>>`
    SELECT id, account, status FROM listings
    WHERE status IN ('expanding', 'listing') AND (${runId}::bigint IS NULL OR run_id = ${runId}::bigint)
      AND (${olderThanMs}::int IS NULL OR started_at < now() - make_interval(secs => ${olderThanMs}::int / 1000.0))
    ORDER BY id`;
}
