// Following Gcore's audit log of user actions: the fake API logs what its admin
// routes do, the real worker follows the log into the real Postgres and queues
// (Redis, or Postgres in the node-only pass), refreshes what the entries name
// and puts each change down to who made it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sql } from '../src/db/db.js';
import { changeTable } from '../src/ops/change-table.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { startHttpServer } from '../src/ops/http-server.js';
import { createMetrics } from '../src/ops/metrics.js';
import type { Triple } from '../src/interfaces.js';
import { deliverChanges, type DeliveredChange } from '../src/sql/deliverChanges.js';
import { listChanges } from '../src/sql/listChanges.js';
import { startWorker, type RunningWorker } from '../src/work/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { capturedLogger, startPipeline, withWorker, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const HOURLY = 'schedule: { every: 1h }';
const alice = {
  email: 'alice@example.com',
  userId: 5150,
  tokenId: 4242,
  issuedByUserId: 77,
  ip: '198.51.100.4',
  userAgent: 'terraform/1.9',
};
const bob = { email: 'bob@example.com' };

interface World {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
  sql: Sql;
  workers: RunningWorker[];
  logLines: string[];
}

let world: World | undefined;

afterEach(async () => {
  for (const worker of world?.workers ?? []) await worker.close();
  await world?.pipeline.close();
  await world?.fake.stop();
  await world?.env.cleanup();
  world = undefined;
});

function images(count: number, projectId = 1, regionId = 7): Triple[] {
  return Array.from({ length: count }, (_, n) => ({ projectId, regionId, imageId: sampleImageId(n + 1) }));
}

/**
 * Tracks `tracked` (stored by a first sync, with no follower), on an hourly
 * schedule. Workers that follow the log are started by `follow`.
 */
async function begin(tracked: Triple[], extraTargets = ''): Promise<World> {
  const env = await createTestEnv();
  const fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of tracked) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const ids = tracked.map((t) => t.imageId).join(', ');
  const targets = `${HOURLY}\ntargets:\n${tracked.length > 0 ? `  - { project_id: 1, region_id: 7, image_ids: [${ids}] }\n` : ''}${extraTargets}`;
  // The first sync stores the images before anything is logged, by a worker that does not follow the log; after it,
  // only the workers a test starts run.
  const pipeline = await startPipeline(env, fake.url, targets, { noWorker: true });
  await withWorker(pipeline, () => pipeline.sync());
  fake.resetStats();
  world = { env, fake, pipeline, sql: pipeline.services.sql, workers: [], logLines: [] };
  return world;
}

/** A worker that follows the log every `pollSeconds`. */
function follow(w: World, pollSeconds = 2): RunningWorker {
  const { logger, lines } = capturedLogger();
  const worker = startWorker({
    config: { ...w.pipeline.config, auditLogPollSeconds: pollSeconds },
    accounts: w.pipeline.accounts,
    logger,
    ...w.pipeline.services,
  });
  w.workers.push(worker);
  w.logLines = lines;
  return worker;
}

/** `status` as another process runs it. */
async function status(w: World, ...args: string[]): Promise<string> {
  return (await promisify(execFile)(process.execPath, [CLI, 'status', ...args], { env: { PATH: process.env.PATH!, ...w.env.env } })).stdout;
}

/** How many polls have read the log to its end so far (each one moves polled_at). */
function pollCounter(w: World): () => Promise<number> {
  const seen = new Set<string>();
  return async () => {
    const [row] = await w.sql<{ polled_at: string | null }[]>`SELECT polled_at::text FROM audit_log_cursors`;
    if (row?.polled_at) seen.add(row.polled_at);
    return seen.size;
  };
}

/** The ids of the entries every read of the log returns from now on, in the order returned. */
function returnedEntries(w: World): string[] {
  const returned: string[] = [];
  const page = w.fake.auditLog.page.bind(w.fake.auditLog);
  w.fake.auditLog.page = (query, account) => {
    const answer = page(query, account);
    returned.push(...(answer.results as Array<{ id: string }>).map((entry) => entry.id));
    return answer;
  };
  return returned;
}

async function count(sql: Sql, query: 'actions' | 'changes'): Promise<number> {
  const [row] =
    query === 'actions'
      ? await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM image_actions`
      : await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM image_changes`;
  return row!.n;
}

async function changesOf(sql: Sql, triple: Triple) {
  return sql<
    Array<{
      change_type: string;
      field: string | null;
      new_value: unknown;
      actor_email: string | null;
      action_type: string | null;
      actor_candidates: number;
    }>
  >`
    SELECT change_type, field, new_value, actor_email, action_type, actor_candidates FROM image_change_log
    WHERE (project_id, region_id, image_id) = (${triple.projectId}, ${triple.regionId}, ${triple.imageId}) ORDER BY id`;
}

