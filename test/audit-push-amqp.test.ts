// Audit-log pushes over AMQP end to end: a real worker process (the built
// CLI), a RabbitMQ node of the test's own on spare ports (restarted mid-test),
// the fake Gcore API publishing each new entry to the exchange it was
// subscribed with. Polling is every 600 s, so a change attributed within the
// test's wait came by the broker.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { amqpQueueName } from '../src/audit-log/amqp-push.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { startRabbitNode, type RabbitNode } from './support/rabbit-node.js';
import { sparePort, waitFor } from './support/throwaway.js';

const images: Triple[] = [1, 2].map((n) => ({ projectId: 1, regionId: 7, imageId: sampleImageId(n) }));
const alice = { email: 'alice@example.com' };
const EXCHANGE = `gis-audit-${randomBytes(3).toString('hex')}`;

let env: TestEnv;
let fake: FakeGcore;
let broker: RabbitNode;
let sql: postgres.Sql;
let settings: Record<string, string>;
let worker: RunningCli | undefined;

beforeAll(async () => {
  [env, broker] = await Promise.all([createTestEnv({ migrate: false }), startRabbitNode()]);
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of images) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const file = await writeTargetsFile(`schedule: { every: 1h }
accounts:
  default:
    api_key_env: GCORE_API_KEY
    audit_push_amqp: { broker_url_env: AUDIT_AMQP_URL, exchange: ${EXCHANGE}, routing_key: user-actions }
targets:
  - { project_id: 1, region_id: 7, image_ids: [${images.map((t) => t.imageId).join(', ')}] }
`);
  settings = {
    ...env.env,
    TARGETS_FILE: file,
    GCORE_BASE_URL: fake.url,
    AUDIT_LOG_POLL_SECONDS: '600',
    AUDIT_AMQP_URL: broker.url,
  };
  const first = await runCli(['sync', '--wait'], { ...settings, AUDIT_LOG_POLL_SECONDS: '0' });
  expect(first.code, first.stderr).toBe(0);
  sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await sql?.end();
  await fake?.stop();
  await broker?.remove();
  await env?.cleanup();
});

async function nameChanges(triple: Triple): Promise<Array<{ new_value: unknown; actor_email: string | null }>> {
  return sql<Array<{ new_value: unknown; actor_email: string | null }>>`
    SELECT new_value, actor_email FROM image_change_log
    WHERE (project_id, region_id, image_id) = (${triple.projectId}, ${triple.regionId}, ${triple.imageId}) AND field = 'name'
    ORDER BY id`;
}

async function brokerProblem(): Promise<{ problem: string | null } | undefined> {
  const [row] = await sql<{ problem: string | null }[]>`
    SELECT broker_problem AS problem FROM audit_push WHERE account = 'default' AND kind = 'amqp'`;
  return row;
}

it('subscribes the account to its broker, puts a pushed rename down to who made it, and does so again after the broker restarts', async () => {
  const metricsPort = await sparePort();
  worker = startCli(['worker'], { ...settings, HTTP_PORT: String(metricsPort) });
  await waitFor('the AMQP subscription', () => fake.subscriptionsOf('default').amqp.length === 1, 60_000);
  expect(fake.subscriptionsOf('default').amqp).toEqual([
    expect.objectContaining({ connection_string: broker.url, exchange: EXCHANGE, routing_key: 'user-actions' }),
  ]);
  // The worker's queue is bound: a message published now reaches it.
  await waitFor(
    'the queue',
    async () => (await broker.ctl('list_queues', 'name')).includes(amqpQueueName(env.queuePrefix, 'default')),
    60_000,
  );
  await waitFor('the consumer', async () => (await brokerProblem())?.problem === null, 60_000);
  const [one, two] = images as [Triple, Triple];
  fake.renameImageAs(alice, one, 'pushed-over-amqp');
  await waitFor('the rename, put down to alice', async () => (await nameChanges(one)).length === 1, 60_000);
  expect(await nameChanges(one)).toEqual([{ new_value: 'pushed-over-amqp', actor_email: 'alice@example.com' }]);

  await broker.stop();
  await waitFor('the broker, said to be away', async () => ((await brokerProblem())?.problem ?? '') !== '', 60_000);
  const ready = (await (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).json()) as { audit_push?: Record<string, string> };
  expect(Object.values(ready.audit_push ?? {}).join()).toContain('broker away since');
  const status = await runCli(['status'], settings);
  expect(status.stderr + status.stdout).toContain('audit-log push (amqp)');
  expect(status.stderr + status.stdout).toContain('broker away since');
  expect(status.stderr + status.stdout).not.toContain('guest:guest');

  await broker.start();
  await waitFor('the consumer, back', async () => (await brokerProblem())?.problem === null, 120_000);
  fake.renameImageAs(alice, two, 'pushed-after-restart');
  await waitFor('the second rename, put down to alice', async () => (await nameChanges(two)).length === 1, 60_000);
  expect(await nameChanges(two)).toEqual([{ new_value: 'pushed-after-restart', actor_email: 'alice@example.com' }]);
  // A message published twice wakes twice, and the change is still stored once.
  fake.setPushFault({ mode: 'duplicate' });
  fake.renameImageAs(alice, one, 'published-twice');
  await waitFor('the third rename', async () => (await nameChanges(one)).length === 2, 60_000);
  fake.setPushFault({ mode: 'deliver' });
  expect((await nameChanges(one)).at(-1)).toEqual({ new_value: 'published-twice', actor_email: 'alice@example.com' });
  expect(fake.pushStats().amqp.sent).toBeGreaterThanOrEqual(4);
  expect(worker.stdout() + worker.stderr()).not.toContain('guest:guest');

  // An hour on, the check finds the subscription in place (its connection string is one this deployment sent): no second one.
  const subscribed = fake.subscriptionsOf('default').amqp;
  const lists = fake.requestsByEndpoint['user_actions/amqp_subscriptions_list'] ?? 0;
  await sql`UPDATE audit_push SET checked_at = now() - interval '2 hours' WHERE account = 'default' AND kind = 'amqp'`;
  fake.renameImageAs(alice, one, 'pushed-at-the-check');
  await waitFor('the third rename', async () => (await nameChanges(one)).length === 2, 60_000);
  await waitFor('the check', async () => {
    const [row] = await sql<{ recent: boolean }[]>`
      SELECT checked_at > now() - interval '1 hour' AS recent FROM audit_push WHERE account = 'default' AND kind = 'amqp'`;
    return row?.recent === true;
  });
  expect(fake.requestsByEndpoint['user_actions/amqp_subscriptions_list']).toBeGreaterThan(lists);
  expect(fake.subscriptionsOf('default').amqp).toEqual(subscribed);
  expect(fake.requestsByEndpoint['user_actions/unsubscribe_amqp'] ?? 0).toBe(0);
}, 300_000);
