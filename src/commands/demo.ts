import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { IMPLIED_ACCOUNT } from '../config/accounts.js';
import { changeTable } from '../ops/change-table.js';
import { loadConfig, type Config } from '../config/config.js';
import type { Actor } from '../fake-gcore/audit-log.js';
import { contractImage, demoImages, SAMPLE_TRIPLE, sampleImageId } from '../fake-gcore/fixtures.js';
import { FakeGcore } from '../fake-gcore/server.js';
import type { Triple } from '../interfaces.js';
import { createLogger } from '../ops/logger.js';
import { startManualSync, waitForRun } from '../work/manual-sync.js';
import { openServices, type Services } from '../queues/services.js';
import { listChanges, type ChangeRow } from '../sql/listChanges.js';
import { replaceTargets } from '../sql/replaceTargets.js';
import { runListings } from '../sql/runListings.js';
import { parseTargetsFile, type TargetsFile } from '../config/targets.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../db/throwaway-database.js';
import { undoIfStopped } from '../ops/signals.js';
import { startWorker } from '../work/worker.js';
import type { CommandContext } from './context.js';

const DEMO_KEY = 'demo-key';
/** Names the demo's own database (a temporary folder, or a database on a server). */
const DATABASE_PREFIX = 'gcore-image-sync-demo';
/** Where the demo's discovery scope looks: images nobody listed by id. */
const SCOPE = { projectId: 2, regionId: 76 };
const discovered = (n: number): Triple => ({ ...SCOPE, imageId: sampleImageId(100 + n) });

/** The fake's users, whose actions its audit log names (example.com: a domain that is nobody's). */
const DEMO_USERS = {
  renames: 'alice@example.com',
  tags: 'bob@example.com',
  deletes: 'carol@example.com',
  scope: 'dave@example.com',
} as const;
const as = (email: string): Actor => ({ email });

/** The images the users change between the syncs: each gets change rows that name its user. */
const ACTED_IMAGES = 5;
/** The follower polls every second: a minute is far more than it takes on a busy machine, and ends a wait that would never end. */
const ATTRIBUTION_WAIT_MS = 60_000;
const ATTRIBUTION_POLL_MS = 100;

/** The demo's targets file: the sample images by id, and one region discovered. */
function demoTargets(triples: Triple[]): TargetsFile {
  const explicit = triples.map((t) => `  - { project_id: ${t.projectId}, region_id: ${t.regionId}, image_ids: [${t.imageId}] }`);
  const scope = `  - { project_id: ${SCOPE.projectId}, region_id: ${SCOPE.regionId}, discover: { baremetal: false } }`;
  return parseTargetsFile(`targets:\n${[...explicit, scope].join('\n')}\n`, 'demo');
}

/**
 * The demo's settings: its own database and fake API, and nothing else of the
 * environment (no REDIS_URL, TARGETS_FILE, webhook or key): its queues live in
 * its own database's queue store, and go with it.
 */
function demoConfig(database: ThrowawayDatabase, fakeUrl: string): Config {
  return loadConfig({
    ...database.env,
    GCORE_BASE_URL: fakeUrl,
    GCORE_API_KEY: DEMO_KEY,
    SYNC_RATE_LIMIT_PER_SECOND: '0',
    // The follower reads who made each change; every second, so the demo need not wait a minute for it.
    AUDIT_LOG_POLL_SECONDS: '1',
  });
}

/** Undo steps, run newest first, once: at the end, on failure, or on a signal. A step that fails is said, and the others still run. */
class Teardown {
  private readonly steps: Array<() => Promise<void>> = [];
  private running: Promise<void> | undefined;

  constructor(private readonly onError: (error: Error) => void) {}

  add(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) await step().catch(this.onError);
    })();
    return this.running;
  }
}

/**
 * The product end to end without a Gcore account, in a world of its own: a
 * throwaway database (removed afterwards unless --keep), a fake API with
 * sample images and a region to discover, a sync, a rename, a tag change, a
 * deletion, a new and a deleted image in the discovered region, each by a
 * user of the fake's audit log, the follower naming them, a second sync, and
 * the change log with who made each change.
 */
export async function demoCommand({ args, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { keep: { type: 'boolean', default: false } }, strict: true });
  const serverUrl = loadConfig({ DATABASE_URL: process.env.DATABASE_URL }).databaseUrl;
  const teardown = new Teardown((error) => print(`demo: while cleaning up: ${error.message}`));
  // A stop signal undoes what the demo made, then exits as the signal would (signals.ts); a second exits at once.
  const forget = undoIfStopped(async () => {
    print('demo: stopped: removing what it made');
    await teardown.run();
  });
  try {
    const database = await createThrowawayDatabase(serverUrl, DATABASE_PREFIX);
    teardown.add(async () => {
      await database.release(values.keep);
      print(
        values.keep
          ? `demo: kept its database, ${database.where}; look at it with:\n  ${database.lookCommands.join('\n  ')}`
          : 'demo: removed its database (--keep keeps it)',
      );
    });
    print(`demo: its own database: ${database.where}; its queues are in it (REDIS_URL and TARGETS_FILE are not used)`);
    const fake = demoFake();
    const url = await fake.start();
    teardown.add(() => fake.stop());
    const config = demoConfig(database, url);
    const services = await openServices(config, 'throwaway');
    teardown.add(() => services.close());
    return await runDemo(fake, config, services, teardown, print);
  } finally {
    await teardown.run();
    forget();
  }
}

