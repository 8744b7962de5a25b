import type { PendingQuery, Row, TransactionSql } from 'postgres';

/** Where the next page starts: the last row's changed_at (as text, to the microsecond) and id. */
export type ChangesCursor = [string, number];

export const CHANGE_TYPES = ['created', 'updated', 'deleted', 'restored'] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

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

export interface FeedRow {
  id: number;
  changed_at: Date;
  /** changed_at to the microsecond, for the next page's cursor. */
  changed_at_key: string;
  project_id: number;
  region_id: number;
  image_id: string;
  image_name: string | null;
  account: string | null;
  kind: string | null;
  change_type: string;
  field: string | null;
  old_value: unknown;
  new_value: unknown;
  actor_email: string | null;
  actor_user_id: string | null;
  action_type: string | null;
  actor_candidates: number;
}

/**
 * The filters as conditions on image_change_log. Time and the cursor bound
 * image_changes' changed_at index; the others filter the rows it yields.
 */
function conditions(tx: TransactionSql, q: ChangesQuery): PendingQuery<Row[]>[] {
  const where: PendingQuery<Row[]>[] = [];
  if (q.from !== undefined) where.push(tx`l.changed_at >= ${q.from}`);
  if (q.to !== undefined) where.push(tx`l.changed_at < ${q.to}`);
  if (q.after !== undefined) where.push(tx`(l.changed_at, l.id) < (${q.after[0]}::timestamptz, ${q.after[1]})`);
  if (q.account !== undefined) where.push(tx`l.account = ${q.account}`);
  if (q.actor !== undefined) where.push(tx`lower(l.actor_email) = lower(${q.actor})`);
  if (q.field !== undefined) where.push(q.field.endsWith('.') ? tx`starts_with(l.field, ${q.field})` : tx`l.field = ${q.field}`);
  if (q.kind !== undefined) where.push(tx`l.kind = ${q.kind}`);
  if (q.changeType !== undefined) where.push(tx`l.change_type = ${q.changeType}`);
  return where;
}

/** One page of the change feed, newest first: `limit` changes after the cursor. */
export function changeFeed(tx: TransactionSql, q: ChangesQuery): Promise<FeedRow[]> {
  const where = conditions(tx, q).reduce<PendingQuery<Row[]>>((all, part) => tx`${all} AND ${part}`, tx`true`);
  return tx<FeedRow[]>`
    SELECT l.id, l.changed_at, to_char(l.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS changed_at_key,
      l.project_id, l.region_id, l.image_id, l.image_name, l.account, l.kind, l.change_type, l.field, l.old_value, l.new_value,
      l.actor_email, l.actor_user_id, l.action_type, l.actor_candidates
    FROM image_change_log l WHERE ${where}
    ORDER BY l.changed_at DESC, l.id DESC LIMIT ${q.limit}`;
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