describe('following the audit log', () => {
  it('stores a rename by alice at the next poll, and its change row, alert and NOTIFY name her', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    const notifications: Array<Record<string, unknown>> = [];
    await w.sql.listen('image_changes', (payload) => notifications.push(JSON.parse(payload) as Record<string, unknown>));
    follow(w, 2);
    // The first poll (a day back, nothing there) has ended: the rename is found by a later one.
    await waitFor('the first poll', async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`).length === 1);

    const renamedAt = Date.now();
    w.fake.renameImageAs(alice, image!, 'golden-2026-11');
    // The hourly schedule has just run: only a poll of the log can find the rename within the minute waited here
    // (a poll every 2 s finds it in seconds; the limit is for a busy machine, not a bound on the poll).
    await waitFor(
      'the rename, put down to alice',
      async () => (await changesOf(w.sql, image!)).some((c) => c.actor_email !== null),
      60_000,
    );

    expect((await changesOf(w.sql, image!)).slice(1)).toEqual([
      {
        change_type: 'updated',
        field: 'name',
        new_value: 'golden-2026-11',
        actor_email: 'alice@example.com',
        action_type: 'update',
        actor_candidates: 1,
      },
      // The fake stamps updated_at on every admin action.
      expect.objectContaining({ field: 'updated_at', actor_email: 'alice@example.com', actor_candidates: 1 }),
    ]);
    const [action] = await w.sql`
      SELECT action_id, accounts, action_type, api_group, email, user_id, token_id, issued_by_user_id, source_user_ip, user_agent,
        project_id, region_id, image_id, invalid_fields, raw->>'id' AS raw_id, acted_at <= now() AS past FROM image_actions`;
    expect(action).toEqual({
      action_id: '1',
      accounts: ['default'],
      action_type: 'update',
      api_group: 'image',
      email: 'alice@example.com',
      user_id: 5150,
      token_id: 4242,
      issued_by_user_id: 77,
      source_user_ip: '198.51.100.4',
      user_agent: 'terraform/1.9',
      project_id: 1,
      region_id: 7,
      image_id: image!.imageId,
      invalid_fields: null,
      raw_id: '1',
      past: true,
    });
    // One refresh of the image (its GET), and polls of the log: nothing else was asked.
    expect(w.fake.requestsByEndpoint.image).toBe(1);

    // The changes command's table names her; the webhook's payload and the NOTIFY payload carry her.
    const rows = await listChanges(w.sql, { since: new Date(renamedAt - 1000), limit: 10 });
    expect(changeTable(rows)).toContain('alice@example.com (update)');
    await w.sql`INSERT INTO alert_cursor (name, last_change_id) VALUES ('webhook', 0)`;
    const sent: DeliveredChange[] = [];
    await deliverChanges(w.sql, 100, async (changes) => void sent.push(...changes));
    expect(sent.filter((c) => c.field === 'name')).toEqual([
      expect.objectContaining({ actor_email: 'alice@example.com', action_type: 'update', action_id: '1', actor_candidates: 1 }),
    ]);
    await waitFor('the NOTIFY of the rename', () => notifications.length === 1);
    expect(notifications[0]).toMatchObject({
      change_type: 'updated',
      fields: ['name', 'updated_at'],
      actor_email: 'alice@example.com',
      action_type: 'update',
      action_id: '1',
      actor_candidates: 1,
    });
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  }, 120_000);

  it('puts a change with two actions in its window down to the latest, with actor_candidates 2', async () => {
    const [image, other] = images(2);
    const w = await begin([image!, other!]);
    // Both actions before anything follows the log: one refresh sees both.
    w.fake.renameImageAs(alice, image!, 'first-name');
    w.fake.tagImageAs(bob, image!, 'team', 'storage');
    // An action on another image is no candidate for this one.
    w.fake.renameImageAs(alice, other!, 'other-name');
    follow(w);
    await waitFor('both images refreshed', async () => (await count(w.sql, 'changes')) >= 2 + 4);

    expect(await changesOf(w.sql, image!)).toEqual([
      { change_type: 'created', field: null, new_value: expect.anything(), actor_email: null, action_type: null, actor_candidates: 0 },
      ...['name', 'updated_at', 'tags.team'].map((field) =>
        expect.objectContaining({ field, actor_email: 'bob@example.com', action_type: 'update_metadata', actor_candidates: 2 }),
      ),
    ]);
    expect((await changesOf(w.sql, other!)).slice(1)).toEqual([
      expect.objectContaining({ field: 'name', actor_email: 'alice@example.com', actor_candidates: 1 }),
      expect.objectContaining({ field: 'updated_at', actor_email: 'alice@example.com', actor_candidates: 1 }),
    ]);
    // One refresh per image, however many entries named it.
    expect(w.fake.requestsByEndpoint.image).toBe(2);
  });

  it('resumes a follower stopped mid-log with no entry lost or doubled, and refreshes each image once', async () => {
    const tracked = images(2500);
    const w = await begin(tracked);
    // One entry a millisecond: every page boundary falls between two instants.
    let tick = Date.now();
    w.fake.auditLog.clock = () => new Date(tick++);
    w.fake.renameAllAs(alice);
    // The stamps ran ahead of the clock: the refreshes must come after the actions they see.
    await waitFor('the last stamp to pass', () => Date.now() > tick);
    // The second page is answered slowly: the follower is stopped before it asks for it, or while it waits for it.
    let firstPageSent = false;
    w.fake.afterListPage({ endpoint: 'user_actions', offset: 0 }, () => {
      firstPageSent = true;
      w.fake.setListFault({ endpoint: 'user_actions' }, { kind: 'slow', ms: 1000 }, 1);
    });
    const first = follow(w);
    await waitFor('the first page', () => firstPageSent);
    await first.close();
    w.workers.length = 0;
    expect([1000, 2000]).toContain(await count(w.sql, 'actions'));

    follow(w);
    await waitFor('every entry', async () => (await count(w.sql, 'actions')) === 2500, 30_000);
    await waitFor('every image refreshed', async () => {
      const [row] = await w.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM image_change_log WHERE field = 'name'`;
      return row!.n === 2500;
    });
    const [byAlice] = await w.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM image_change_log WHERE field = 'name' AND actor_email = 'alice@example.com' AND actor_candidates = 1`;
    expect(byAlice!.n).toBe(2500);
    expect(w.fake.requestsByEndpoint.image).toBe(2500);
    const [ids] = await w.sql<{ distinct: number; lowest: string; highest: string }[]>`
      SELECT count(DISTINCT action_id)::int AS distinct, min(action_id::int)::text AS lowest, max(action_id::int)::text AS highest
      FROM image_actions`;
    expect(ids).toEqual({ distinct: 2500, lowest: '1', highest: '2500' });
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('queues the refreshes a follower killed after storing a page had claimed but not queued', async () => {
    const [image, other] = images(2);
    const w = await begin([image!, other!]);
    w.fake.renameImageAs(alice, image!, 'renamed-before-the-crash');
    // What a follower killed between its commit and its queueing leaves: the entry stored (as received), the claim without a job.
    const [entry] = w.fake.auditLog.page(new URLSearchParams(), 'default').results as Array<{ timestamp: string }>;
    await w.sql`
      INSERT INTO image_actions (action_id, accounts, acted_at, action_type, email, project_id, region_id, image_id, raw)
      VALUES ('1', ARRAY['default'], ${entry!.timestamp}, 'update', 'alice@example.com', 1, 7, ${image!.imageId}, ${w.sql.json(entry!)})`;
    // 40 s old: past the follower's 30 s, short of the 60 s after which any worker's lost-job sweep frees a claim.
    await w.sql`UPDATE targets SET queued_job = 'audit-default-dead0000-0', queued_at = now() - interval '40 seconds'
      WHERE image_id = ${image!.imageId}`;
    follow(w);
    await waitFor('the claimed refresh', async () => (await changesOf(w.sql, image!)).some((c) => c.actor_email === 'alice@example.com'));
    expect(w.logLines.some((line) => line.includes('queued refreshes that a stopped process had claimed but not queued'))).toBe(true);
    expect(w.fake.requestsByEndpoint.image).toBe(1);
    expect(await w.sql`SELECT image_id FROM targets WHERE queued_job IS NOT NULL`).toEqual([]);
  });

  it('stores each entry once when more than a page, and a page boundary, share one instant', async () => {
    const tracked = images(30);
    const w = await begin(tracked);
    // Within the day the first poll reads back (fixed dates fall out of it as the calendar moves on), a whole second each.
    const base = Math.floor(Date.now() / 1000) * 1000 - 5 * 60_000;
    const instants = [0, 1000, 2000].map((ms) => new Date(base + ms).toISOString());
    // 1,200 entries at one instant (more than a page), then 20 at the next, 5 at the last.
    for (const [instant, entries] of [
      [instants[0]!, 1200],
      [instants[1]!, 20],
      [instants[2]!, 5],
    ] as const) {
      w.fake.auditLog.clock = () => new Date(instant);
      for (let n = 0; n < entries; n++) w.fake.logAction(bob, 'update', tracked[n % tracked.length]!, null);
    }
    follow(w, 60);
    // 1,225 entries stored and acted on: seconds on a quiet machine, many more on a busy one.
    await waitFor('every entry', async () => (await count(w.sql, 'actions')) === 1225, 90_000);
    // The poll ends with its look ahead of the database's clock.
    await waitFor(
      'the poll ends',
      async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE looked_ahead_at IS NOT NULL`).length === 1,
      90_000,
    );
    // The 1,000 of the first instant, the same 1,000 again (nothing new: skipped by count), and the rest; then one look
    // for entries dated ahead of the database's clock.
    expect(w.fake.requestsByEndpoint.user_actions).toBe(3 + 1);
    const perInstant = await w.sql<{ at: Date; n: number }[]>`
      SELECT acted_at AS at, count(*)::int AS n FROM image_actions GROUP BY acted_at ORDER BY acted_at`;
    expect(perInstant.map((r) => [r.at.toISOString(), r.n])).toEqual([
      [instants[0], 1200],
      [instants[1], 20],
      [instants[2], 5],
    ]);
    // The next poll reads the window again from an overlap before this one's end.
    const [cursor] = await w.sql`
      SELECT polled_at - from_timestamp AS overlap, page_offset, polled_at > ${new Date(instants[2]!)} AS past_the_entries
      FROM audit_log_cursors`;
    expect(cursor).toEqual({ overlap: '00:10:00', page_offset: 0, past_the_entries: true });
    // 1,225 entries about 30 images: 30 refreshes at most, each image at least once.
    expect(w.fake.requestsByEndpoint.image).toBeGreaterThanOrEqual(30);
    expect(w.fake.requestsByEndpoint.image).toBeLessThanOrEqual(60);
  }, 240_000);

  it('confirms a logged delete with a GET: a 404 records the deletion, an image that still answers 200 is kept', async () => {
    const [doomed, alive] = images(2);
    const w = await begin([doomed!, alive!]);
    const loggedAt = new Date();
    w.fake.deleteImageAs(bob, doomed!);
    // A delete entry for an image the API still has (a failed delete, or a hostile log).
    w.fake.logAction(bob, 'delete', alive!, null);
    follow(w);
    await waitFor('both confirmed', async () => {
      const rows = await w.sql`SELECT 1 FROM targets WHERE last_attempt_at > ${loggedAt}`;
      return rows.length === 2 && (await count(w.sql, 'actions')) === 2;
    });
    const states = await w.sql<{ image_id: string; deleted: boolean; last_outcome: string; last_status: number }[]>`
      SELECT i.image_id, i.deleted_at IS NOT NULL AS deleted, t.last_outcome, t.last_status
      FROM images i JOIN targets t USING (project_id, region_id, image_id) ORDER BY i.image_id`;
    expect(states).toEqual([
      { image_id: doomed!.imageId, deleted: true, last_outcome: 'deleted', last_status: 404 },
      { image_id: alive!.imageId, deleted: false, last_outcome: 'unchanged', last_status: 200 },
    ]);
    expect((await changesOf(w.sql, doomed!)).slice(1)).toEqual([
      { change_type: 'deleted', field: null, new_value: null, actor_email: 'bob@example.com', action_type: 'delete', actor_candidates: 1 },
    ]);
    expect(await changesOf(w.sql, alive!)).toHaveLength(1);
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  });

  it('takes in an image created in a discovered scope before its listing, when it matches the filters', async () => {
    const scopes = [
      '  - { project_id: 2, region_id: 7, discover: {} }',
      '  - { project_id: 3, region_id: 7, discover: { visibility: [shared] } }',
    ].join('\n');
    const w = await begin([], `${scopes}\n`);
    const inScope = { projectId: 2, regionId: 7, imageId: sampleImageId(900) };
    const filteredOut = { projectId: 3, regionId: 7, imageId: sampleImageId(901) };
    const nowhere = { projectId: 4, regionId: 7, imageId: sampleImageId(902) };
    for (const triple of [inScope, filteredOut, nowhere]) w.fake.createImageAs(alice, triple, sampleImage(triple, { name: 'fresh' }));
    follow(w);
    await waitFor('the new image stored', async () => (await changesOf(w.sql, inScope)).length === 1);
    await waitFor('the poll ends', async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`).length === 1);
    expect(await changesOf(w.sql, inScope)).toEqual([
      {
        change_type: 'created',
        field: null,
        new_value: expect.objectContaining({ name: 'fresh' }),
        actor_email: 'alice@example.com',
        action_type: 'create',
        actor_candidates: 1,
      },
    ]);
    const targets = await w.sql`SELECT project_id, explicit, scope_key IS NOT NULL AS scoped FROM targets ORDER BY project_id`;
    expect(targets).toEqual([{ project_id: 2, explicit: false, scoped: true }]);
    // The scope of project 3 lists shared images only: the private one was fetched, found outside it, and not taken in.
    expect(w.fake.requestsByEndpoint.image).toBe(2);
    expect(await count(w.sql, 'actions')).toBe(3);
  });

  it('never stores or logs the API key, whatever an entry echoes, and passes over an entry it cannot store', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    const key = w.env.env.GCORE_API_KEY;
    w.fake.logAction({ email: `mallory+${key}@example.com`, userAgent: `curl/8.5 ${key}` }, 'update', image!, { note: key });
    // An entry without a time cannot be placed in the log; one with a user id off the contract is stored without it.
    const timeless = w.fake.auditLog.record({ account: 'default', actionType: 'update', triple: image!, actor: bob });
    delete timeless.timestamp;
    const odd = w.fake.auditLog.record({ account: 'default', actionType: 'update', triple: image!, actor: bob });
    odd.user_id = 'eleven';
    odd.action_data = { 'nul\u0000key': 1 };
    // A real date-time, which its zone carries past 9999.
    w.fake.auditLog.record({ account: 'default', actionType: 'update', triple: image!, actor: bob }).timestamp =
      '9999-12-31T23:30:00-01:00';
    // One poll: each poll reads the last minutes again, and names again an entry it passes over.
    follow(w, 60);
    await waitFor('the entries', async () => (await count(w.sql, 'actions')) === 2);
    expect(
      await w.sql`SELECT action_id, user_id, invalid_fields, raw->>'user_id' AS raw_user_id FROM image_actions ORDER BY action_id`,
    ).toEqual([
      { action_id: '1', user_id: expect.any(Number), invalid_fields: null, raw_user_id: expect.any(String) },
      {
        action_id: '3',
        user_id: null,
        invalid_fields: ['user_id', 'action_data.nul\uFFFDkey (key) (text Postgres cannot store, replaced)'],
        raw_user_id: 'eleven',
      },
    ]);
    const passedOver = w.logLines.filter((line) => line.includes('audit-log entry passed over'));
    expect(passedOver.map((line) => (JSON.parse(line) as { error: string }).error)).toEqual([
      'entry 2: timestamp is not a date-time: undefined',
      'entry 4: timestamp is not a date-time: "9999-12-31T23:30:00-01:00"',
    ]);
    const [stored] = await w.sql<{ text: string }[]>`SELECT row_to_json(a)::text AS text FROM image_actions a WHERE action_id = '1'`;
    expect(stored!.text).toContain('curl/8.5 ');
    expect(stored!.text).not.toContain(key);
    expect(w.logLines.join('\n')).not.toContain(key);
  });

  it('stores nothing and says why when the server ignores from_timestamp, and reads on once it honours it', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    // Two entries older than the overlap each poll reads again: a server that ignores from_timestamp answers them.
    const now = Date.now();
    w.fake.auditLog.clock = () => new Date(now - 20 * 60_000);
    w.fake.renameImageAs(alice, image!, 'one');
    w.fake.auditLog.clock = () => new Date(now - 15 * 60_000);
    w.fake.tagImageAs(alice, image!, 'team', 'one');
    w.fake.auditLog.clock = () => new Date();
    follow(w, 1);
    await waitFor('the first entries', async () => (await count(w.sql, 'actions')) === 2);
    w.fake.auditLog.ignoreFrom = true;
    // The older entry comes back with the new one: the cursor would skip or repeat entries, so nothing is stored.
    w.fake.renameImageAs(bob, image!, 'two');
    await waitFor('the error', async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE last_error IS NOT NULL`).length === 1);
    const [cursor] = await w.sql<{ last_error: string }[]>`SELECT last_error FROM audit_log_cursors`;
    expect(cursor!.last_error).toMatch(
      /^the audit log answered entries older than from_timestamp \S+: the cursor stays where it is \(is GCORE_BASE_URL, or the account's base_url, Gcore's API\?\)$/,
    );
    expect(await count(w.sql, 'actions')).toBe(2);
    w.fake.auditLog.ignoreFrom = false;
    await waitFor('the new entry', async () => (await count(w.sql, 'actions')) === 3);
    await waitFor('the error cleared', async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE last_error IS NULL`).length === 1);
  });

  it('pauses every request of the account when the audit log answers 429, then reads on', async () => {
    const tracked = images(20);
    const w = await begin(tracked);
    w.fake.renameImageAs(alice, tracked[0]!, 'after-the-pause');
    w.fake.setListFault({ endpoint: 'user_actions' }, { kind: 'rateLimited', retryAfter: '3' }, 1);
    follow(w, 1);
    await waitFor('the 429', () => w.fake.requestsByEndpoint.user_actions >= 1);
    const limitedAt = w.fake.requestTimes[0]!;
    // A sync asked for now waits with the log for the pause to end.
    await w.pipeline.sync();
    await waitFor('the rename', async () => (await changesOf(w.sql, tracked[0]!)).some((c) => c.actor_email === 'alice@example.com'));
    const after = w.fake.requestTimes.slice(1);
    expect(after.length).toBeGreaterThanOrEqual(21);
    expect(Math.min(...after) - limitedAt).toBeGreaterThanOrEqual(2900);
    expect(w.logLines.some((line) => line.includes('rate limited by the API: pausing the queue'))).toBe(true);
  });
  it('is not blinded by entries dated 2099 and 30 minutes ahead: a rename a few seconds later is refreshed and put down to alice', async () => {
    const [image, other] = images(2);
    const w = await begin([image!, other!]);
    // An attacker's entry from 2099 about the image alice will rename, and one from a Gcore node whose clock runs 30 minutes fast.
    const furthest = new Date('2099-01-01T00:00:00Z');
    w.fake.auditLog.record({ account: 'default', actionType: 'update', triple: image!, actor: bob, at: furthest });
    w.fake.auditLog.record({
      account: 'default',
      actionType: 'update',
      triple: other!,
      actor: bob,
      at: new Date(Date.now() + 30 * 60_000),
    });
    // Which entries each read of the log returned: entries from the future must not come back to every poll.
    const returned = returnedEntries(w);
    const startedAt = new Date();
    follow(w, 2);
    // The first poll ends, having looked ahead: both entries are stored, and the images they name refreshed (nothing changed).
    await waitFor('the look ahead', async () => (await w.sql`SELECT 1 FROM audit_log_cursors WHERE ahead_at IS NOT NULL`).length === 1);
    await waitFor(
      'both images refreshed',
      async () => (await w.sql`SELECT 1 FROM targets WHERE last_attempt_at > ${startedAt}`).length === 2,
    );
    expect(await count(w.sql, 'actions')).toBe(2);

    w.fake.renameImageAs(alice, image!, 'renamed-after-the-future');
    // Found by a poll, not by the hourly schedule nor the next look ahead (minutes away): the cursor did not follow the future.
    await waitFor('the rename, put down to alice', async () => (await changesOf(w.sql, image!)).some((c) => c.field === 'name'), 60_000);
    expect((await changesOf(w.sql, image!)).slice(1)).toEqual([
      {
        change_type: 'updated',
        field: 'name',
        new_value: 'renamed-after-the-future',
        actor_email: 'alice@example.com',
        action_type: 'update',
        actor_candidates: 1,
      },
      expect.objectContaining({ field: 'updated_at', actor_email: 'alice@example.com', actor_candidates: 1 }),
    ]);
    // One GET each for the entries from the future (acted on when seen), one for the rename.
    expect(w.fake.requestsByEndpoint.image).toBe(3);

    // Two more polls: the window never reaches past the database's clock, and the future entries (ids 1 and 2) came back
    // once, to the look ahead, not to every poll.
    const polls = pollCounter(w);
    const before = await polls();
    await waitFor('two more polls', async () => (await polls()) >= before + 2);
    expect(returned.filter((id) => id === '1' || id === '2')).toEqual(['1', '2']);
    const [cursor] =
      await w.sql`SELECT from_timestamp <= now() AS behind, polled_at <= now() AS polled_behind, ahead_count FROM audit_log_cursors`;
    expect(cursor).toEqual({ behind: true, polled_behind: true, ahead_count: 2 });

    // status says what the log holds from the future and how far; /readyz says it too, and stays ready.
    const [text, json] = await Promise.all([status(w), status(w, '--json')]);
    const line = text.split('\n').find((l) => l.startsWith('audit log: '));
    // formatDuration leaves out a unit that is zero: from 23:00 UTC the distance to 2099's midnight has no hours.
    expect(line).toMatch(
      /^audit log: read up to \S+ \(the database's clock when the last poll that read it to its end began\); FUTURE: holds 2 entries dated ahead of the database's clock \(at the look of \S+\), the furthest at 2099-01-01T00:00:00.000Z, \d+d(\d+h)?(\d+m)?(\d+s)? ahead: stored and acted on, but the cursor does not follow them; /,
    );
    const report = JSON.parse(json);
    expect(report.accounts.default.audit_log.future).toEqual({
      entries: 2,
      furthest: furthest.toISOString(),
      ahead_seconds: expect.any(Number),
      looked_at: expect.any(String),
      text: expect.stringContaining('the furthest at 2099-01-01T00:00:00.000Z'),
    });
    expect(Math.abs(report.accounts.default.audit_log.future.ahead_seconds - (furthest.getTime() - Date.now()) / 1000)).toBeLessThan(60);
    const http = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      {
        sql: w.sql,
        backend: w.pipeline.services.backend,
        metrics: createMetrics(w.pipeline.services.queues, w.sql),
      },
    );
    try {
      // A busy machine can make a check miss its 2 s once: the answer asserted is the first 200 (the future entries never make it 503).
      let answer: [number, unknown] = [0, null];
      await waitFor('/readyz to answer 200', async () => {
        const ready = await fetch(`http://127.0.0.1:${http.port}/readyz`);
        answer = [ready.status, await ready.json()];
        return ready.status === 200;
      });
      expect(answer).toEqual([
        200,
        {
          postgres: 'ok',
          queues: 'ok',
          api_key: 'ok',
          audit_log: {
            default: expect.stringMatching(
              /^holds 2 entries dated ahead of the database's clock \(at the look of \S+\), the furthest at 2099-01-01T00:00:00.000Z, \d+d\S* ahead: stored and acted on/,
            ),
          },
        },
      ]);
    } finally {
      await http.close();
    }
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  }, 120_000);

  it('stores an entry once however often the overlap reads it, and updates it (and refreshes what it names) when it comes back changed', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    // Gcore answers an action before it is complete, naming no image yet.
    const entry = w.fake.auditLog.record({ account: 'default', actionType: 'update', triple: image!, actor: bob });
    entry.is_complete = false;
    const resources = entry.resources;
    entry.resources = [];
    follow(w, 1);
    const polls = pollCounter(w);
    await waitFor('the incomplete entry', async () => (await count(w.sql, 'actions')) === 1);
    const before = await polls();
    await waitFor('two more polls', async () => (await polls()) >= before + 2);
    expect(await w.sql`SELECT action_id, image_id, raw->'is_complete' AS complete FROM image_actions`).toEqual([
      { action_id: '1', image_id: null, complete: false },
    ]);
    expect(w.fake.requestsByEndpoint.image).toBe(0);

    // The action completes: the image is renamed (Gcore logs nothing new), and the same entry comes back complete.
    w.fake.putImage(image!, sampleImage(image!, { name: 'completed-rename' }));
    entry.is_complete = true;
    entry.resources = resources;
    await waitFor('the entry updated', async () => (await w.sql`SELECT 1 FROM image_actions WHERE image_id IS NOT NULL`).length === 1);
    expect(await w.sql`SELECT action_id, accounts, image_id, raw->'is_complete' AS complete FROM image_actions`).toEqual([
      { action_id: '1', accounts: ['default'], image_id: image!.imageId, complete: true },
    ]);
    await waitFor('the rename, put down to bob', async () => (await changesOf(w.sql, image!)).some((c) => c.field === 'name'));
    expect((await changesOf(w.sql, image!)).find((c) => c.field === 'name')).toEqual({
      change_type: 'updated',
      field: 'name',
      new_value: 'completed-rename',
      actor_email: 'bob@example.com',
      action_type: 'update',
      actor_candidates: 1,
    });
    expect(w.fake.requestsByEndpoint.image).toBe(1);
  });
});

