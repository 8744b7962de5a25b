import type { PendingQuery, Row, TransactionSql } from 'postgres';
import { GATHERED, WALK_MS, within, withSettings } from './readAs.js';
import type { ImageDetail } from './uiImage.js';

/** The orders the inventory pages through, each with an index of its own (migration 0031). */
export type InventorySort = 'name' | 'changed';

/** Where the next page starts: the last row's sort value and triple. */
export type InventoryCursor = [string, number, number, string];

export interface InventoryQuery {
  account?: string;
  projectId?: number;
  regionId?: number;
  kind?: string;
  /** true: the project's own images; false: public or shared ones (image_owned). */
  owned?: boolean;
  /** os_distro, compared without case. */
  os?: string;
  tag?: { key: string; value?: string };
  /** An image id, or text its name holds (without case). */
  search?: string;
  /** Only images unused_images names. */
  unused?: boolean;
  /** Images deleted in the last this many days instead of the live ones. */
  deletedWithinDays?: number;
  sort: InventorySort;
  after?: InventoryCursor;
  limit: number;
}

/** An image as the inventory lists it: the stored columns of the image (uiImage.ts ImageDetail) it shows, and what a list adds. */
export interface InventoryRow extends Pick<
  ImageDetail,
  | 'project_id'
  | 'region_id'
  | 'image_id'
  | 'name'
  | 'kind'
  | 'account'
  | 'region'
  | 'os_distro'
  | 'os_version'
  | 'visibility'
  | 'owned'
  | 'status'
  | 'last_changed_at'
  | 'last_seen_at'
  | 'deleted_at'
> {
  /** Its current tags as key=value, sorted by key. */
  tags: string[];
  /** The sort value, as text, for the next page's cursor. */
  sort_key: string;
}

/** A LIKE pattern matching `text` anywhere, its wildcards taken literally. */
const holding = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * The filters. `perRow`: the tag and unused tests as scalar subqueries, which Postgres evaluates row by row
 * as it walks an order's index (it would turn EXISTS into a join over every match, and sort them).
 */
function filters(tx: TransactionSql, q: InventoryQuery, perRow = false): PendingQuery<Row[]>[] {
  const where: PendingQuery<Row[]>[] = [];
  const same = tx`(i.project_id, i.region_id, i.image_id)`;
  if (q.account !== undefined) where.push(tx`i.account = ${q.account}`);
  if (q.projectId !== undefined) where.push(tx`i.project_id = ${q.projectId}`);
  if (q.regionId !== undefined) where.push(tx`i.region_id = ${q.regionId}`);
  if (q.kind !== undefined) where.push(tx`i.kind = ${q.kind}`);
  if (q.owned !== undefined) where.push(tx`i.owned = ${q.owned}`);
  if (q.os !== undefined) where.push(tx`lower(i.os_distro) = lower(${q.os})`);
  if (q.tag !== undefined) {
    const tagged = tx`FROM image_tags t WHERE (t.project_id, t.region_id, t.image_id) = ${same}
      AND t.key = ${q.tag.key} ${q.tag.value === undefined ? tx`` : tx`AND t.value = ${q.tag.value}`}`;
    where.push(perRow ? tx`(SELECT true ${tagged} LIMIT 1)` : tx`EXISTS (SELECT 1 ${tagged})`);
  }
  if (q.search !== undefined) {
    // Walked, ILIKE as Postgres computes it in a multibyte database (both sides lowered, then LIKE), the pattern
    // lowered once and not for every image: a quarter less time over 230,000 names. The planner's way keeps
    // ILIKE, which the trigram index serves.
    const name = perRow ? tx`lower(i.name) LIKE lower(${holding(q.search)})` : tx`i.name ILIKE ${holding(q.search)}`;
    where.push(tx`(i.image_id = ${q.search} OR ${name})`);
  }
  if (q.unused) {
    const unused = tx`FROM unused_images u WHERE (u.project_id, u.region_id, u.image_id) = ${same}`;
    where.push(perRow ? tx`(SELECT true ${unused} LIMIT 1)` : tx`EXISTS (SELECT 1 ${unused})`);
  }
  return where;
}

/** Live images, or those deleted in the last N days. */
const inScope = (tx: TransactionSql, q: InventoryQuery) =>
  q.deletedWithinDays === undefined ? tx`i.deleted_at IS NULL` : tx`i.deleted_at >= now() - make_interval(days => ${q.deletedWithinDays})`;

