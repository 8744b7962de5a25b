import type { PendingQuery, Row, TransactionSql } from 'postgres';
import type { ChangeType } from '../interfaces.js';
import { GATHERED, WALK_MS, within, withSettings } from './readAs.js';
import type { ChangeRow } from './uiImage.js';

/** Where the next page starts: the last row's changed_at (as text, to the microsecond) and id. */
export type ChangesCursor = [string, number];

export interface ChangesQuery {
  /** changed_at at or after. */
  from?: Date;
  /** changed_at before. */
  to?: Date;
  account?: string;
  /** The actor's email, compared without case. */
  actor?: string;
  /** A field's name; one ending in "." (tags.) matches every field it begins. */
  field?: string;
  kind?: string;
  changeType?: ChangeType;
  after?: ChangesCursor;
  limit: number;
}

/** A change as image_change_log gives it (who made it included), with the image it is of. */
export interface FeedRow extends ChangeRow {
  project_id: number;
  region_id: number;
  image_id: string;
  image_name: string | null;
  account: string | null;
  kind: string | null;
}

export interface FeedPage {
  rows: FeedRow[];
  /** Where the next page starts; undefined when nothing older matches. */
  next?: ChangesCursor;
  /** The page holds fewer than `limit` rows only because the search for the actor stopped after ACTOR_SEARCH_LIMIT changes. */
  cutShort: boolean;
}

/** Changes looked at for one page filtered by actor before it is cut short. */
export const ACTOR_SEARCH_LIMIT = 5_000;
const ACTOR_BATCH = 500;

const and = (tx: TransactionSql, parts: PendingQuery<Row[]>[]) =>
  parts.reduce<PendingQuery<Row[]>>((all, part) => tx`${all} AND ${part}`, tx`true`);

/**
 * The filters image_changes answers, as conditions on it. Time and the cursor bound the changed_at index,
 * which the page walks newest first; an actor to the changes an entry of theirs may explain (image_actions'
 * triple index).
 */
function conditions(tx: TransactionSql, q: ChangesQuery, after?: ChangesCursor): PendingQuery<Row[]>[] {
  const where: PendingQuery<Row[]>[] = [];
  if (q.from !== undefined) where.push(tx`c.changed_at >= ${q.from}`);
  if (q.to !== undefined) where.push(tx`c.changed_at < ${q.to}`);
  if (after !== undefined) where.push(tx`(c.changed_at, c.id) < (${after[0]}::timestamptz, ${after[1]})`);
  if (q.field !== undefined) where.push(q.field.endsWith('.') ? tx`starts_with(c.field, ${q.field})` : tx`c.field = ${q.field}`);
  if (q.changeType !== undefined) where.push(tx`c.change_type = ${q.changeType}`);
  // Necessary, not sufficient: one of the actor's entries lies in the change's window (image_change_log's rule).
  if (q.actor !== undefined)
    where.push(tx`EXISTS (SELECT 1 FROM image_actions a
      WHERE (a.project_id, a.region_id, a.image_id) = (c.project_id, c.region_id, c.image_id) AND lower(a.email) = lower(${q.actor})
        AND a.acted_at <= c.changed_at AND (a.acted_at > c.observed_before OR c.observed_before IS NULL))`);
  return where;
}

/** The filters the changed image answers (account, kind), as conditions on images i. */
function imageConditions(tx: TransactionSql, q: ChangesQuery): PendingQuery<Row[]>[] {
  return [...(q.account === undefined ? [] : [tx`i.account = ${q.account}`]), ...(q.kind === undefined ? [] : [tx`i.kind = ${q.kind}`])];
}

type Candidate = { id: number; key: string };

