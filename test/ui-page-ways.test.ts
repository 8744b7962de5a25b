// The ways to a page of the web view (the planner's plan, a walk of the order's index testing each row,
// the matches gathered and sorted) find the same rows in the same order, for every filter, from the start
// and from a cursor: which way answers first never changes a page. Over the benchmark's inventory, small.
import { beforeAll, describe, expect, it } from 'vitest';
import { bulkImageId, RARE_WORD, seedUiInventory } from '../bench/ui-seed.js';
import type { Sql } from '../src/db/db.js';
import { GATHERED, within, withSettings } from '../src/sql/readAs.js';
import { joinedCandidates, walkedCandidates, type ChangesCursor, type ChangesQuery } from '../src/sql/uiChanges.js';
import {
  gatheredKeys,
  inventoryPage,
  plannedKeys,
  walkedKeys,
  type InventoryCursor,
  type InventoryQuery,
  type InventorySort,
  type PageKey,
} from '../src/sql/uiInventory.js';
import { withDatabase } from './support/env.js';

let sql: Sql;
withDatabase((connected) => (sql = connected));

beforeAll(async () => {
  await seedUiInventory(sql, { images: 2_000, versions: 5 });
}, 120_000);

type Filters = Omit<InventoryQuery, 'sort' | 'after' | 'limit'>;

/** The filters of the live inventory a walk can serve, alone and together, and searches with LIKE's wildcards in them. */
const FILTERS: Filters[] = [
  { account: 'dev' },
  { kind: 'gpu_virtual' },
  { owned: false },
  { os: 'DEBIAN' },
  { tag: { key: 'team', value: 'ml' } },
  { tag: { key: 'env' } },
  { search: 'web' },
  { search: 'WEB' },
  { search: RARE_WORD },
  { search: bulkImageId(42) },
  { search: '%' },
  { search: 'b_se' },
  { unused: true },
  { tag: { key: 'team', value: 'ml' }, search: 'web' },
  { account: 'prod', os: 'ubuntu', owned: true },
  { unused: true, kind: 'ordinary', search: 'a' },
];

const WAYS: Record<string, (tx: Parameters<typeof plannedKeys>[0], q: InventoryQuery) => Promise<PageKey[]>> = {
  planned: (tx, q) => plannedKeys(tx, q),
  walked: walkedKeys,
  gathered: gatheredKeys,
};

const PAGE = 10;
const key = (k: PageKey) => `${k.project_id}/${k.region_id}/${k.image_id}`;

/** Every image the filters match, in the order asked, with each one's cursor. */
async function everyMatch(filters: Filters, sort: InventorySort): Promise<Array<{ key: string; cursor: InventoryCursor }>> {
  const rows = await sql.begin((tx) => inventoryPage(tx, { ...filters, sort, limit: 100_000 }));
  return rows.map((row) => ({ key: key(row), cursor: [row.sort_key, row.project_id, row.region_id, row.image_id] }));
}

describe('the inventory: every way to a page finds the same page', () => {
  it('holds matches for most filters (the test would prove little over empty pages)', async () => {
    const counts = await Promise.all(FILTERS.map(async (filters) => (await everyMatch(filters, 'name')).length));
    expect(counts.filter((count) => count > PAGE * 2).length).toBeGreaterThanOrEqual(11);
    // LIKE's wildcards are taken literally: '%' and 'b_se' (which would match "Base ...") hold no name.
    expect(['%', 'b_se'].map((text) => counts[FILTERS.findIndex((f) => f.search === text)])).toEqual([0, 0]);
  });

  it.each(FILTERS.flatMap((filters) => (['name', 'changed'] as const).map((sort) => ({ filters, sort }))))(
    'planned, walked and gathered pages agree: $filters by $sort',
    async ({ filters, sort }) => {
      const all = await everyMatch(filters, sort);
      // From the start, and from a cursor in the middle of the matches.
      const starts = all.length > PAGE * 2 ? [0, PAGE + 3] : [0];
      for (const start of starts) {
        const after = start === 0 ? undefined : all[start - 1]!.cursor;
        const expected = all.slice(start, start + PAGE).map((m) => m.key);
        for (const [way, keys] of Object.entries(WAYS)) {
          const found = await sql.begin((tx) => keys(tx, { ...filters, sort, after, limit: PAGE }));
          expect([way, start, found.map(key)]).toEqual([way, start, expected]);
        }
      }
    },
  );
});

