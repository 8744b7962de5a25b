// The queues, job schedulers, request timelines and records on a Redis
// Cluster (REDIS_CLUSTER_NODES): three masters with a replica each, started by
// this file on spare ports. Two workers sync 300 images of two accounts at 25
// requests a second each (50 together), while one shard's master hands over to
// its replica (CLUSTER FAILOVER): no script or command crosses a slot, each
// account's keys are on a slot and master of their own, nothing is lost and no
// version is stored twice.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_ACCOUNT } from '../src/config/accounts.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { clusterKeys } from '../src/queues/redis-keys.js';
import { openServices } from '../src/queues/services.js';
import { getRun } from '../src/sql/getRun.js';
import type { ManualRun } from '../src/work/manual-sync.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { throwawayRedisCluster, type ThrowawayCluster } from './support/redis-cluster.js';
import { sparePort, waitFor } from './support/throwaway.js';

// A prefix of its own cluster's, fixed so that where its keys land is known: {gis-cluster:prod} hashes to
// slot 1475 (the first master's), {gis-cluster:staging} to 6270 (the second's), {gis-cluster} to 13377 (the third's).
const PREFIX = 'gis-cluster';
const KEYS = clusterKeys(PREFIX);
const ACCOUNTS = ['prod', 'staging'] as const;
const PER_ACCOUNT = 150;
const RATE = 25;
const TOTAL = PER_ACCOUNT * ACCOUNTS.length;

const images = (projectId: number): Triple[] =>
  Array.from({ length: PER_ACCOUNT }, (_, n) => ({ projectId, regionId: 7, imageId: sampleImageId(projectId * 1000 + n) }));
const TRIPLES = { prod: images(1), staging: images(2) };

let cluster: ThrowawayCluster;
let env: TestEnv;
let fake: FakeGcore;
const workers: Pipeline[] = [];

beforeAll(async () => {
  cluster = await throwawayRedisCluster();
  env = await createTestEnv();
  const keys = { GCORE_API_KEY_PROD: 'prod-key', GCORE_API_KEY_STAGING: 'staging-key' };
  fake = new FakeGcore({
    accounts: { prod: { apiKey: keys.GCORE_API_KEY_PROD, projects: [1] }, staging: { apiKey: keys.GCORE_API_KEY_STAGING, projects: [2] } },
  });
  for (const triple of [...TRIPLES.prod, ...TRIPLES.staging]) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const targets = ACCOUNTS.map(
    (account, n) =>
      `  - { account: ${account}, project_id: ${n + 1}, region_id: 7, image_ids: [${TRIPLES[account].map((t) => t.imageId).join(', ')}] }`,
  );
  const yaml = `${QUIET_SCHEDULE}
accounts:
  prod: { api_key_env: GCORE_API_KEY_PROD, rate_limit_per_second: ${RATE} }
  staging: { api_key_env: GCORE_API_KEY_STAGING, rate_limit_per_second: ${RATE} }
targets:
${targets.join('\n')}
`;
  // The suite's single Redis is not used: REDIS_URL and REDIS_CLUSTER_NODES together are refused.
  const settings = { ...keys, REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.seeds, QUEUE_PREFIX: PREFIX, SYNC_BATCH_SIZE: '10' };
  // Two workers, each with connections of its own, as two processes have.
  for (let n = 0; n < 2; n++) workers.push(await startPipeline(env, fake.url, yaml, { env: settings }));
}, 120_000);

afterAll(async () => {
  for (const worker of workers) await worker.close();
  await fake?.stop();
  await env?.cleanup();
  await cluster?.stop();
});

/** The refreshes of `run` done so far (stored or found unchanged). */
async function done(run: ManualRun): Promise<number> {
  const progress = await getRun(workers[0]!.services.sql, run.id);
  return (progress?.changed ?? 0) + (progress?.unchanged ?? 0);
}

