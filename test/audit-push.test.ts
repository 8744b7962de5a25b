// Audit-log pushes end to end: real worker processes (the built CLI), the real
// Postgres and queue store, the fake Gcore API. Polling is every 600 s here, on
// an hourly schedule, so a change put down to who made it within the test's
// wait came by the push.
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { openServices } from '../src/queues/services.js';
import { writeTargetsFile } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';

const SECRET = 'push-secret-0123456789abcdef0123456789';
const PATH = '/gcore/audit-push';
const images: Triple[] = [1, 2, 3].map((n) => ({ projectId: 1, regionId: 7, imageId: sampleImageId(n) }));
const alice = { email: 'alice@example.com' };

let env: TestEnv;
let fake: FakeGcore;
let sql: postgres.Sql;
let settings: Record<string, string>;
/** The port the push URL names (the first worker's receiver). */
let pushPort: number;
const running: RunningCli[] = [];

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of images) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const file = await writeTargetsFile(`schedule: { every: 1h }
targets:
  - { project_id: 1, region_id: 7, image_ids: [${images.map((t) => t.imageId).join(', ')}] }
`);
  pushPort = await sparePort();
  settings = {
    ...env.env,
    TARGETS_FILE: file,
    GCORE_BASE_URL: fake.url,
    AUDIT_LOG_POLL_SECONDS: '600',
    AUDIT_PUSH_URL: `http://127.0.0.1:${pushPort}${PATH}`,
    AUDIT_PUSH_SECRET: SECRET,
  };
  // The images are stored before anything is logged, by a sync that does not follow the log.
  const first = await runCli(['sync', '--wait'], { ...settings, AUDIT_LOG_POLL_SECONDS: '0', AUDIT_PUSH_URL: '', AUDIT_PUSH_SECRET: '' });
  expect(first.code, first.stderr).toBe(0);
  sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((worker) => worker.stop()));
});

afterAll(async () => {
  await sql?.end();
  await fake?.stop();
  await env?.cleanup();
});

/** A worker process receiving pushes on `receiverPort`, serving /metrics on a port of its own. */
async function worker(receiverPort: number): Promise<{ cli: RunningCli; metricsPort: number; receiverPort: number }> {
  const metricsPort = await sparePort();
  const cli = startCli(['worker'], { ...settings, AUDIT_PUSH_PORT: String(receiverPort), HTTP_PORT: String(metricsPort) });
  running.push(cli);
  await waitFor('the worker to receive pushes', () => cli.stdout().includes('"msg":"receiving audit-log pushes"'), 60_000);
  return { cli, metricsPort, receiverPort };
}

/** Gcore's push as the receiver sees it; the body is never read as the record. */
function push(port: number, authorization = `Bearer ${SECRET}`, body = '{"action_type":"update"}'): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${PATH}`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body });
}

/** How many polls have read the log to its end so far: polled_at moves with each. */
async function polledAt(): Promise<string | null> {
  const [row] = await sql<{ polled_at: string | null }[]>`SELECT polled_at::text FROM audit_log_cursors WHERE account = 'default'`;
  return row?.polled_at ?? null;
}

async function attributedNames(triple: Triple): Promise<Array<{ new_value: unknown; actor_email: string | null }>> {
  return sql<Array<{ new_value: unknown; actor_email: string | null }>>`
    SELECT new_value, actor_email FROM image_change_log
    WHERE (project_id, region_id, image_id) = (${triple.projectId}, ${triple.regionId}, ${triple.imageId}) AND field = 'name'
    ORDER BY id`;
}

async function wakeups(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^image_sync_audit_wakeups_total\{account="default"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

describe('audit-log pushes', () => {
  it('a rename is put down to who made it at the push, long before the 600 s poll, whichever of two processes the push reaches', async () => {
    const a = await worker(pushPort);
    const b = await worker(await sparePort());
    // Both have started following: the first poll of the account has read the log to its end.
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const firstPoll = await polledAt();
    const [image] = images;
    fake.renameImageAs(alice, image!, 'golden-pushed');
    const sent = Date.now();
    // The push reaches the process that does not serve the URL's port, as a load balancer may send it.
    const answer = await push(b.receiverPort);
    expect(answer.status).toBe(204);
    await waitFor('the rename, put down to alice', async () => (await attributedNames(image!)).length === 1, 60_000);
    const took = Date.now() - sent;
    expect(await attributedNames(image!)).toEqual([{ new_value: 'golden-pushed', actor_email: 'alice@example.com' }]);
    expect(took).toBeLessThan(600_000);
    // Read by a poll the push made due, not the scheduled one 600 s on; both processes were woken.
    expect(await polledAt()).not.toBe(firstPoll);
    expect(await wakeups(a.metricsPort)).toBeGreaterThanOrEqual(1);
    expect(await wakeups(b.metricsPort)).toBeGreaterThanOrEqual(1);
    const services = await openServices(env.config());
    try {
      expect(await invariantViolations(services.sql, services.queues)).toEqual([]);
    } finally {
      await services.close();
    }
    console.log(`push to attributed change: ${took} ms`);
  });

  it('a push with a wrong or missing header gets 401, is counted, and reads nothing', async () => {
    await worker(pushPort);
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const reads = fake.requestsByEndpoint.user_actions!;
    expect((await push(pushPort, 'Bearer wrong-secret')).status).toBe(401);
    expect((await push(pushPort, '')).status).toBe(401);
    expect((await push(pushPort, SECRET)).status).toBe(401);
    await waitFor('the refusals counted', async () => {
      const [row] = await sql<
        { n: number }[]
      >`SELECT pushes_refused::int AS n FROM audit_push WHERE account = 'default' AND kind = 'webhook'`;
      return row?.n === 3;
    });
    expect(fake.requestsByEndpoint.user_actions).toBe(reads);
    const status = await runCli(['status'], settings);
    expect(status.stderr + status.stdout).toContain('3 refused');
  });

  it('a burst of 100 pushes within a second costs at most a few reads of the log', async () => {
    await worker(pushPort);
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const reads = fake.requestsByEndpoint.user_actions!;
    const answers = await Promise.all(Array.from({ length: 100 }, () => push(pushPort)));
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(204));
    const before = await polledAt();
    await waitFor('a poll after the burst', async () => (await polledAt()) !== before, 60_000);
    // Settled: no read is due any more (the next is 600 s on).
    await waitFor(
      'the reads to settle',
      async () => {
        const [row] = await sql<{ pending: boolean }[]>`
        SELECT wake_requested_at > polled_at AS pending FROM audit_log_cursors WHERE account = 'default'`;
        return row?.pending === false;
      },
      60_000,
    );
    const extra = fake.requestsByEndpoint.user_actions! - reads;
    expect(extra).toBeGreaterThanOrEqual(1);
    expect(extra).toBeLessThanOrEqual(3);
  });
});
