import type { PendingQuery, Row, TransactionSql } from 'postgres';

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

export interface InventoryRow {
  project_id: number;
  region_id: number;
  image_id: string;
  name: string;
  kind: string;
  account: string;
  region: string | null;
  os_distro: string | null;
  os_version: string | null;
  visibility: string;
  owned: boolean;
  status: string;
  last_changed_at: Date;
  last_seen_at: Date;
  deleted_at: Date | null;
  /** Its current tags as key=value, sorted by key. */
  tags: string[];
  /** The sort value, as text, for the next page's cursor. */
  sort_key: string;
}

/** A LIKE pattern matching `text` anywhere, its wildcards taken literally. */
const holding = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function conditions(tx: TransactionSql, q: InventoryQuery): PendingQuery<Row[]>[] {
  const where: PendingQuery<Row[]>[] = [
    q.deletedWithinDays === undefined
      ? tx`i.deleted_at IS NULL`
      : tx`i.deleted_at >= now() - make_interval(days => ${q.deletedWithinDays})`,
  ];
  if (q.account !== undefined) where.push(tx`i.account = ${q.account}`);
  if (q.projectId !== undefined) where.push(tx`i.project_id = ${q.projectId}`);
  if (q.regionId !== undefined) where.push(tx`i.region_id = ${q.regionId}`);
  if (q.kind !== undefined) where.push(tx`i.kind = ${q.kind}`);
  if (q.owned !== undefined) where.push(tx`i.owned = ${q.owned}`);
  if (q.os !== undefined) where.push(tx`lower(i.os_distro) = lower(${q.os})`);
  if (q.tag !== undefined)
    where.push(tx`EXISTS (SELECT 1 FROM image_tags t WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id)
      AND t.key = ${q.tag.key} ${q.tag.value === undefined ? tx`` : tx`AND t.value = ${q.tag.value}`})`);
  if (q.search !== undefined) where.push(tx`(i.image_id = ${q.search} OR i.name ILIKE ${holding(q.search)})`);
  if (q.unused)
    where.push(
      tx`EXISTS (SELECT 1 FROM unused_images u WHERE (u.project_id, u.region_id, u.image_id) = (i.project_id, i.region_id, i.image_id))`,
    );
  return where;
}

const and = (tx: TransactionSql, parts: PendingQuery<Row[]>[]) => parts.reduce((all, part, n) => (n === 0 ? part : tx`${all} AND ${part}`));

/** One page of the inventory: `limit` images after the cursor, in the order asked. */
export async function inventoryPage(tx: TransactionSql, q: InventoryQuery): Promise<InventoryRow[]> {
  const where = conditions(tx, q);
  const [p, r, id] = q.after ? q.after.slice(1) : [];
  if (q.after && q.sort === 'name') where.push(tx`(i.name, i.project_id, i.region_id, i.image_id) > (${q.after[0]}, ${p!}, ${r!}, ${id!})`);
  if (q.after && q.sort === 'changed')
    where.push(tx`(i.last_changed_at, i.project_id, i.region_id, i.image_id) < (${q.after[0]}::timestamptz, ${p!}, ${r!}, ${id!})`);
  const order =
    q.sort === 'name'
      ? tx`i.name, i.project_id, i.region_id, i.image_id`
      : tx`i.last_changed_at DESC, i.project_id DESC, i.region_id DESC, i.image_id DESC`;
  const sortKey = q.sort === 'name' ? tx`i.name` : tx`to_char(i.last_changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  return tx<InventoryRow[]>`
    SELECT i.project_id, i.region_id, i.image_id, i.name, i.kind, i.account, i.region, i.os_distro, i.os_version, i.visibility,
      i.owned, i.status, i.last_changed_at, i.last_seen_at, i.deleted_at, ${sortKey} AS sort_key,
      ARRAY(SELECT t.key || '=' || t.value FROM image_tags t
        WHERE (t.project_id, t.region_id, t.image_id) = (i.project_id, i.region_id, i.image_id) ORDER BY t.key) AS tags
    FROM images i WHERE ${and(tx, where)}
    ORDER BY ${order} LIMIT ${q.limit}`;
}

/** Up to this many matching images are counted exactly; beyond, the planner's estimate is given as one. */
export const EXACT_COUNT_CAP = 10_000;

/** An exact count may take this long (a filter no index serves reads every image); beyond, it is estimated. */
const EXACT_COUNT_MS = 100;

export interface InventoryCount {
  count: number;
  /** Why the count is the planner's estimate: more than EXACT_COUNT_CAP match, or counting took too long. */
  estimated?: 'many' | 'slow';
}

/** The count, exactly, within EXACT_COUNT_MS; undefined when it took longer (a savepoint keeps the page's transaction). */
async function exactCount(tx: TransactionSql, where: PendingQuery<Row[]>): Promise<number | undefined> {
  const [{ timeout }] = await tx<[{ timeout: string }]>`SELECT current_setting('statement_timeout') AS timeout`;
  try {
    const n = await tx.savepoint(async (sp) => {
      await sp.unsafe(`SET LOCAL statement_timeout = ${EXACT_COUNT_MS}`);
      const [counted] = await sp<[{ n: number }]>`
        SELECT count(*)::int AS n FROM (SELECT 1 FROM images i WHERE ${where} LIMIT ${EXACT_COUNT_CAP + 1}) x`;
      return counted.n;
    });
    // A savepoint released keeps what SET LOCAL set: the page's own limit again for its other reads.
    await tx`SELECT set_config('statement_timeout', ${timeout}, true)`;
    return n;
  } catch (error) {
    if ((error as { code?: string }).code === '57014') return undefined;
    throw error;
  }
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