/** The fake API: the sample images, and 3 more in the region the scope discovers. */
function demoFake(): FakeGcore {
  const fake = new FakeGcore({ apiKey: DEMO_KEY });
  for (const [triple, image] of demoImages()) fake.putImage(triple, image);
  for (const n of [1, 2, 3]) fake.putImage(discovered(n), contractImage(discovered(n), { name: `web-${n}` }));
  return fake;
}

/** What the fake's users do between the syncs, each action in its audit log. */
function actAsUsers(fake: FakeGcore): void {
  fake.renameImageAs(as(DEMO_USERS.renames), SAMPLE_TRIPLE, 'ubuntu-22.04-x64-hardened');
  fake.tagImageAs(as(DEMO_USERS.tags), { projectId: 1, regionId: 7, imageId: sampleImageId(1) }, 'team', 'data');
  fake.deleteImageAs(as(DEMO_USERS.deletes), { projectId: 1, regionId: 7, imageId: sampleImageId(2) });
  fake.createImageAs(as(DEMO_USERS.scope), discovered(4), contractImage(discovered(4), { name: 'web-4' }));
  fake.deleteImageAs(as(DEMO_USERS.scope), discovered(1));
}

/** How many images changed since `since` have a change that names who made it. */
function namedImages(rows: ChangeRow[]): number {
  return new Set(rows.filter((row) => row.actor_email !== null).map((row) => `${row.project_id}/${row.region_id}/${row.image_id}`)).size;
}

/** Resolves once `expected` images have a change since `since` that names who made it (the follower has read the audit log); fails after ATTRIBUTION_WAIT_MS. */
async function waitForAttribution(services: Services, since: Date, expected: number): Promise<void> {
  const deadline = Date.now() + ATTRIBUTION_WAIT_MS;
  for (;;) {
    const named = namedImages(await listChanges(services.sql, { since, limit: 100 }));
    if (named >= expected) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the audit-log follower named who changed ${named} of the ${expected} images within ${ATTRIBUTION_WAIT_MS / 1000} s (LOG_LEVEL=info shows what it did)`,
      );
    }
    await delay(ATTRIBUTION_POLL_MS);
  }
}

async function runDemo(fake: FakeGcore, config: Config, services: Services, teardown: Teardown, print: CommandContext['print']) {
  const images = demoImages();
  // Refresh lines would bury the change log; LOG_LEVEL still shows them.
  const logger = createLogger(process.env.LOG_LEVEL?.trim() || 'warn');
  const triples = images.map(([triple]) => triple);
  const file = demoTargets(triples);
  await replaceTargets(services.sql, file.targets, file.scopes, file.accounts);
  const worker = startWorker({ config, accounts: [{ ...IMPLIED_ACCOUNT, apiKey: DEMO_KEY }], logger, ...services });
  teardown.add(() => worker.close());
  const sync = async (label: string) => {
    const run = await startManualSync(services.sql, services.queues, config.batchSize);
    const done = await waitForRun(services.sql, services.queues, run, null, { batchSize: config.batchSize, pollMs: 100, logger });
    print(`demo: ${label}: ${done.changed} changed, ${done.unchanged} unchanged, ${done.deleted} deleted, ${done.failed} failed`);
    for (const listing of await runListings(services.sql, run.id)) {
      print(
        `demo: ${label}: the scope's listing of project ${SCOPE.projectId}, region ${SCOPE.regionId} was ${listing.status}: ` +
          `${listing.listed} images listed, ${listing.absent} stored ones missing from it, each confirmed with a GET`,
      );
    }
  };
  const since = new Date();
  print(`demo: a fake Gcore API at ${fake.url} serves ${images.length} sample images, listed by id, and 3 more that a scope discovers`);
  await sync('first sync');
  const changedAt = new Date();
  actAsUsers(fake);
  print(
    `demo: in the fake's audit log, ${DEMO_USERS.renames} renamed one image, ${DEMO_USERS.tags} changed a tag on another, ` +
      `${DEMO_USERS.deletes} deleted a third; in the scope, ${DEMO_USERS.scope} added one and deleted one`,
  );
  await waitForAttribution(services, changedAt, ACTED_IMAGES);
  print(
    `demo: the audit-log follower read those actions and refreshed the ${ACTED_IMAGES} images at once; their changes name who made them`,
  );
  await sync('second sync');
  process.stdout.write(`${changeTable(await listChanges(services.sql, { since, limit: 100 }))}\n`);
  return 0;
}
