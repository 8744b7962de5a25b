// The README's picture of the web view (`npm run screenshot:ui`): an image's
// timeline after the real pipeline stored it from the fake API, alice renamed
// it and bob retagged it (the audit-log follower naming each), as headless
// Chromium shows it. Everything it makes (a throwaway database, the fake API,
// a worker, an HTTP server) is removed again; only the PNG stays.
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { IMPLIED_ACCOUNT } from '../src/config/accounts.js';
import { loadConfig } from '../src/config/config.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { createThrowawayDatabase } from '../src/db/throwaway-database.js';
import { demoImages, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { startHttpServer } from '../src/ops/http-server.js';
import { createLogger } from '../src/ops/logger.js';
import { createMetrics } from '../src/ops/metrics.js';
import { openServices } from '../src/queues/services.js';
import { listChanges } from '../src/sql/listChanges.js';
import { replaceTargets } from '../src/sql/replaceTargets.js';
import { uiAccess } from '../src/ui/ui-access.js';
import { createUi } from '../src/ui/ui-server.js';
import { startManualSync, waitForRun } from '../src/work/manual-sync.js';
import { startWorker } from '../src/work/worker.js';
import { launchChromium } from '../test/support/chromium.js';
import { waitFor } from '../test/support/throwaway.js';

/** Relative to where it runs: npm runs scripts in the package's root. */
const OUTPUT = resolve(process.argv[2] ?? 'docs/images/ui-timeline.png');
const API_KEY = 'screenshot-key';
/** The page's width; the picture is as tall as the whole page. */
const WIDTH = 1200;

/** Undo steps, run newest first, whatever happened. */
const undo: Array<() => Promise<unknown>> = [];

async function takeScreenshot(): Promise<void> {
  const logger = createLogger('warn');
  const database = await createThrowawayDatabase(
    loadConfig({ DATABASE_URL: process.env.DATABASE_URL }).databaseUrl,
    'gcore-image-sync-screenshot',
  );
  undo.push(() => database.release(false));
  const fake = new FakeGcore({ apiKey: API_KEY });
  for (const [triple, image] of demoImages()) fake.putImage(triple, image);
  const url = await fake.start();
  undo.push(() => fake.stop());
  const config = loadConfig({
    ...database.env,
    GCORE_BASE_URL: url,
    GCORE_API_KEY: API_KEY,
    SYNC_RATE_LIMIT_PER_SECOND: '0',
    // The follower reads who made each change every second, so the picture need not wait a minute for it.
    AUDIT_LOG_POLL_SECONDS: '1',
  });
  const services = await openServices(config, 'throwaway');
  undo.push(() => services.close());
  const entries = demoImages().map(([t]) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
  const file = parseTargetsFile(`schedule: { cron: "0 0 1 1 *", tz: UTC }\ntargets:\n${entries.join('\n')}\n`, 'screenshot');
  await replaceTargets(services.sql, file.targets, file.scopes, file.accounts);
  const worker = startWorker({ config, accounts: [{ ...IMPLIED_ACCOUNT, apiKey: API_KEY }], logger, ...services });
  undo.push(() => worker.close());
  const run = await startManualSync(services.sql, services.queues, config.batchSize);
  await waitForRun(services.sql, services.queues, run, null, { batchSize: config.batchSize, pollMs: 100, logger });

  const since = new Date();
  const namedBy = (field: string) => async () =>
    (await listChanges(services.sql, { since, field, limit: 10 })).some((change) => change.actor_email !== null);
  fake.renameImageAs({ email: 'alice@example.com' }, SAMPLE_TRIPLE, 'ubuntu-22.04-x64-hardened');
  await waitFor('the rename, put down to alice', namedBy('name'));
  fake.tagImageAs({ email: 'bob@example.com' }, SAMPLE_TRIPLE, 'team', 'data');
  await waitFor('the retag, put down to bob', namedBy('tags.team'));

  const http = await startHttpServer(
    { host: config.httpHost, port: 0 },
    {
      sql: services.sql,
      backend: services.backend,
      metrics: createMetrics(services.queues, services.sql),
      ui: createUi({ sql: services.sql, access: uiAccess(config.ui, config.httpHost), logger }),
    },
  );
  undo.push(() => http.close());
  const browser = await launchChromium();
  undo.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: WIDTH, height: 800 }, colorScheme: 'light' });
  const { projectId, regionId, imageId } = SAMPLE_TRIPLE;
  const response = await page.goto(`http://${config.httpHost}:${http.port}/ui/images/${projectId}/${regionId}/${imageId}`);
  if (response?.status() !== 200) throw new Error(`the timeline answered ${response?.status()}`);
  await mkdir(dirname(OUTPUT), { recursive: true });
  await page.screenshot({ path: OUTPUT, fullPage: true });
  process.stdout.write(`ui-screenshot: wrote ${OUTPUT}, the whole page ${WIDTH} px wide\n`);
}

try {
  await takeScreenshot();
} finally {
  for (const step of undo.reverse())
    await step().catch((error: Error) => process.stderr.write(`ui-screenshot: cleaning up: ${error.message}\n`));
}
