// /ui/changes and /ui/runs of a worker process, as production serves them
// (HTTP_PORT, read through the reporting role), over the real pipeline: two
// accounts (one with a discovery scope), a GPU image, a rename and a tag
// change made "as" users and put down to them from the audit log, audit
// snapshots before and after, and a sync whose refreshes fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunProgress } from '../src/sql/getRun.js';
import { takeSnapshot, type Snapshot } from '../src/sql/takeSnapshot.js';
import { sampleGpuImage, sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GPU_VIRTUAL } from '../src/images/image-kinds.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const alice = { email: 'alice@example.com', userId: 5150 };
const bob = { email: 'bob@example.com', userId: 6160 };

const at = (projectId: number, n: number): Triple => ({ projectId, regionId: 7, imageId: sampleImageId(n) });
/** More than a page of the change feed (50) once each has its first sighting. */
const PROD = Array.from({ length: 55 }, (_, n) => at(1, n + 1));
const GPU: Triple = { projectId: 1, regionId: 8, imageId: sampleImageId(100) };
/** Listed by staging's discovery scope. */
const STAGING = [at(2, 201), at(2, 202)];
const RENAMED = PROD[0]!;
const TAGGED = STAGING[0]!;
const FAILING = [PROD[1]!, PROD[2]!];
const REFUSED = PROD[3]!;

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let worker: ChildProcess;
let base: string;
let firstRun: RunProgress;
let failedRun: RunProgress;
/** Between the first sync's changes and the users' ones. */
let boundary: Date;
let snapshots: { before: Snapshot; after: Snapshot; afterBefore: Date; afterAfter: Date };

beforeAll(async () => {
  env = await createTestEnv();
  const keys = { prod: `prod-${randomUUID()}`, staging: `staging-${randomUUID()}` };
  fake = new FakeGcore({
    accounts: { prod: { apiKey: keys.prod, projects: [1] }, staging: { apiKey: keys.staging, projects: [2] } },
  });
  fake.putProject({ id: 1, name: 'prod' });
  fake.putProject({ id: 2, name: 'staging' });
  fake.putRegion({ id: 7, display_name: 'Luxembourg', state: 'ACTIVE', has_baremetal: false });
  for (const triple of [...PROD, ...STAGING]) fake.putImage(triple, sampleImage(triple));
  fake.putImage(GPU, sampleGpuImage(GPU), GPU_VIRTUAL);
  await fake.start();
  const keyEnv = { GCORE_API_KEY_PROD: keys.prod, GCORE_API_KEY_STAGING: keys.staging };
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
accounts:
  prod: { api_key_env: GCORE_API_KEY_PROD }
  staging: { api_key_env: GCORE_API_KEY_STAGING }
targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${PROD.map((t) => t.imageId).join(', ')}] }
  - { account: prod, project_id: 1, region_id: 8, image_ids: [${GPU.imageId}], kind: gpu_virtual }
  - { account: staging, project_id: 2, region_id: 7, discover: {} }
