// Issue 29's row: each page of the web view in under 300 ms server time over an inventory of a million
// images and an image of a thousand versions. The inventory is written by bulk SQL (ui-seed.ts); the
// pages are served by the worker's own HTTP server and UI (as the worker command starts them) and asked
// for over HTTP, each page shape many times, timed by the Server-Timing total every page answer carries.
import { readFileSync } from 'node:fs';
import type { Sql } from 'postgres';
import { startHttpServer, type HttpServer } from '../src/ops/http-server.js';
import { createLogger } from '../src/ops/logger.js';
import { createMetrics } from '../src/ops/metrics.js';
import { createUi } from '../src/ui/ui-server.js';
import { encodeCursor } from '../src/ui/query.js';
import { imagePath, withQuery } from '../src/ui/layout.js';
import type { BenchContext, QueueStore } from './harness.js';
import { withContext } from './million.js';
import type { Row, UiScale } from './scenarios.js';
import { bulkImageId, RARE_WORD, seedUiInventory, TIMELINE } from './ui-seed.js';

/** The bound on a page's server time. */
const TARGET_MS = 300;
const WARM_UPS = 2;
/** Pages followed by their `next` link from the first, for the deep pages. */
const DEEP_PAGES = 20;
/** A page slower than this in its warm-up is timed this few times: enough to say it is slow. */
const SLOW_MS = 2000;
const SLOW_REPEATS = 3;

const n = (count: number) => count.toLocaleString('en-US');

interface Timing {
  total: number;
  db: number;
  /** The HTTP status: a page stopped by the read's 10 s timeout answers 503, and is counted, not thrown. */
  status: number;
}

interface Answer extends Timing {
  body: string;
}

/** A page shape: one address, or a walk of pages whose every step is timed. */
type Shape = { name: string; path: string } | { name: string; walkFrom: string };

/** The instant `days` days before now, as the pages' time fields take it. */
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();

const timeline = (rest = '') =>
  imagePath({ project_id: TIMELINE.projectId, region_id: TIMELINE.regionId, image_id: TIMELINE.imageId }, rest);

/** The pages timed, with the values the seeded inventory holds (ui-seed.ts). */
function shapes(images: number, versions: { first: number; middle: number; last: number }): Shape[] {
  const inventory = (name: string, params: Record<string, string>) => ({ name: `inventory: ${name}`, path: withQuery('/ui', params) });
  const changes = (name: string, params: Record<string, string>) => ({ name: `changes: ${name}`, path: withQuery('/ui/changes', params) });
  return [
    inventory('first page, by name', {}),
    { name: `inventory: pages 2 to ${DEEP_PAGES + 1} by next, by name`, walkFrom: '/ui' },
    inventory('a page from the middle of the alphabet (after "m")', { after: encodeCursor(['m', 0, 0, '']) }),
    inventory('first page, by last change', { sort: 'changed' }),
    { name: `inventory: pages 2 to ${DEEP_PAGES + 1} by next, by last change`, walkFrom: '/ui?sort=changed' },
    inventory('project=7', { project: '7' }),
    inventory('region=3', { region: '3' }),
    inventory('account=dev', { account: 'dev' }),
    inventory('kind=gpu_baremetal (1 in 100)', { kind: 'gpu_baremetal' }),
    inventory('owned=own', { owned: 'own' }),
    inventory('owned=other', { owned: 'other' }),
    inventory('os=debian', { os: 'debian' }),
    inventory('tag=team=ml (1 in 10)', { tag: 'team=ml' }),
    inventory('tag=cost-center=cc-42 (1 in 2,000)', { tag: 'cost-center=cc-42' }),
    inventory('tag=env (key only)', { tag: 'env' }),
    inventory('q=ubuntu (common)', { q: 'ubuntu' }),
    inventory('q=web (1 in 9; its first match 230,000 names in)', { q: 'web' }),
    inventory(`q=${RARE_WORD} (1 in 50,000)`, { q: RARE_WORD }),
    inventory('q with no match', { q: 'no-such-image-zq' }),
    inventory('q=an exact id', { q: bulkImageId(Math.min(4242, images)) }),
    inventory('unused=1', { unused: '1' }),
    inventory('deleted=7', { deleted: '7' }),
    inventory('project=7, region=3, by last change', { project: '7', region: '3', sort: 'changed' }),
    inventory('account=prod, os=ubuntu, owned=own', { account: 'prod', os: 'ubuntu', owned: 'own' }),
    inventory('tag=team=ml, q=web', { tag: 'team=ml', q: 'web' }),
    inventory('deleted=7, account=staging, by last change', { deleted: '7', account: 'staging', sort: 'changed' }),
    { name: 'image: timeline, newest versions', path: timeline() },
    { name: 'image: timeline, older versions (before= the middle)', path: withQuery(timeline(), { before: versions.middle }) },
    { name: 'image: diff of the first and last versions', path: withQuery(timeline('/diff'), { a: versions.first, b: versions.last }) },
    { name: 'image: a version', path: timeline(`/versions/${versions.middle}`) },
    { name: 'image: raw document', path: timeline('/raw') },
    changes('first page', {}),
    { name: `changes: pages 2 to ${DEEP_PAGES + 1} by next`, walkFrom: '/ui/changes' },
    changes('account=partner', { account: 'partner' }),
    changes('kind=gpu_baremetal', { kind: 'gpu_baremetal' }),
    changes('type=deleted (1 in 50)', { type: 'deleted' }),
    changes('field=description', { field: 'description' }),
    changes('actor (who changed the image of 1,000 versions)', { actor: 'person3@example.com' }),
    changes('a day ten days ago', { from: daysAgo(10), to: daysAgo(9) }),
    { name: 'runs: recent runs, failures and lag', path: '/ui/runs' },
  ];
}

