// The web view as a person sees it: headless Chromium (Debian's) through pages
// served as the worker serves them (startHttpServer with createUi, reading as
// the reporting role), over images the real pipeline stored from the fake API,
// changed by users of its audit log, one of them named with an HTML payload.
import type { Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId, spreadImages, spreadOver } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createLogger } from '../src/ops/logger.js';
import { startHttpServer, type HttpServer } from '../src/ops/http-server.js';
import { createMetrics } from '../src/ops/metrics.js';
import { uiAccess } from '../src/ui/ui-access.js';
import { CONTENT_SECURITY_POLICY, createUi } from '../src/ui/ui-server.js';
import { startWorker } from '../src/work/worker.js';
import { withBrowser } from './support/browser.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, withWorker, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const XSS_NAME = `<img src=x onerror="document.title='pwned'">`;
const XSS_TAG = `<script>document.title='pwned'</script>`;
const ORIGINAL_NAME = 'ubuntu-22.04-base';
const NEW_NAME = 'golden-2026-11';
const alice = { email: 'alice@example.com' };
const bob = { email: 'bob@example.com' };
const mallory = { email: 'mallory@example.com' };

/** More than two inventory pages (50 each) in project 1, region 1; every tenth a bare-metal image named bm-... */
const GENERATED = spreadImages(120, spreadOver(1, 1));
/** Project 2: the image alice renames (and bob retags), and the one named with a payload. */
const renamed: Triple = { projectId: 2, regionId: 1, imageId: sampleImageId(1001) };
const payload: Triple = { projectId: 2, regionId: 1, imageId: sampleImageId(1002) };

const browser = withBrowser();
let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let server: HttpServer;
let base: string;

const timeline = (t: Triple) => `/ui/images/${t.projectId}/${t.regionId}/${t.imageId}`;

/** Changes of an image whose field is `field`, with who made them, as the change log has them. */
async function attributed(t: Triple, field: string): Promise<boolean> {
  const rows = await pipeline.services.sql`
    SELECT 1 FROM image_change_log WHERE (project_id, region_id, image_id) = (${t.projectId}, ${t.regionId}, ${t.imageId})
      AND field = ${field} AND actor_email IS NOT NULL`;
  return rows.length === 1;
}

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const [triple, image] of GENERATED) fake.putImage(triple, image);
  fake.putImage(renamed, sampleImage(renamed, { name: ORIGINAL_NAME }));
  fake.putImage(payload, sampleImage(payload, { name: XSS_NAME }));
  await fake.start();
  const ids = (triples: Triple[]) => triples.map((t) => t.imageId).join(', ');
  const targets = `${QUIET_SCHEDULE}
targets:
  - { project_id: 1, region_id: 1, image_ids: [${ids(GENERATED.map(([triple]) => triple))}] }
  - { project_id: 2, region_id: 1, image_ids: [${ids([renamed, payload])}] }
`;
  pipeline = await startPipeline(env, fake.url, targets, { noWorker: true });
  await withWorker(pipeline, () => pipeline.sync());

  // Users act through the fake API; a worker that follows its audit log refreshes what they changed and names them.
  fake.renameImageAs(alice, renamed, NEW_NAME);
  fake.tagImageAs(mallory, payload, 'note', XSS_TAG);
  const follower = startWorker({
    config: { ...pipeline.config, auditLogPollSeconds: 1 },
    accounts: pipeline.accounts,
    logger: createLogger('silent'),
    ...pipeline.services,
  });
  try {
    await waitFor('the rename put down to alice', () => attributed(renamed, 'name'));
    await waitFor("mallory's tag put down to her", () => attributed(payload, 'tags.note'));
    // A third version, so the diff compares two that are not neighbours.
    fake.tagImageAs(bob, renamed, 'team', 'data');
    await waitFor('the retag put down to bob', () => attributed(renamed, 'tags.team'));
  } finally {
    await follower.close();
  }

  const { config, services } = pipeline;
  server = await startHttpServer(
    { host: config.httpHost, port: 0 },
    {
      sql: services.sql,
      backend: services.backend,
      metrics: createMetrics(services.queues, services.sql),
      ui: createUi({
        sql: services.sql,
        access: uiAccess(config.ui, config.httpHost),
        logger: createLogger('silent'),
      }),
    },
  );
  base = `http://${config.httpHost}:${server.port}`;
});