const conditions = (tx: TransactionSql, q: InventoryQuery) => [inScope(tx, q), ...filters(tx, q)];

const and = (tx: TransactionSql, parts: PendingQuery<Row[]>[]) => parts.reduce((all, part, n) => (n === 0 ? part : tx`${all} AND ${part}`));

/** The order asked, and where the cursor puts the page's start in it. */
function ordering(tx: TransactionSql, q: InventoryQuery): { order: PendingQuery<Row[]>; after?: PendingQuery<Row[]> } {
  const [key, p, r, id] = q.after ?? [];
  if (q.sort === 'name')
    return {
      order: tx`i.name, i.project_id, i.region_id, i.image_id`,
      after: q.after && tx`(i.name, i.project_id, i.region_id, i.image_id) > (${key!}, ${p!}, ${r!}, ${id!})`,
    };
  return {
    order: tx`i.last_changed_at DESC, i.project_id DESC, i.region_id DESC, i.image_id DESC`,
    after: q.after && tx`(i.last_changed_at, i.project_id, i.region_id, i.image_id) < (${key!}::timestamptz, ${p!}, ${r!}, ${id!})`,
  };
}

export type PageKey = { project_id: number; region_id: number; image_id: string };

/** The page's images as the planner finds them: best when the filters are selective (an index finds the few). */
export function plannedKeys(tx: TransactionSql, q: InventoryQuery): PendingQuery<PageKey[]> {
  const { order, after } = ordering(tx, q);
  return tx<PageKey[]>`
    SELECT i.project_id, i.region_id, i.image_id FROM images i WHERE ${and(tx, [...conditions(tx, q), ...(after ? [after] : [])])}
    ORDER BY ${order} LIMIT ${q.limit}`;
}

interface PlanNode {
  'Node Type': string;
  /** How a child feeds its parent: 'SubPlan' and 'InitPlan' are evaluated apart (a filter's subquery), not the rows' way. */
  'Parent Relationship'?: string;
  Plans?: PlanNode[];
}

/** Whether the rows pass a Sort (or Incremental Sort) on their way up; a filter's subquery sorting does not count. */
const sorts = (node: PlanNode): boolean =>
  /Sort/.test(node['Node Type']) ||
  (node.Plans ?? []).some((child) => !['SubPlan', 'InitPlan'].includes(child['Parent Relationship'] ?? '') && sorts(child));

/**
 * Whether the planner's plan for the page sorts what it finds. One that does not reads an index in the
 * page's order and stops at the page's end: a walk of its own.
 */
async function plannerSorts(tx: TransactionSql, q: InventoryQuery): Promise<boolean> {
  const [explained] = await tx<[{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }]>`EXPLAIN (FORMAT JSON) ${plannedKeys(tx, q)}`;
  return sorts(explained['QUERY PLAN'][0]!.Plan);
}

/**
 * The page's images found by walking the order's index from the cursor and testing each image as it
 * passes: best when the filters match many (a tag one image in ten has: 50 found among 500), where the
 * planner, misjudging how many match, would gather and sort them all. Live images only.
 */
export function walkedKeys(tx: TransactionSql, q: InventoryQuery): Promise<PageKey[]> {
  const { order, after } = ordering(tx, q);
  // OFFSET 0 keeps the walk a subquery of its own: the filters stay outside it, tested row by row.
  return tx<PageKey[]>`
    SELECT i.project_id, i.region_id, i.image_id FROM (
      SELECT i.project_id, i.region_id, i.image_id, i.name, i.last_changed_at, i.account, i.kind, i.owned, i.os_distro
      FROM images i WHERE ${and(tx, [inScope(tx, q), ...(after ? [after] : [])])} ORDER BY ${order} OFFSET 0) i
    WHERE ${and(tx, filters(tx, q, true))}
    ORDER BY ${order} LIMIT ${q.limit}`;
}

/** How long a plan that sorts is given first: enough where an index finds the few matches, not to gather and sort many. */
const PLANNED_FIRST_MS = 30;

/**
 * The keys of a page whose filters the primary key does not serve. A plan of the planner's that walks
 * (plannerSorts) is run for WALK_MS. One that sorts expects few matches and can be wrong a thousandfold (a
 * name search and a tag, each one image in ten: 12 expected, 6,192 found, 0.5 s to gather and sort them),
 * so it is given PLANNED_FIRST_MS, then walkedKeys WALK_MS. A walk that long has met few matches or none,
 * and may go on for seconds (an image's heap row read for each of a million when a filter's column is not
 * in the index), so the matches are gathered and sorted, with no index walked in order: at most a read of
 * every image.
 */
