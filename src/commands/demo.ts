import { changeTable } from '../change-table.js';
import { loadConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { contractImage, demoImages, SAMPLE_TRIPLE, sampleImageId } from '../fake-gcore/fixtures.js';
import { FakeGcore } from '../fake-gcore/server.js';
import { createLogger } from '../logger.js';
import { startManualSync, waitForRun } from '../manual-sync.js';
import { openServices } from '../services.js';
import { countOtherTargets } from '../sql/countOtherTargets.js';
import { listChanges } from '../sql/listChanges.js';
import { replaceTargets } from '../sql/replaceTargets.js';
import { parseTargetsFile, type TargetsFile } from '../targets.js';
import type { Triple } from '../interfaces.js';
import { runListings } from '../sql/runListings.js';
import { startWorker } from '../worker.js';
import { IMPLIED_ACCOUNT } from '../accounts.js';
import type { CommandContext } from './context.js';

const DEMO_KEY = 'demo-key';
/** Where the demo's discovery scope looks: images nobody listed by id. */
const SCOPE = { projectId: 2, regionId: 76 };
const discovered = (n: number): Triple => ({ ...SCOPE, imageId: sampleImageId(100 + n) });

/** The demo's targets file: the sample images by id, and one region discovered. */
function demoTargets(triples: Triple[]): TargetsFile {
  const explicit = triples.map((t) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
  const scope = `  - { project_id: ${SCOPE.projectId}, region_id: ${SCOPE.regionId}, discover: { baremetal: false } }`;
  return parseTargetsFile(`targets:\n${[...explicit, scope].join('\n')}\n`, 'demo');
}

/**
 * The product end to end without a Gcore account: a fake API with sample
 * images and a region to discover, a sync, a rename, a tag change, a
 * deletion, a new and a deleted image in the discovered region, a second
 * sync (which confirms the deletion with a GET), and the change log they left. Uses DATABASE_URL and REDIS_URL (local defaults),
 * and refuses a database that already tracks other images.
 */
export async function demoCommand({ print }: CommandContext): Promise<number> {
  const images = demoImages();
  const fake = new FakeGcore({ apiKey: DEMO_KEY });
  for (const [triple, image] of images) fake.putImage(triple, image);
  for (const n of [1, 2, 3]) fake.putImage(discovered(n), contractImage(discovered(n), { name: `web-${n}` }));
  const url = await fake.start();
  // The fake's open socket would keep the process alive after any error below.
  try {
    return await runDemo(fake, url, print);
  } finally {
    await fake.stop();
  }
}

async function runDemo(fake: FakeGcore, url: string, print: CommandContext['print']): Promise<number> {
  const images = demoImages();
  const base = loadConfig();
  const config = loadConfig({
    ...process.env,
    GCORE_BASE_URL: url,
    GCORE_API_KEY: DEMO_KEY,
    QUEUE_PREFIX: `${base.queuePrefix}-demo`,
    SYNC_RATE_LIMIT_PER_SECOND: '0',
  });
  // Refresh lines would bury the change log; LOG_LEVEL still shows them.
  const logger = createLogger(process.env.LOG_LEVEL?.trim() || 'warn');
  const services = await openServices(config);
  const triples = images.map(([triple]) => triple);
  try {
    const others = await countOtherTargets(services.sql, [...triples, ...[1, 2, 3, 4].map(discovered)]);
    if (others > 0) {
      throw new ConfigError('DATABASE_URL', [
        `already tracks ${others} images that are not the demo's: point the demo at an empty database`,
      ]);
    }
    const file = demoTargets(triples);
    await replaceTargets(services.sql, file.targets, file.scopes, file.accounts);
    const worker = startWorker({ config, accounts: [{ ...IMPLIED_ACCOUNT, apiKey: DEMO_KEY }], logger, ...services });
    const sync = async (label: string) => {
      const run = await startManualSync(services.sql, services.queues, config.batchSize);
      const done = await waitForRun(services.sql, services.queues, run, () => {}, { batchSize: config.batchSize, pollMs: 100, logger });
      print(`demo: ${label}: ${done.changed} changed, ${done.unchanged} unchanged, ${done.deleted} deleted, ${done.failed} failed`);
      for (const listing of await runListings(services.sql, run.id)) {
        print(
          `demo: ${label}: the scope's listing of project ${SCOPE.projectId}, region ${SCOPE.regionId} was ${listing.status}: ` +
            `${listing.listed} images listed, ${listing.absent} stored ones missing from it, each confirmed with a GET`,
        );
      }
    };
    try {
      const since = new Date();
      print(`demo: a fake Gcore API at ${url} serves ${images.length} sample images, listed by id, and 3 more that a scope discovers`);
      await sync('first sync');
      fake.updateImage(SAMPLE_TRIPLE, { name: 'ubuntu-22.04-x64-hardened' });
      fake.updateImage(
        { projectId: 1, regionId: 7, imageId: sampleImageId(1) },
        {
          tags: [
            { key: 'team', value: 'data', read_only: false },
            { key: 'os', value: 'ubuntu', read_only: true },
          ],
        },
      );
      fake.deleteImage({ projectId: 1, regionId: 7, imageId: sampleImageId(2) });
      fake.putImage(discovered(4), contractImage(discovered(4), { name: 'web-4' }));
      fake.deleteImage(discovered(1));
      print('demo: renamed one image, changed a tag on another, deleted a third; in the scope, added one and deleted one');
      await sync('second sync');
      const changes = await listChanges(services.sql, { since, limit: 100 });
      process.stdout.write(`${changeTable(changes)}\n`);
      return 0;
    } finally {
      await worker.close();
    }
  } finally {
    await services.close();
  }
}