async function get(base: string, path: string): Promise<Answer> {
  const response = await fetch(`${base}${path}`);
  const body = await response.text();
  if (response.status !== 200 && response.status !== 503) throw new Error(`${path}: ${response.status} ${body.slice(0, 500)}`);
  const timing = response.headers.get('server-timing') ?? '';
  const total = Number(/total;dur=([\d.]+)/.exec(timing)?.[1]);
  const db = Number(/db;dur=([\d.]+)/.exec(timing)?.[1]);
  if (!Number.isFinite(total) || !Number.isFinite(db)) throw new Error(`${path}: no Server-Timing total and db (${timing})`);
  return { total, db, status: response.status, body };
}

/** The address of a page's `next` link, or undefined on the last page. */
function nextOf(body: string): string | undefined {
  return /<a id="next" href="([^"]+)"/.exec(body)?.[1]?.replace(/&amp;/g, '&');
}

/** The timings of the `DEEP_PAGES` pages after `first`, each reached by the one before's `next` link. */
async function walk(base: string, first: string): Promise<Timing[]> {
  const timings: Timing[] = [];
  let next = nextOf((await get(base, first)).body);
  while (next !== undefined && timings.length < DEEP_PAGES) {
    const page = await get(base, next);
    timings.push(page);
    next = nextOf(page.body);
  }
  return timings;
}

/** Timings of `shape` after the warm-ups: `repeats` requests (a walk: its pages, over a quarter as many walks). */
async function measureShape(base: string, shape: Shape, repeats: number): Promise<Timing[]> {
  const once = (): Promise<Timing[]> => ('path' in shape ? get(base, shape.path).then((t) => [t]) : walk(base, shape.walkFrom));
  let warmest = 0;
  for (let i = 0; i < WARM_UPS; i++) warmest = Math.max(...(await once()).map((t) => t.total), 0);
  const rounds = warmest > SLOW_MS ? SLOW_REPEATS : 'path' in shape ? repeats : Math.max(1, Math.ceil(repeats / 4));
  const timings: Timing[] = [];
  for (let i = 0; i < rounds; i++) timings.push(...(await once()));
  return timings;
}