afterAll(async () => {
  await server?.close();
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

interface Visit {
  page: Page;
  response: Response;
  /** Every console message, page error and dialog while the page was open: a page that runs nothing and breaks no rule has none. */
  events: string[];
  /** The stylesheet's response, once the page has loaded. */
  stylesheet: () => Response | undefined;
}

/** Opens `path` in a fresh context (no cookies, no cache) and waits for its load event (the stylesheet included). */
async function visit(path: string): Promise<Visit> {
  const context = await browser().newContext();
  const page = await context.newPage();
  page.once('close', () => void context.close());
  const events: string[] = [];
  let stylesheet: Response | undefined;
  page.on('console', (message) => events.push(`console ${message.type()}: ${message.text()} (${message.location().url})`));
  page.on('pageerror', (error) => events.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => {
    events.push(`dialog ${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('response', (response) => {
    if (new URL(response.url()).pathname === '/ui/style.css') stylesheet = response;
  });
  const response = await page.goto(`${base}${path}`);
  if (!response) throw new Error(`no response for ${path}`);
  return { page, response, events, stylesheet: () => stylesheet };
}

/** The image ids of the inventory's rows, in order (each row's first cell holds its name, then its id). */
function inventoryIds(page: Page): Promise<string[]> {
  return page.locator('#inventory tbody tr td:first-child .muted').allInnerTexts();
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** The generated images in the inventory's order: by name (made of a-z, 0-9, '.' and '-' at the same places, so every collation agrees). */
const generatedInOrder = (only: (name: string) => boolean = () => true) =>
  GENERATED.map(([triple, image]) => ({ id: triple.imageId, name: String(image.name) }))
    .filter((image) => only(image.name))
    .sort((a, b) => byName(a.name, b.name))
    .map((image) => image.id);

describe('the web view in Chromium', () => {
  it("shows a renamed image's old name, new name and who renamed it in one change row", async () => {
    const { page, events } = await visit(timeline(renamed));
    const row = page.locator('tr.change').filter({ has: page.locator('td.field', { hasText: /^name$/ }) });
    expect(await row.count()).toBe(1);
    expect(await row.locator('td.old').innerText()).toBe(ORIGINAL_NAME);
    expect(await row.locator('td.new').innerText()).toBe(NEW_NAME);
    expect(await row.locator('span.actor').innerText()).toBe(alice.email);
    for (const cell of [row.locator('td.old'), row.locator('td.new'), row.locator('span.actor')]) expect(await cell.isVisible()).toBe(true);
    expect(await page.locator('h1').innerText()).toBe(NEW_NAME);
    expect(events).toEqual([]);
    await page.close();
  });

  it('shows a name and a tag made of HTML as text, and runs nothing', async () => {
    const inventory = await visit('/ui?project=2');
    const { page } = inventory;
    const row = page.locator('#inventory tbody tr').filter({ hasText: payload.imageId });
    expect(await row.locator('td:first-child a').innerText()).toBe(XSS_NAME);
    expect(await row.locator('span.tag').allInnerTexts()).toEqual(['note=' + XSS_TAG, 'os=ubuntu', 'team=platform']);
    expect(await page.title()).toBe('Inventory · gcore-image-sync');
    expect(await page.locator('img, script, iframe, object, embed').count()).toBe(0);
    expect(inventory.events).toEqual([]);
    await page.close();

    const image = await visit(timeline(payload));
    expect(await image.page.title()).toBe(`${XSS_NAME} · gcore-image-sync`);
    expect(await image.page.locator('h1').innerText()).toBe(XSS_NAME);
    expect(await image.page.locator('#tags tbody tr').first().locator('td').allInnerTexts()).toEqual(['note', XSS_TAG, 'no']);
    const tagChange = image.page.locator('tr.change').filter({ has: image.page.locator('td.field', { hasText: /^tags\.note$/ }) });
    expect(await tagChange.locator('td.new').innerText()).toBe(JSON.stringify({ value: XSS_TAG, read_only: false }));
    expect(await tagChange.locator('span.actor').innerText()).toBe(mallory.email);
    expect(await image.page.locator('img, script, iframe, object, embed').count()).toBe(0);
    expect(image.events).toEqual([]);
    await image.page.close();
  });

  it('sends the exact Content-Security-Policy with every page, and the stylesheet loads under it', async () => {
    const missing = '/ui/images/2/1/no-such-image';
    for (const path of ['/ui', timeline(renamed), `${timeline(renamed)}/raw`, missing]) {
      const { page, response, events, stylesheet } = await visit(path);
      expect([path, response.status(), response.headers()['content-security-policy']]).toEqual([
        path,
        path === missing ? 404 : 200,
        CONTENT_SECURITY_POLICY,
      ]);
      const css = stylesheet();
      expect([css?.status(), css?.headers()['content-type']]).toEqual([200, 'text/css; charset=utf-8']);
      // Applied: the stylesheet takes the body's margin (8px by default) to 0, and it is the page's only one.
      const applied = await page
        .locator('body')
        .evaluate((body) => [body.ownerDocument.defaultView!.getComputedStyle(body).margin, body.ownerDocument.styleSheets.length]);
      expect(applied).toEqual(['0px', 1]);
      // The one message: Chromium saying the page itself answered 404.
      const notFound = `console error: Failed to load resource: the server responded with a status of 404 (Not Found) (${base}${missing})`;
      expect(events).toEqual(path === missing ? [notFound] : []);
      await page.close();
    }
  });

  it('filters the inventory through its form', async () => {
    const { page, events } = await visit('/ui');
    expect(await page.locator('#count').innerText()).toBe(`${GENERATED.length + 2} live images match`);
    await page.locator('input[name="q"]').fill('bm-');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL((url) => url.searchParams.get('q') === 'bm-');
    const bareMetal = generatedInOrder((name) => name.startsWith('bm-'));
    expect(bareMetal).toHaveLength(12);
    expect(await inventoryIds(page)).toEqual(bareMetal);
    expect(await page.locator('#count').innerText()).toBe('12 live images match');
    expect(await page.locator('input[name="q"]').inputValue()).toBe('bm-');
    expect(events).toEqual([]);
    await page.close();
  });

  // project alone is found by the planner's plan (the primary key); with kind too, by walking the name index.
  it.each(['/ui?project=1', '/ui?project=1&kind=ordinary'])(
    'pages through more than 50 images with its next link, with no gap and no repeat: %s',
    async (path) => {
      const { page, events } = await visit(path);
      const pages: string[][] = [await inventoryIds(page)];
      while ((await page.locator('#next').count()) === 1) {
        const before = page.url();
        await page.locator('#next').click();
        await page.waitForURL((url) => url.href !== before);
        expect(await page.locator('#count').innerText()).toBe(`${GENERATED.length} live images match (showing a later page)`);
        pages.push(await inventoryIds(page));
      }
      expect(pages.map((ids) => ids.length)).toEqual([50, 50, 20]);
      expect(pages.flat()).toEqual(generatedInOrder());
      expect(events).toEqual([]);
      await page.close();
    },
  );

  it('compares two versions chosen in the form', async () => {
    const versions = await pipeline.services.sql<{ id: string }[]>`
      SELECT id::text FROM image_versions WHERE (project_id, region_id, image_id) = (2, 1, ${renamed.imageId}) ORDER BY valid_from, id`;
    expect(versions).toHaveLength(3);
    const [first, , last] = versions.map((v) => v.id);
    const { page, events } = await visit(timeline(renamed));
    await page.locator('select[name="a"]').selectOption(first!);
    await page.locator('select[name="b"]').selectOption(last!);
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL((url) => url.pathname === `${timeline(renamed)}/diff`);
    expect(new URL(page.url()).search).toBe(`?a=${first}&b=${last}`);
    const rows = await page
      .locator('#diff tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => [td.className, td.innerText])));
    const field = (name: string) => rows.find((cells) => cells[0]![1] === name);
    expect(field('name')).toEqual([
      ['field', 'name'],
      ['old', ORIGINAL_NAME],
      ['new', NEW_NAME],
    ]);
    expect(field('tags.team')).toEqual([
      ['field', 'tags.team'],
      ['old', JSON.stringify({ value: 'platform', read_only: false })],
      ['new', JSON.stringify({ value: 'data', read_only: false })],
    ]);
    expect(rows.map((cells) => cells[0]![1])).toEqual(['name', 'updated_at', 'tags.team']);
    expect(events).toEqual([]);
    await page.close();
  });
});