/**
 * A manual sync of every image, during which the master serving `account`'s
 * queues and timeline hands its slots to its replica; returns the run's end and
 * how many refreshes were done when the replica had taken over.
 */
async function syncThroughFailover(account: string) {
  fake.resetStats();
  const [{ services }] = workers as [Pipeline];
  const run = await workers[0]!.startSync();
  await waitFor('a tenth of the refreshes', async () => (await done(run)) >= TOTAL / 10);
  const { replica } = await cluster.shardOf(KEYS.queuePrefix(account));
  await cluster.failover(replica);
  const doneAtFailover = await done(run);
  const end = await workers[0]!.waitForRun(run, 120_000);
  await cluster.settle();
  expect(await invariantViolations(services.sql, services.queues)).toEqual([]);
  return { end, doneAtFailover, newMaster: replica };
}

/** Requests the fake API answered, by the second they arrived in: each account's, and both together. */
function requestsPerSecond() {
  const byAccount = ACCOUNTS.map((account) => fake.requestsPerSecondByAccount.get(account) ?? new Map<number, number>());
  const together = new Map<number, number>();
  for (const seconds of byAccount) for (const [second, n] of seconds) together.set(second, (together.get(second) ?? 0) + n);
  return { byAccount: byAccount.map((seconds) => [...seconds.values()]), together: [...together.values()] };
}

const refreshLines = (worker: Pipeline) => worker.logLines.filter((line) => line.includes('"msg":"refresh"')).length;

it('two workers sync 300 images through a failover: all stored once, at most 50 requests a second, no CROSSSLOT', async () => {
  const { end, doneAtFailover, newMaster } = await syncThroughFailover('prod');
  expect(end).toMatchObject({ status: 'finished', planned: TOTAL, changed: TOTAL, created: TOTAL, unchanged: 0, failed: 0 });
  // The failover happened in the middle of the run, and the replica serves prod's slot now.
  expect(doneAtFailover).toBeLessThan(TOTAL);
  expect((await cluster.shardOf(KEYS.queuePrefix('prod'))).master).toBe(newMaster);
  const { sql } = workers[0]!.services;
  expect(await sql`SELECT account, count(*)::int AS images FROM images GROUP BY 1 ORDER BY 1`).toEqual(
    ACCOUNTS.map((account) => ({ account, images: PER_ACCOUNT })),
  );
  expect(
    await sql`SELECT versions, count(*)::int AS images FROM (SELECT count(*)::int AS versions FROM image_versions GROUP BY project_id, region_id, image_id) v GROUP BY 1`,
  ).toEqual([{ versions: 1, images: TOTAL }]);
  const { byAccount, together } = requestsPerSecond();
  expect(byAccount.map((seconds) => seconds.reduce((a, b) => a + b, 0))).toEqual([PER_ACCOUNT, PER_ACCOUNT]);
  for (const seconds of byAccount) expect(Math.max(...seconds)).toBeLessThanOrEqual(RATE);
  expect(Math.max(...together)).toBeLessThanOrEqual(2 * RATE);
  // Both workers took jobs.
  expect(workers.map(refreshLines).every((n) => n > 0)).toBe(true);
  // Every worker marks its store as a cluster, which a worker on one Redis would not be taken for.
  expect(await sql`SELECT DISTINCT kind FROM queue_store_marks`).toEqual([{ kind: 'redis-cluster' }]);
  expect(await cluster.errorCount('CROSSSLOT')).toBe(0);
  expect(workers.flatMap((worker) => worker.logLines).filter((line) => line.includes('CROSSSLOT'))).toEqual([]);
}, 180_000);