async function filteredKeys(tx: TransactionSql, q: InventoryQuery): Promise<PageKey[]> {
  const walked = (await plannerSorts(tx, q))
    ? ((await within(tx, PLANNED_FIRST_MS, (sp) => plannedKeys(sp, q))) ??
      // No sort: the walk reads the order's index, never every live image sorted (the planner's choice for a subquery with no limit).
      (await within(tx, WALK_MS, (sp) => walkedKeys(sp, q), { enable_sort: 'off' })))
    : await within(tx, WALK_MS, (sp) => plannedKeys(sp, q));
  return walked ?? gatheredKeys(tx, q);
}

/** The page's images gathered and sorted, with no index read in the page's order: at most a read of every image. */
export function gatheredKeys(tx: TransactionSql, q: InventoryQuery): Promise<PageKey[]> {
  return withSettings(tx, GATHERED, (sp) => plannedKeys(sp, q));
}

/** One page of the inventory: `limit` images after the cursor, in the order asked. */
export async function inventoryPage(tx: TransactionSql, q: InventoryQuery): Promise<InventoryRow[]> {
  const filtered =
    q.deletedWithinDays === undefined &&
    [q.account, q.kind, q.owned, q.os, q.tag, q.search, q.unused].some((filter) => filter !== undefined);
  const keys = filtered ? await filteredKeys(tx, q) : await plannedKeys(tx, q);
  const { order } = ordering(tx, q);
  const sortKey = q.sort === 'name' ? tx`i.name` : tx`to_char(i.last_changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  return tx<InventoryRow[]>`
    SELECT i.project_id, i.region_id, i.image_id, i.name, i.kind, i.account, i.region, i.os_distro, i.os_version, i.visibility,
      i.owned, i.status, i.last_changed_at, i.last_seen_at, i.deleted_at, ${sortKey} AS sort_key,
      ARRAY(SELECT t.key || '=' || t.value FROM image_tags t
        WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id) ORDER BY t.key) AS tags
    FROM images i
    JOIN unnest(${keys.map((k) => k.project_id)}::int[], ${keys.map((k) => k.region_id)}::int[], ${keys.map((k) => k.image_id)}::text[])
      AS k(project_id, region_id, image_id) ON (k.project_id, k.region_id, k.image_id) = (i.project_id, i.region_id, i.image_id)
    ORDER BY ${order}`;
}

/** Up to this many matching images are counted exactly; beyond, the planner's estimate is given as one. */
export const EXACT_COUNT_CAP = 10_000;

/** An exact count may take this long (a filter no index serves reads every image); beyond, it is estimated. */
const EXACT_COUNT_MS = 60;

export interface InventoryCount {
  count: number;
  /** Why the count is the planner's estimate: more than EXACT_COUNT_CAP match, or counting took too long. */
  estimated?: 'many' | 'slow';
}

/** The count, exactly, within EXACT_COUNT_MS; undefined when it took longer. */
function exactCount(tx: TransactionSql, where: PendingQuery<Row[]>): Promise<number | undefined> {
  return within(tx, EXACT_COUNT_MS, async (sp) => {
    const [counted] = await sp<[{ n: number }]>`
      SELECT count(*)::int AS n FROM (SELECT 1 FROM images i WHERE ${where} LIMIT ${EXACT_COUNT_CAP + 1}) x`;
    return counted.n;
  });
}

/** How many images match the query's filters (not its cursor): exact up to EXACT_COUNT_CAP and EXACT_COUNT_MS, else estimated. */
export async function inventoryCount(tx: TransactionSql, q: InventoryQuery): Promise<InventoryCount> {
  const where = and(tx, conditions(tx, q));
  const exact = await exactCount(tx, where);
  if (exact !== undefined && exact <= EXACT_COUNT_CAP) return { count: exact };
  const [plan] = await tx<
    [{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }]
  >`EXPLAIN (FORMAT JSON) SELECT 1 FROM images i WHERE ${where}`;
  const estimate = Math.round(plan['QUERY PLAN'][0]!.Plan['Plan Rows']);
  return exact === undefined
    ? { count: estimate, estimated: 'slow' }
    : { count: Math.max(EXACT_COUNT_CAP + 1, estimate), estimated: 'many' };
}
