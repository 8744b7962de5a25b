// SYNC_RETENTION_DAYS prunes runs, listings, their pages and samples, and failures, in batches that are
// each a transaction of their own; several processes may prune at once. History and the audit log's
// entries are never pruned.
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectPostgres, type Sql } from '../src/db/db.js';
import { pruneOperational, type PruneBatches } from '../src/sql/pruneOperational.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const RETENTION_DAYS = 30;
const HISTORY = ['image_rows', 'image_versions', 'image_changes', 'audit_snapshots', 'audit_snapshot_items', 'image_actions'];

let env: TestEnv;
let sql: Sql;

beforeAll(async () => {
  env = await createTestEnv();
  sql = await connectPostgres(env.databaseUrl);
});

afterAll(async () => {
  await sql?.end();
  await env?.cleanup();
});

// Each test starts with no operational rows (audit snapshots refuse deletion: history is added once, by the first test).
beforeEach(async () => {
  await sql`TRUNCATE sync_runs, listings, listing_pages, listing_ids, listing_ids_intact, listing_samples, usage_listings, sync_failures, targets`;
});

/** A run started `daysAgo`; finished at its start unless `running`. */
async function run(trigger: string, daysAgo: number, running = false): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    INSERT INTO sync_runs (kind, trigger, started_at, finished_at, planned, status)
    VALUES ('scheduled', ${trigger}, now() - ${daysAgo}::float8 * interval '1 day',
      CASE WHEN ${running}::boolean THEN NULL ELSE now() - ${daysAgo}::float8 * interval '1 day' END, 1,
      CASE WHEN ${running}::boolean THEN 'running' ELSE 'finished' END)
    RETURNING id`;
  return row!.id;
}

/** A listing of `scope` in run `runId`, ended unless `open`, with its pages and sampled absences. */
async function listing(runId: number, scope: string, contents: { pages: number; samples?: number; open?: boolean }): Promise<number> {
  const open = contents.open ?? false;
  const [row] = await sql<{ id: number }[]>`
    INSERT INTO listings (run_id, scope_key, status, started_at, finished_at)
    SELECT ${runId}, ${scope}, CASE WHEN ${open}::boolean THEN 'listing' ELSE 'complete' END, r.started_at,
      CASE WHEN ${open}::boolean THEN NULL ELSE r.started_at END
    FROM sync_runs r WHERE r.id = ${runId}
    RETURNING id`;
  const id = row!.id;
  await sql`
    INSERT INTO listing_pages (listing_id, part, page, project_id, region_id, endpoint, query, status)
    SELECT ${id}, 0, g, 1, 1, 'images', '[]', 'done' FROM generate_series(0, ${contents.pages - 1}) g`;
  await sql`
    INSERT INTO listing_samples (listing_id, project_id, region_id, image_id, answer)
    SELECT ${id}, 1, 1, 'absent-' || g, 'gone' FROM generate_series(1, ${contents.samples ?? 0}) g`;
  return id;
}

async function failure(imageId: string, daysAgo: number): Promise<void> {
  await sql`
    INSERT INTO sync_failures (project_id, region_id, image_id, status, error_class, message, attempts, failed_at)
    VALUES (1, 1, ${imageId}, 500, 'TransientApiError', ${`${imageId} ${daysAgo}d`}, 3, now() - ${daysAgo}::float8 * interval '1 day')`;
}

async function target(imageId: string, lastOutcome: string): Promise<void> {
  await sql`
    INSERT INTO targets (project_id, region_id, image_id, schedule_key, last_outcome)
    VALUES (1, 1, ${imageId}, 'every 3600000ms', ${lastOutcome})`;
}

/** An image 400 days old with two versions, a change, an audit snapshot and two audit-log entries about it. */
async function addHistory(): Promise<void> {
  await sql`
    INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
      disk_format, min_disk, min_ram, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
      first_seen_at, seen_at, last_changed_at)
    VALUES (1, 1, 'old', 'ordinary', 'old', 'r', 'active', 'public', 'd', 'v', 'linux', 'qcow2', 0, 0, 1, 1, now() - interval '400 days',
      now() - interval '300 days', '{}', 'h2', now() - interval '400 days', now(), now() - interval '300 days')`;
  const versions = await sql<{ id: number }[]>`
    INSERT INTO image_versions (project_id, region_id, image_id, valid_from, valid_to, content_hash, state) VALUES
      (1, 1, 'old', now() - interval '400 days', now() - interval '300 days', 'h1', '{"name": "older"}'),
      (1, 1, 'old', now() - interval '300 days', NULL, 'h2', '{"name": "old"}')
    RETURNING id`;
  await sql`
    INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at)
    VALUES (1, 1, 'old', ${versions[1]!.id}, 'updated', 'name', '"older"', '"old"', now() - interval '300 days')`;
  const [snapshot] = await sql<{ id: number }[]>`
    INSERT INTO audit_snapshots (trigger, taken_at, image_count, digest) VALUES ('tick:old', now() - interval '300 days', 1, 'd')
    RETURNING id`;
  await sql`
    INSERT INTO audit_snapshot_items (snapshot_id, project_id, region_id, image_id, version_id)
    VALUES (${snapshot!.id}, 1, 1, 'old', ${versions[1]!.id})`;
  await sql`
    INSERT INTO image_actions (action_id, accounts, acted_at, action_type, email, project_id, region_id, image_id, raw) VALUES
      ('a-create', '{default}', now() - interval '400 days', 'create', 'someone@example.com', 1, 1, 'old', '{}'),
      ('a-update', '{default}', now() - interval '300 days', 'update', 'someone@example.com', 1, 1, 'old', '{}')`;
}

/** Every row of the history tables, as JSON, in a stable order. */
async function historyRows(): Promise<Record<string, unknown[]>> {
  const tables: Record<string, unknown[]> = {};
  for (const table of HISTORY) {
    tables[table] = (await sql`SELECT to_jsonb(t) AS row FROM ${sql(table)} t ORDER BY to_jsonb(t)::text`).map((r) => r.row);
  }
  return tables;
}

/** What is left of the operational tables, by the names the fixtures gave. */
async function left() {
  return {
    runs: (await sql`SELECT trigger FROM sync_runs ORDER BY trigger`).map((r) => r.trigger),
    listings: (
      await sql`SELECT r.trigger, count(l.id)::int AS n FROM listings l JOIN sync_runs r ON r.id = l.run_id GROUP BY 1 ORDER BY 1`
    ).map((r) => `${r.trigger}: ${r.n}`),
    pages: (
      await sql`SELECT r.trigger, count(*)::int AS n FROM listing_pages p JOIN listings l ON l.id = p.listing_id
        JOIN sync_runs r ON r.id = l.run_id GROUP BY 1 ORDER BY 1`
    ).map((r) => `${r.trigger}: ${r.n}`),
    samples: (await sql`SELECT count(*)::int AS n FROM listing_samples`)[0]!.n,
    failures: (await sql`SELECT message FROM sync_failures ORDER BY message`).map((r) => r.message),
  };
}

describe('retention', () => {
  it('removes what the retention outlived in batches, keeps what is still read, and never touches history', async () => {
    await addHistory();
    const history = await historyRows();
    // Gone: ended listings of finished old runs with a later ended listing of their scope, and then their runs.
    await listing(await run('old-40', 40), 'web', { pages: 7, samples: 2 });
    await listing(await run('old-35', 35), 'web', { pages: 0 });
    await run('old-45-by-id', 45);
    await run('old-31-by-id', 31);
    // Kept: a scope's latest ended listing, a running run's, an open one, and recent ones.
    await listing(await run('old-33-latest-of-gone-scope', 33), 'gone', { pages: 2 });
    await listing(await run('old-31-running', 31, true), 'web', { pages: 2 });
    await listing(await run('old-32-open-listing', 32), 'web', { pages: 2, open: true });
    await listing(await run('recent-29', 29), 'web', { pages: 3 });
    await run('recent-1-by-id', 1);
    // Failures: the latest of a target that still fails stays however old; recent ones stay.
    await target('failing', 'failed');
    await target('recovered', 'unchanged');
    for (const [imageId, daysAgo] of [
      ['failing', 40],
      ['failing', 35],
      ['recovered', 31],
      ['no-target', 31],
      ['no-target', 29],
    ] as const) {
      await failure(imageId, daysAgo);
    }
    for (const daysAgo of [60, 50, 40]) await failure('dropped', daysAgo);

    const queries: string[] = [];
    const traced = postgres(env.databaseUrl, { max: 1, onnotice: () => {}, debug: (_connection, query) => queries.push(query) });
    try {
      expect(await pruneOperational(traced, RETENTION_DAYS, 3)).toEqual({
        listingPages: [3, 3, 1],
        listingSamples: [2],
        // The empty listing and the three runs left without one go in the first round; the other once its pages are gone.
        listings: [1, 1],
        runs: [3, 1],
        failures: [3, 3],
      });
    } finally {
      await traced.end();
    }
    // Each batch one statement, none inside a transaction of several: four rounds of pages, samples, listings and runs
    // (the last finding nothing), then failures until a short batch.
    expect(queries.filter((q) => /^\s*DELETE/.test(q))).toHaveLength(4 * 4 + 3);
    expect(queries.filter((q) => /^\s*begin/i.test(q))).toEqual([]);

    expect(await left()).toEqual({
      runs: ['old-31-running', 'old-32-open-listing', 'old-33-latest-of-gone-scope', 'recent-1-by-id', 'recent-29'],
      listings: ['old-31-running: 1', 'old-32-open-listing: 1', 'old-33-latest-of-gone-scope: 1', 'recent-29: 1'],
      pages: ['old-31-running: 2', 'old-32-open-listing: 2', 'old-33-latest-of-gone-scope: 2', 'recent-29: 3'],
      samples: 0,
      failures: ['failing 35d', 'no-target 29d'],
    });
    expect(await historyRows()).toEqual(history);
    expect(history.image_actions).toHaveLength(2);

    expect(await pruneOperational(sql, RETENTION_DAYS, 3)).toEqual({
      listingPages: [],
      listingSamples: [],
      listings: [],
      runs: [],
      failures: [],
    });
  });

  it('skips rows another transaction holds instead of waiting, and takes them once they are free', async () => {
    const held = await listing(await run('old-40', 40), 'web', { pages: 5 });
    await listing(await run('old-35', 35), 'web', { pages: 0 });
    await listing(await run('recent-1', 1), 'web', { pages: 1 });
    for (const daysAgo of [40, 39, 38]) await failure('dropped', daysAgo);

    // Another prune's batch in flight: two pages of the oldest listing and one failure, locked until it commits.
    const other = await sql.reserve();
    try {
      await other`BEGIN`;
      await other`SELECT 1 FROM listing_pages WHERE listing_id = ${held} AND page < 2 FOR UPDATE`;
      await other`SELECT 1 FROM sync_failures WHERE message = 'dropped 40d' FOR UPDATE`;
      expect(await pruneOperational(sql, RETENTION_DAYS, 2)).toEqual({
        listingPages: [2, 1],
        listingSamples: [],
        listings: [1],
        runs: [1],
        failures: [2],
      });
      // The held pages keep their listing and its run.
      expect(await left()).toEqual({
        runs: ['old-40', 'recent-1'],
        listings: ['old-40: 1', 'recent-1: 1'],
        pages: ['old-40: 2', 'recent-1: 1'],
        samples: 0,
        failures: ['dropped 40d'],
      });
      await other`COMMIT`;
    } finally {
      other.release();
    }
    expect(await pruneOperational(sql, RETENTION_DAYS, 2)).toEqual({
      listingPages: [2],
      listingSamples: [],
      listings: [1],
      runs: [1],
      failures: [1],
    });
    expect(await left()).toEqual({ runs: ['recent-1'], listings: ['recent-1: 1'], pages: ['recent-1: 1'], samples: 0, failures: [] });
  });

  it('two processes pruning at once remove each old row once, together exactly what one would', async () => {
    for (let i = 0; i < 30; i++)
      await listing(await run(`old-${String(i).padStart(2, '0')}`, 40 - i / 10), 'web', { pages: 6, samples: 1 });
    await listing(await run('recent-1', 1), 'web', { pages: 2 });
    for (let i = 0; i < 40; i++) await failure(`dropped-${i}`, 31 + i);
    await failure('kept', 29);

    const workers = [await connectPostgres(env.databaseUrl), await connectPostgres(env.databaseUrl)];
    try {
      const both = await Promise.all(workers.map((worker) => pruneOperational(worker, RETENTION_DAYS, 4)));
      const removed = (table: keyof PruneBatches) => both.flatMap((pruned) => pruned[table]).reduce((sum, n) => sum + n, 0);
      expect({
        listingPages: removed('listingPages'),
        listingSamples: removed('listingSamples'),
        listings: removed('listings'),
        runs: removed('runs'),
        failures: removed('failures'),
      }).toEqual({ listingPages: 180, listingSamples: 30, listings: 30, runs: 30, failures: 40 });
      // No batch is larger than the batch size, whichever process ran it.
      expect(Math.max(...both.flatMap((pruned) => Object.values(pruned).flat()))).toBe(4);
    } finally {
      await Promise.all(workers.map((worker) => worker.end()));
    }
    expect(await left()).toEqual({
      runs: ['recent-1'],
      listings: ['recent-1: 1'],
      pages: ['recent-1: 2'],
      samples: 0,
      failures: ['kept 29d'],
    });
  });
});