const positionKey = (tx: TransactionSql) => tx`to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The next `limit` changes the filters allow, newest first, the changed images joined in by the planner's plan. */
export function joinedCandidates(tx: TransactionSql, q: ChangesQuery, limit: number, after?: ChangesCursor): Promise<Candidate[]> {
  const onImages = imageConditions(tx, q);
  const images =
    onImages.length === 0 ? tx`` : tx`JOIN images i ON (i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)`;
  return tx<Candidate[]>`
    SELECT c.id, ${positionKey(tx)} AS key
    FROM image_changes c ${images} WHERE ${and(tx, [...conditions(tx, q, after), ...onImages])}
    ORDER BY c.changed_at DESC, c.id DESC LIMIT ${limit}`;
}

/**
 * The same changes found by walking them newest first and testing each one's image as it passes (an
 * index-only probe of image_rows_image_id_idx): the planner, misjudging how many images of an account or
 * kind have changes, would join every image of it to every change and sort them (1 s over a million).
 */
export function walkedCandidates(tx: TransactionSql, q: ChangesQuery, limit: number, after?: ChangesCursor): Promise<Candidate[]> {
  // OFFSET 0 keeps the walk a subquery of its own: the image's test stays outside it, made change by change.
  return tx<Candidate[]>`
    SELECT c.id, ${positionKey(tx)} AS key FROM (
      SELECT c.id, c.changed_at, c.project_id, c.region_id, c.image_id FROM image_changes c
      WHERE ${and(tx, conditions(tx, q, after))} ORDER BY c.changed_at DESC, c.id DESC OFFSET 0) c
    WHERE (SELECT true FROM images i
      WHERE ${and(tx, [tx`(i.project_id, i.region_id, i.image_id) = (c.project_id, c.region_id, c.image_id)`, ...imageConditions(tx, q)])}
      LIMIT 1)
    ORDER BY c.changed_at DESC, c.id DESC LIMIT ${limit}`;
}

/**
 * The ids and positions of the next `limit` changes the filters allow, newest first. With a filter on the
 * image, walked for at most WALK_MS (no sort: the walk reads the changed_at index in order); a walk that
 * long has met few matches, so they are then joined with no index read in order (gathered and sorted:
 * about a second over a million images, where the planner's own plan may walk on for many).
 */
async function candidates(tx: TransactionSql, q: ChangesQuery, limit: number, after?: ChangesCursor): Promise<Candidate[]> {
  if (imageConditions(tx, q).length === 0) return joinedCandidates(tx, q, limit, after);
  return (
    (await within(tx, WALK_MS, (sp) => walkedCandidates(sp, q, limit, after), { enable_sort: 'off' })) ??
    (await withSettings(tx, GATHERED, (sp) => joinedCandidates(sp, q, limit, after)))
  );
}

/**
 * These changes as image_change_log has them, who made each included, newest first. The ids are a
 * value, so the view's own rule for who reads only their rows (a join into the view would read it whole).
 */
function logRows(tx: TransactionSql, ids: number[], actor?: string): Promise<FeedRow[]> {
  return tx<FeedRow[]>`
    SELECT l.id, l.version_id, l.changed_at, l.project_id, l.region_id, l.image_id, l.image_name, l.account, l.kind, l.change_type,
      l.field, l.old_value, l.new_value, l.actor_email, l.actor_user_id, l.action_type, l.action_id, l.actor_candidates
    FROM image_change_log l WHERE l.id = ANY(${ids}::bigint[]) ${actor === undefined ? tx`` : tx`AND lower(l.actor_email) = lower(${actor})`}
    ORDER BY l.changed_at DESC, l.id DESC`;
}

/** One page of the change feed, newest first: `limit` changes after the cursor. */
export async function changeFeed(tx: TransactionSql, q: ChangesQuery): Promise<FeedPage> {
  if (q.actor === undefined) {
    const found = await candidates(tx, q, q.limit, q.after);
    const last = found.at(-1);
    const rows = await logRows(
      tx,
      found.map((c) => c.id),
    );
    return { rows, next: found.length === q.limit && last ? [last.key, last.id] : undefined, cutShort: false };
  }
  // Who made a change is known only once the view has worked it out: look at the actor's images' changes a batch at a time.
  const rows: FeedRow[] = [];
  const keys = new Map<number, string>();
  let position = q.after;
  for (let looked = 0; looked < ACTOR_SEARCH_LIMIT; looked += ACTOR_BATCH) {
    const found = await candidates(tx, q, ACTOR_BATCH, position);
    for (const c of found) keys.set(c.id, c.key);
    rows.push(
      ...(await logRows(
        tx,
        found.map((c) => c.id),
        q.actor,
      )),
    );
    if (rows.length >= q.limit) {
      const shown = rows.slice(0, q.limit);
      const last = shown.at(-1)!;
      return { rows: shown, next: [keys.get(last.id)!, last.id], cutShort: false };
    }
    if (found.length < ACTOR_BATCH) return { rows, cutShort: false };
    const last = found.at(-1)!;
    position = [last.key, last.id];
  }
  return { rows, next: position, cutShort: true };
}

export interface SnapshotRow {
  id: number;
  taken_at: Date;
  image_count: number;
}

/** The latest audit snapshot taken at or before `at`; undefined when none is that old. */
export async function snapshotAtOrBefore(tx: TransactionSql, at: Date): Promise<SnapshotRow | undefined> {
  const [row] = await tx<SnapshotRow[]>`
    SELECT id, taken_at, image_count FROM audit_snapshots WHERE taken_at <= ${at} ORDER BY taken_at DESC, id DESC LIMIT 1`;
  return row;
}

export interface SnapshotDiffRow {
  project_id: number;
  region_id: number;
  image_id: string;
  difference: 'added' | 'removed' | 'changed';
  version_a: number | null;
  version_b: number | null;
  image_name: string | null;
  /** How many differences there are in all, however many are returned. */
  total: number;
}

/** The first `limit` images added, removed and changed from snapshot a to b (snapshot_diff), each with its name now. */
export function snapshotDifferences(tx: TransactionSql, a: number, b: number, limit: number): Promise<SnapshotDiffRow[]> {
  return tx<SnapshotDiffRow[]>`
    SELECT d.project_id, d.region_id, d.image_id, d.difference, d.version_a, d.version_b, i.name AS image_name,
      count(*) OVER ()::int AS total
    FROM snapshot_diff(${a}, ${b}) d
    LEFT JOIN images i ON (i.project_id, i.region_id, i.image_id) = (d.project_id, d.region_id, d.image_id)
    ORDER BY d.project_id, d.region_id, d.image_id LIMIT ${limit}`;
}