`,
    { env: keyEnv, noWorker: true },
  );
  const port = await sparePort();
  base = `http://127.0.0.1:${port}`;
  worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      PATH: process.env.PATH!,
      ...env.env,
      ...keyEnv,
      GCORE_BASE_URL: fake.url,
      TARGETS_FILE: pipeline.config.targetsFile,
      HTTP_PORT: String(port),
      AUDIT_LOG_POLL_SECONDS: '1',
    },
    stdio: 'ignore',
  });
  await waitFor('the HTTP server', async () => (await fetch(`${base}/healthz`)).ok);
  const { sql } = pipeline.services;

  firstRun = await pipeline.sync();
  const before = await takeSnapshot(sql, 'ui-test before');
  const afterBefore = new Date();
  boundary = new Date();
  fake.renameImageAs(alice, RENAMED, 'renamed-by-alice');
  fake.tagImageAs(bob, TAGGED, 'env', 'staging');
  await waitFor('both changes put down to their users', async () => {
    const rows = await sql`SELECT 1 FROM image_change_log WHERE field IN ('name', 'tags.env') AND actor_email IS NOT NULL`;
    return rows.length === 2;
  });
  const after = await takeSnapshot(sql, 'ui-test after');
  snapshots = { before, after, afterBefore, afterAfter: new Date() };

  for (const triple of FAILING) fake.setFault(triple, { kind: 'malformed' });
  fake.setFault(REFUSED, { kind: 'status', status: 503, headers: { 'x-should-retry': 'false' } });
  failedRun = await pipeline.sync();
  fake.clearFaults();
  await waitFor('both audit logs read to their end', async () => {
    const rows = await sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`;
    return rows.length === 2;
  });
}, 180_000);

afterAll(async () => {
  worker?.kill('SIGKILL');
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

/** HTML text as a reader sees it: tags dropped, entities read, white space collapsed. */
function text(fragment: string): string {
  return fragment
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The element with this id, from its start tag to the end tag of its name (elements of the same name are not nested in it). */
function element(page: string, id: string): string {
  const start = new RegExp(`<(\\w+)[^>]*\\bid="${id}"[^>]*>`).exec(page);
  if (!start) throw new Error(`no element #${id}`);
  const end = page.indexOf(`</${start[1]}>`, start.index);
  return page.slice(start.index, end + start[1]!.length + 3);
}

/** The text of each cell of a class in a row. */
function cells(row: string): Record<string, string> {
  return Object.fromEntries([...row.matchAll(/<td class="([^"]+)"[^>]*>([\s\S]*?)<\/td>/g)].map((m) => [m[1]!, text(m[2]!)]));
}

interface FeedRow {
  id: number;
  image: string;
  what: string;
  who: string;
  account: string;
}

/** The change feed's rows on a page. */
function feedRows(page: string): FeedRow[] {
  return [...page.matchAll(/<tr class="change" id="change-(\d+)">([\s\S]*?)<\/tr>/g)].map((m) => {
    const c = cells(m[2]!);
    return { id: Number(m[1]), image: c.image!, what: c.what!, who: c.who!, account: c.account! };
  });
}

/** The href of the link with this id, as the browser would follow it. */
function link(page: string, id: string): string | undefined {
  const href = new RegExp(`<a id="${id}" href="([^"]+)"`).exec(page)?.[1];
  return href === undefined ? undefined : text(href);
}

const changesPath = (query: Record<string, string>) => `/ui/changes?${new URLSearchParams(query).toString()}`;

async function get(path: string): Promise<{ status: number; page: string }> {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, page: await response.text() };
}

async function feed(query: Record<string, string>): Promise<FeedRow[]> {
  const { status, page } = await get(changesPath(query));
  expect(status).toBe(200);
  return feedRows(page);
}

const nameOf = (t: Triple) => `ubuntu-22.04-x64-${t.imageId.slice(-4)}`;

describe('/ui/changes', () => {
  it('shows a rename with the old and the new name and the email of who renamed it, linked to its timeline', async () => {
    const { page } = await get('/ui/changes?field=name');
    const rows = feedRows(page);
    expect(rows.map(({ id: _, ...row }) => row)).toEqual([
      { image: 'renamed-by-alice', what: `name ${nameOf(RENAMED)} → renamed-by-alice`, who: 'alice@example.com update', account: 'prod' },
    ]);
    expect(element(page, `change-${rows[0]!.id}`)).toContain(
      `<a href="/ui/images/${RENAMED.projectId}/${RENAMED.regionId}/${RENAMED.imageId}">renamed-by-alice</a>`,
    );
  });

  it('pages newest first, 50 a page: the next link gives the rows that follow, with no gap and no repeat', async () => {
    const first = await get('/ui/changes');
    const next = link(first.page, 'next');
    expect(next).toMatch(/^\/ui\/changes\?after=[\w-]+$/);
    const second = await get(next!);
    expect(link(second.page, 'next')).toBeUndefined();
    const all = await pipeline.services.sql<{ id: number }[]>`SELECT id FROM image_changes ORDER BY changed_at DESC, id DESC`;
    // 58 first sightings, then the rename and the tag, each with the updated_at the API moved.
    expect(all).toHaveLength(62);
    expect(feedRows(first.page).map((r) => r.id)).toEqual(all.slice(0, 50).map((r) => r.id));
    expect(feedRows(second.page).map((r) => r.id)).toEqual(all.slice(50).map((r) => r.id));
  });

  it('each filter narrows the feed to exactly what it names, and keeps narrowing on the next page', async () => {
    const users = [
      { image: 'renamed-by-alice', what: `name ${nameOf(RENAMED)} → renamed-by-alice`, who: 'alice@example.com update', account: 'prod' },
      {
        image: nameOf(TAGGED),
        what: 'tags.env – → {"value":"staging","read_only":false}',
        who: 'bob@example.com update_metadata',
        account: 'staging',
      },
    ];
    const shown = (rows: FeedRow[]) => rows.map(({ id: _, ...row }) => row).filter((row) => !row.what.startsWith('updated_at'));
    const fields = (rows: FeedRow[]) => rows.map((row) => row.what.split(' ')[0]).sort();

    expect(fields(await feed({ actor: 'ALICE@example.com' }))).toEqual(['name', 'updated_at']);
    expect(shown(await feed({ actor: 'alice@example.com' }))).toEqual([users[0]]);
    expect(shown(await feed({ field: 'tags.' }))).toEqual([users[1]]);
    expect(shown(await feed({ field: 'tags.env' }))).toEqual([users[1]]);
    expect(await feed({ field: 'tags.team' })).toEqual([]);
    expect(fields(await feed({ type: 'updated' }))).toEqual(['name', 'tags.env', 'updated_at', 'updated_at']);
    expect(fields(await feed({ from: boundary.toISOString() }))).toEqual(['name', 'tags.env', 'updated_at', 'updated_at']);

    const before = await feed({ to: boundary.toISOString(), type: 'created' });
    expect(before).toHaveLength(50);
    expect(new Set(before.map((row) => row.what))).toEqual(new Set(['created']));

    const staging = await feed({ account: 'staging' });
    expect(staging.map((row) => [row.image, row.what.split(' ')[0]]).sort()).toEqual(
      [
        [nameOf(STAGING[0]!), 'created'],
        [nameOf(STAGING[0]!), 'tags.env'],
        [nameOf(STAGING[0]!), 'updated_at'],
        [nameOf(STAGING[1]!), 'created'],
      ].sort(),
    );
    expect(new Set(staging.map((row) => row.account))).toEqual(new Set(['staging']));

    expect((await feed({ kind: 'gpu_virtual' })).map(({ id: _, ...row }) => row)).toEqual([
      { image: `ubuntu-22.04-x64-cuda-${GPU.imageId.slice(-4)}`, what: 'created', who: 'unknown', account: 'prod' },
    ]);

    // Filters ride along in the next link: the first sightings before the users' changes, 58, in two pages.
    const first = await get(changesPath({ to: boundary.toISOString(), type: 'created' }));
    const next = link(first.page, 'next')!;
    expect(new URLSearchParams(next.split('?')[1]).get('type')).toBe('created');
    const rest = feedRows((await get(next)).page);
    expect(rest).toHaveLength(8);
    expect(new Set([...feedRows(first.page), ...rest].map((row) => row.id)).size).toBe(58);
  });

  it('refuses bad input with 400 and a message naming the parameter', async () => {
    const refusal = async (query: string) => {
      const { status, page } = await get(`/ui/changes?${query}`);
      return [status, text(/<p class="problem">([\s\S]*?)<\/p>/.exec(page)?.[1] ?? '')];
    };
    expect(await refusal('from=2026-02-30')).toEqual([
      400,
      'from: must be a date (2026-12-06) or a date-time with a zone (2026-12-06T18:00:00Z) (got "2026-02-30")',
    ]);
    expect(await refusal('kind=nope')).toEqual([400, expect.stringMatching(/^kind: must be one of ordinary, .* \(got "nope"\)$/)]);
    expect(await refusal('type=renamed')).toEqual([400, 'type: must be one of created, updated, deleted, restored (got "renamed")']);
    expect(await refusal('after=bm90LWEtY3Vyc29y')).toEqual([
      400,
      'after: not a position this page wrote; start again from the first page',
    ]);
    expect(await refusal('diff_from=2026-01-01')).toEqual([400, 'diff_to: give both dates to compare (diff_from and diff_to)']);
  });

  it('says what changed between two dates from the snapshots in force at each, naming the snapshots used', async () => {
    const { page } = await get(
      changesPath({ diff_from: snapshots.afterBefore.toISOString(), diff_to: snapshots.afterAfter.toISOString() }),
    );
    expect(text(element(page, 'snapshot-a'))).toMatch(new RegExp(`^snapshot ${snapshots.before.id}, taken \\S+ \\S+ UTC \\(58 images\\)$`));
    expect(text(element(page, 'snapshot-b'))).toMatch(new RegExp(`^snapshot ${snapshots.after.id}, taken \\S+ \\S+ UTC \\(58 images\\)$`));
    const differences = [...element(page, 'snapshot-diff').matchAll(/<tr class="difference">([\s\S]*?)<\/tr>/g)].map((m) => cells(m[1]!));
    expect(differences.map((c) => [c.image, c['difference-type']])).toEqual([
      ['renamed-by-alice', 'changed'],
      [nameOf(TAGGED), 'changed'],
    ]);
    expect(element(page, 'snapshot-diff')).toContain(`href="/ui/images/1/7/${RENAMED.imageId}"`);

    const early = await get(`/ui/changes?diff_from=2020-01-01&diff_to=${snapshots.afterAfter.toISOString()}`);
    expect(text(element(early.page, 'snapshot-diff'))).toBe('No audit snapshot was taken at or before 2020-01-01 00:00:00 UTC.');
  });
});

describe('/ui/runs', () => {
  it('shows each run with its counts and its listing', async () => {
    const { status, page } = await get('/ui/runs');
    expect(status).toBe(200);
    const run = (id: number) => cells(element(page, `run-${id}`));
    expect(run(failedRun.id)).toMatchObject({ status: 'finished', 'num planned': '58', 'num failed': '3', 'num changed': '0' });
    expect(run(firstRun.id)).toMatchObject({
      status: 'finished',
      'num planned': '56',
      'num changed': '58',
      'num created': '58',
      'num failed': '0',
      'num listings_failed': '0',
      'num unattempted': '0',
      error: '',
    });
    const listings = [...page.matchAll(/<li class="listing" id="listing-\d+">([\s\S]*?)<\/li>/g)].map((m) => text(m[1]!));
    expect(listings).toHaveLength(2);
    expect(listings[1]).toBe('scope project 2, region 7 (staging): complete, expected 2, listed 2, absent 0');
    // The listing is shown under its own run.
    const firstRunAndListing = page.slice(page.indexOf(`id="run-${firstRun.id}"`));
    expect(firstRunAndListing.indexOf('class="listing"')).toBeLessThan(firstRunAndListing.indexOf('</tbody>'));
  });

  it('groups the failures of the last day and week by cause, with the latest message', async () => {
    const { page } = await get('/ui/runs');
    for (const id of ['failures-day', 'failures-week']) {
      const causes = [...element(page, id).matchAll(/<tr class="cause">([\s\S]*?)<\/tr>/g)].map((m) => cells(m[1]!));
      expect(causes.map((c) => [c['error-class'], c['num count'], c.message])).toEqual([
        ['MalformedAnswerError', '2', '200 with a body that is not JSON: {"id": "truncated'],
        ['TransientApiError', '1', '503: injected 503'],
      ]);
    }
  });

  it("shows each account's audit-log lag", async () => {
    const { page } = await get('/ui/runs');
    const lags = [...element(page, 'audit-lag').matchAll(/<tr class="lag">([\s\S]*?)<\/tr>/g)].map((m) => cells(m[1]!));
    expect(lags.map((c) => c.account)).toEqual(['prod', 'staging']);
    for (const lag of lags) {
      expect(lag['lag-value']).toMatch(/^(\d+ (min|s) ?)+$/);
      expect(lag.error).toBe('');
    }
  });

  it('pages by run id: before= gives the older runs only', async () => {
    const { page } = await get(`/ui/runs?before=${failedRun.id}`);
    expect([...page.matchAll(/<tr class="run" id="run-(\d+)">/g)].map((m) => Number(m[1]))).toEqual([firstRun.id]);
  });
});