/** The nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function shapeRow(shape: Shape, timings: Timing[]): Row {
  const totals = timings.map((t) => t.total);
  const [p50, p95, max] = [percentile(totals, 50), percentile(totals, 95), Math.max(...totals)];
  const db = percentile(
    timings.map((t) => t.db),
    50,
  );
  const failed = timings.filter((t) => t.status !== 200).length;
  const failures = failed === 0 ? '' : `; ${failed} answered 503 (stopped at the read's timeout)`;
  return {
    scenario: `ui: ${shape.name}`,
    measured: `p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${max.toFixed(1)} ms (db p50 ${db.toFixed(1)} ms; ${timings.length} requests${failures})`,
    target: `p95 < ${TARGET_MS} ms`,
    met: p95 < TARGET_MS && failed === 0,
    values: { p50, p95, max, dbP50: db, requests: timings.length, failed },
  };
}

/** The 1-minute load average now (other agents share the machine). */
const loadNow = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

async function timelineVersions(sql: Sql): Promise<{ first: number; middle: number; last: number; count: number }> {
  const ids = await sql<Array<{ id: number }>>`
    SELECT id FROM image_versions WHERE (project_id, region_id, image_id) = (${TIMELINE.projectId}, ${TIMELINE.regionId}, ${TIMELINE.imageId})
    ORDER BY valid_from`;
  return { first: ids[0]!.id, middle: ids[Math.floor(ids.length / 2)]!.id, last: ids.at(-1)!.id, count: ids.length };
}

function startUiServer(ctx: BenchContext): Promise<HttpServer> {
  const { sql, queues, backend } = ctx.services;
  const logger = createLogger('warn');
  return startHttpServer(
    { host: '127.0.0.1', port: 0 },
    {
      sql,
      backend,
      metrics: createMetrics(queues, sql),
      ui: createUi({ sql, access: { kind: 'open', reason: 'the benchmark' }, logger }),
    },
  );
}

/**
 * Seeds `scale`'s inventory in a database of its own, serves the UI over it, and times every page shape:
 * a row for the seeding, one per shape (p50, p95 and max of the server's total), and one for the load.
 */
export async function uiPages(scale: UiScale, store: QueueStore): Promise<Row[]> {
  return withContext(store, async (ctx): Promise<Row[]> => {
    const seconds = await seedUiInventory(ctx.services.sql, scale);
    const versions = await timelineVersions(ctx.services.sql);
    if (versions.count !== scale.versions) throw new Error(`the timeline's image has ${versions.count} versions, not ${scale.versions}`);
    const server = await startUiServer(ctx);
    const base = `http://127.0.0.1:${server.port}`;
    const loads = [loadNow()];
    const sampler = setInterval(() => loads.push(loadNow()), 5000);
    try {
      const rows: Row[] = [
        {
          scenario: `ui: seeding ${n(scale.images)} images and one of ${n(scale.versions)} versions by SQL, VACUUM ANALYZE included`,
          measured: `${seconds.toFixed(1)} s`,
          target: '-',
          met: null,
          values: { seconds },
        },
      ];
      for (const shape of shapes(scale.images, versions)) {
        process.stderr.write(`bench: ui: ${shape.name}\n`);
        rows.push(shapeRow(shape, await measureShape(base, shape, scale.repeats)));
      }
      loads.push(loadNow());
      const [low, high] = [Math.min(...loads), Math.max(...loads)];
      rows.push({
        scenario: 'ui: 1-minute load average while the pages were timed',
        measured: `${low.toFixed(2)} to ${high.toFixed(2)}`,
        target: '-',
        met: null,
        values: { low, high },
      });
      const slow = rows.filter((row) => row.met === false).map((row) => row.scenario);
      process.stderr.write(`bench: ui: pages over ${TARGET_MS} ms at p95: ${slow.length === 0 ? 'none' : slow.join('; ')}\n`);
      return rows;
    } finally {
      clearInterval(sampler);
      await server.close();
    }
  });
}