describe('entries Gcore logs incomplete', () => {
  /** The history the first sync stored, moved `minutes` back, as if it had run then. */
  async function firstSyncAgo(sql: Sql, minutes: number): Promise<void> {
    const by = `${minutes} minutes`;
    await sql`UPDATE image_rows SET first_seen_at = first_seen_at - ${by}::interval, seen_at = seen_at - ${by}::interval`;
    await sql`UPDATE image_versions SET valid_from = valid_from - ${by}::interval`;
    await sql`UPDATE image_changes SET changed_at = changed_at - ${by}::interval`;
  }

  /** Where the cursor stands against the entry `id`'s time, and the entry as stored. */
  async function cursorAndEntry(sql: Sql, id: string) {
    const [row] = await sql`
      SELECT c.from_timestamp = a.acted_at AS from_the_entry, c.from_timestamp > a.acted_at AS past_the_entry,
        a.is_complete, a.raw->'is_complete' AS raw_complete, a.image_id
      FROM audit_log_cursors c, image_actions a WHERE a.action_id = ${id}`;
    return row;
  }

  it('reads an entry logged incomplete again, past the overlap, until it is complete, and puts the rename down to it once', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    // Dated 20 minutes back, before the 10 minutes each poll reads again: only the incomplete entry's own rule reads it again.
    // The first sync as if it ran before that, so that the change log looks for the change's author where the entry lies.
    await firstSyncAgo(w.sql, 30);
    const id = w.fake.logIncompleteAction(
      alice,
      'update',
      image!,
      { name: 'renamed-meanwhile' },
      { at: new Date(Date.now() - 20 * 60_000) },
    );
    const returned = returnedEntries(w);
    follow(w, 1);
    const polls = pollCounter(w);
    await waitFor('the incomplete entry', async () => (await count(w.sql, 'actions')) === 1);
    const before = await polls();
    await waitFor('two more polls', async () => (await polls()) >= before + 2);
    // Read again by every poll, each beginning at it; naming no image yet, it refreshed nothing.
    expect(returned.filter((entry) => entry === id).length).toBeGreaterThanOrEqual(3);
    expect(await cursorAndEntry(w.sql, id)).toEqual({
      from_the_entry: true,
      past_the_entry: false,
      is_complete: false,
      raw_complete: false,
      image_id: null,
    });
    expect(w.fake.requestsByEndpoint.image).toBe(0);

    // The rename is done and Gcore completes its entry: the same id, naming the image now.
    w.fake.updateImage(image!, { name: 'renamed-meanwhile', updated_at: new Date().toISOString() });
    w.fake.completeAction(id);
    await waitFor('the rename, put down to alice', async () => (await changesOf(w.sql, image!)).some((c) => c.field === 'name'));
    const completedPolls = await polls();
    await waitFor('two more polls', async () => (await polls()) >= completedPolls + 2);
    expect((await changesOf(w.sql, image!)).slice(1)).toEqual([
      {
        change_type: 'updated',
        field: 'name',
        new_value: 'renamed-meanwhile',
        actor_email: 'alice@example.com',
        action_type: 'update',
        actor_candidates: 1,
      },
      expect.objectContaining({ field: 'updated_at', actor_email: 'alice@example.com', actor_candidates: 1 }),
    ]);
    // Stored complete, once; the windows begin an overlap before their bound again, past it.
    expect(await cursorAndEntry(w.sql, id)).toEqual({
      from_the_entry: false,
      past_the_entry: true,
      is_complete: true,
      raw_complete: true,
      image_id: image!.imageId,
    });
    expect(await count(w.sql, 'actions')).toBe(1);
    expect(w.fake.requestsByEndpoint.image).toBe(1);
    expect(w.logLines.some((line) => line.includes('are given up'))).toBe(false);
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  }, 120_000);

  it('gives up an entry still incomplete an hour after its time: stored as incomplete, named once, not read again', async () => {
    const [image] = images(1);
    const w = await begin([image!]);
    const id = w.fake.logIncompleteAction(bob, 'update', image!, null, { at: new Date(Date.now() - 2 * 60 * 60_000) });
    const returned = returnedEntries(w);
    follow(w, 1);
    const polls = pollCounter(w);
    // The first poll reads a day back: it stores the entry, and gives it up at once.
    await waitFor('the incomplete entry', async () => (await count(w.sql, 'actions')) === 1);
    const before = await polls();
    await waitFor('three more polls', async () => (await polls()) >= before + 3);
    // Completed now, too late: no window reads it again.
    w.fake.completeAction(id);
    const completedPolls = await polls();
    await waitFor('two more polls', async () => (await polls()) >= completedPolls + 2);

    expect(returned.filter((entry) => entry === id)).toEqual([id]);
    expect(await cursorAndEntry(w.sql, id)).toEqual({
      from_the_entry: false,
      past_the_entry: true,
      is_complete: false,
      raw_complete: false,
      image_id: null,
    });
    const givenUp = w.logLines.filter((line) => line.includes('are given up'));
    expect(givenUp.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({
        entries: 1,
        action_ids: [id],
        msg: 'audit log: entries still incomplete 1h after their time are given up: they stay stored as incomplete and are no longer read again',
      }),
    ]);
    expect(await invariantViolations(w.sql, w.pipeline.services.queues)).toEqual([]);
  }, 120_000);
});