type ChangeFilters = Omit<ChangesQuery, 'after' | 'limit'>;

/** The change feed's filters on the changed image, alone and with the others. */
const CHANGE_FILTERS: ChangeFilters[] = [
  { account: 'dev' },
  { kind: 'gpu_virtual' },
  { account: 'partner', kind: 'ordinary' },
  { kind: 'ordinary', changeType: 'deleted' },
  { account: 'staging', field: 'description' },
  { kind: 'ordinary', from: new Date(Date.now() - 20 * 86_400_000), to: new Date(Date.now() - 5 * 86_400_000) },
  { account: 'nobody' },
];

const CHANGE_WAYS: Record<string, (tx: Parameters<typeof plannedKeys>[0], q: ChangeFilters, after?: ChangesCursor) => Promise<unknown[]>> =
  {
    joined: (tx, q, after) => joinedCandidates(tx, { ...q, limit: PAGE }, PAGE, after),
    walked: (tx, q, after) => walkedCandidates(tx, { ...q, limit: PAGE }, PAGE, after),
    gathered: (tx, q, after) => withSettings(tx, GATHERED, (sp) => joinedCandidates(sp, { ...q, limit: PAGE }, PAGE, after)),
  };

describe('the change feed: every way to a page finds the same page', () => {
  it.each(CHANGE_FILTERS)('joined, walked and gathered pages agree: %o', async (filters) => {
    const all = await sql.begin((tx) => joinedCandidates(tx, { ...filters, limit: 100_000 }, 100_000));
    expect(all.length > PAGE * 2).toBe(filters.account !== 'nobody' && filters.field === undefined);
    const starts = all.length > PAGE * 2 ? [0, PAGE + 3] : [0];
    for (const start of starts) {
      const after: ChangesCursor | undefined = start === 0 ? undefined : [all[start - 1]!.key, all[start - 1]!.id];
      for (const [way, candidates] of Object.entries(CHANGE_WAYS)) {
        const found = await sql.begin((tx) => candidates(tx, filters, after));
        expect([way, start, found]).toEqual([way, start, all.slice(start, start + PAGE)]);
      }
    }
  });
});

describe('a way given its own settings and time', () => {
  it('leaves the transaction as it found it: after a result, after a timeout, after an error', async () => {
    const settings = (tx: Parameters<typeof plannedKeys>[0]) =>
      tx<Array<{ timeout: string; indexscan: string }>>`
        SELECT current_setting('statement_timeout') AS timeout, current_setting('enable_indexscan') AS indexscan`;
    const seen = await sql.begin(async (tx) => {
      await tx`SET LOCAL statement_timeout = '7s'`;
      const found = await within(tx, 30, async (sp) => (await settings(sp))[0], GATHERED);
      const after = (await settings(tx))[0];
      const late = await within(tx, 50, (sp) => sp`SELECT pg_sleep(0.5)`);
      const afterLate = (await settings(tx))[0];
      const failed = await withSettings(tx, GATHERED, (sp) => sp`SELECT 1 / 0`).catch((error: { code?: string }) => error.code);
      const [{ usable }] = await tx<[{ usable: number }]>`SELECT 1 AS usable`;
      return { found, after, late, afterLate, failed, usable, last: (await settings(tx))[0] };
    });
    const before = { timeout: '7s', indexscan: 'on' };
    expect(seen).toEqual({
      found: { timeout: '30ms', indexscan: 'off' },
      after: before,
      late: undefined,
      afterLate: before,
      failed: '22012',
      usable: 1,
      last: before,
    });
  });
});