it("puts each account's queues and timeline on a slot of its own, the accounts on different masters", async () => {
  // The deployment-wide tag (schedule queue, registry, records), the two accounts', and the implied account's,
  // whose queues every process opens.
  const tags = [undefined, ...ACCOUNTS, DEFAULT_ACCOUNT].map((account) => KEYS.queuePrefix(account));
  expect(tags).toEqual(['{gis-cluster}', '{gis-cluster:prod}', '{gis-cluster:staging}', '{gis-cluster:default}']);
  const written = await cluster.keys('');
  const under = (tag: string) => written.filter((key) => key.startsWith(`${tag}:`));
  expect(written.filter((key) => !tags.some((tag) => key.startsWith(`${tag}:`)))).toEqual([]);
  const slots = [];
  for (const tag of tags) slots.push([...new Set(await Promise.all(under(tag).map((key) => cluster.slotOf(key))))]);
  expect(slots).toEqual([[13377], [1475], [6270], [6938]]);
  // The two keys the timeline's script takes together are on its account's slot.
  for (const [n, account] of ACCOUNTS.entries()) {
    const { next, pause } = KEYS.timeline(account);
    expect([await cluster.slotOf(next), await cluster.slotOf(pause)]).toEqual([slots[n + 1]![0], slots[n + 1]![0]]);
  }
  const masters = [];
  for (const tag of tags.slice(0, 3)) masters.push((await cluster.shardOf(tag)).master);
  expect(new Set(masters).size).toBe(3);
  // The records other processes read are found on whichever master holds them.
  const { backend, deployment } = workers[0]!.services;
  expect(await backend.liveDeployments()).toEqual([deployment]);
  const rejection = { account: 'prod', at: new Date().toISOString(), worker: 'w1', hostname: 'h', pid: 1 };
  const held = backend.holdKeyRejection(rejection, (error) => expect.fail(error.message));
  await waitFor('the record to be written', async () => (await backend.keyRejections()).length === 1);
  expect(await backend.keyRejections()).toEqual([rejection]);
  expect(await cluster.keys('{gis-cluster}:key-rejected:')).toEqual(['{gis-cluster}:key-rejected:h:1:w1:prod']);
  await held.release();
  expect(await backend.keyRejections()).toEqual([]);
  expect(written).toEqual(
    expect.arrayContaining([
      '{gis-cluster}:deployments',
      '{gis-cluster}:image-schedule:repeat',
      '{gis-cluster:prod}:image-refresh.prod:meta',
    ]),
  );
});

it('a second sync through a failover of the other account stores one new version of each changed image, none twice', async () => {
  for (const triple of [...TRIPLES.prod, ...TRIPLES.staging]) fake.updateImage(triple, { name: `renamed-${triple.imageId}` });
  const { end, doneAtFailover } = await syncThroughFailover('staging');
  expect(end).toMatchObject({ status: 'finished', planned: TOTAL, changed: TOTAL, created: 0, unchanged: 0, failed: 0 });
  expect(doneAtFailover).toBeLessThan(TOTAL);
  const { sql } = workers[0]!.services;
  expect(
    await sql`SELECT versions, count(*)::int AS images FROM (SELECT count(*)::int AS versions FROM image_versions GROUP BY project_id, region_id, image_id) v GROUP BY 1`,
  ).toEqual([{ versions: 2, images: TOTAL }]);
  const { byAccount, together } = requestsPerSecond();
  for (const seconds of byAccount) expect(Math.max(...seconds)).toBeLessThanOrEqual(RATE);
  expect(Math.max(...together)).toBeLessThanOrEqual(2 * RATE);
  expect(await cluster.errorCount('CROSSSLOT')).toBe(0);
}, 180_000);

it('fails at once, naming the seeds and never the password, when no seed answers', async () => {
  const port = await sparePort();
  const config = env.config({ REDIS_URL: '', REDIS_CLUSTER_NODES: `127.0.0.1:${port}`, REDIS_CLUSTER_PASSWORD: 'pw$secret' });
  const failure = await openServices(config).then(
    () => undefined,
    (error: Error) => error.message,
  );
  expect(failure).toBe(`Redis at 127.0.0.1:${port} (REDIS_CLUSTER_NODES) did not answer: Connection is closed.`);
});
