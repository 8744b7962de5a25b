// Audit-log pushes end to end: real worker processes (the built CLI), the real
// Postgres and queue store, the fake Gcore API. Polling is every 600 s here, on
// an hourly schedule, so a change put down to who made it within the test's
// wait came by the push.
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PUSH_BYTES } from '../src/audit-log/push-receiver.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { openServices } from '../src/queues/services.js';
import { auditPollDue, releaseAuditLease, takeAuditLease } from '../src/sql/auditCursor.js';
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
  // The receiver's port opens first, then HTTP_PORT's (metrics, readiness): both are asked below.
  await waitFor(
    'the worker to receive pushes and serve its metrics',
    () => cli.stdout().includes('"msg":"receiving audit-log pushes"') && cli.stdout().includes('"msg":"serving /healthz'),
    60_000,
  );
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

async function pushesAccepted(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^image_sync_audit_pushes_total\{kind="webhook",outcome="accepted"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

async function wakeups(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^image_sync_audit_wakeups_total\{account="default"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

/** The readiness answer of a worker's HTTP server. */
async function readyz(metricsPort: number): Promise<{ api_key: string; audit_push?: Record<string, string> }> {
  return (await (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).json()) as { api_key: string; audit_push?: Record<string, string> };
}

async function nameChanges(triple: Triple): Promise<number> {
  return (await attributedNames(triple)).length;
}

describe('audit-log pushes', () => {
  it('two workers subscribe the client once, and a rename Gcore itself pushes is put down to who made it', async () => {
    await worker(pushPort);
    await worker(await sparePort());
    await waitFor('the subscription', () => fake.subscriptionsOf('default').webhooks.length > 0, 60_000);
    await waitFor('both workers to have checked it', async () => {
      const [row] = await sql<{ subscribed: boolean }[]>`SELECT subscribed FROM audit_push WHERE account = 'default' AND kind = 'webhook'`;
      return row?.subscribed === true;
    });
    expect(fake.subscriptionsOf('default').webhooks).toEqual([
      { id: 1, url: settings.AUDIT_PUSH_URL, auth_header_name: 'Authorization', auth_header_value: `Bearer ${SECRET}` },
    ]);
    const image = images[2]!;
    const sent = fake.pushStats().webhook.sent;
    fake.renameImageAs(alice, image, 'pushed-by-gcore');
    await waitFor('the rename, put down to alice', async () => (await nameChanges(image)) === 1, 60_000);
    expect(await attributedNames(image)).toEqual([{ new_value: 'pushed-by-gcore', actor_email: 'alice@example.com' }]);
    expect(fake.pushStats().webhook.sent).toBe(sent + 1);
    // The secret is Gcore's to send back; this deployment keeps none of it.
    const [dump] = await sql<{ text: string }[]>`SELECT concat_ws(' ', (SELECT json_agg(p)::text FROM audit_push p),
      (SELECT json_agg(c)::text FROM audit_log_cursors c), (SELECT json_agg(a)::text FROM accounts a)) AS text`;
    expect(dump!.text).not.toContain(SECRET);
    const status = await runCli(['status'], settings);
    expect(status.stderr + status.stdout).toMatch(/audit-log push \(webhook\): http:\/\/127\.0\.0\.1:\d+\/gcore\/audit-push: subscribed/);
    expect(status.stderr + status.stdout).not.toContain(SECRET);
  });

  it("the hourly check finds this deployment's subscription in place, beside another URL's, and neither removes nor doubles it", async () => {
    const foreign = { url: 'https://siem.example.org/gcore', auth_header_name: 'X-Token', auth_header_value: 'theirs' };
    await waitFor('the subscription', () => fake.subscriptionsOf('default').webhooks.length === 1, 60_000);
    expect(
      (
        await fetch(`${fake.url}/cloud/v1/user_actions/subscribe`, {
          method: 'POST',
          headers: { authorization: `APIKey ${env.env.GCORE_API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify(foreign),
        })
      ).status,
    ).toBe(204);
    const listed = fake.subscriptionsOf('default').webhooks;
    await worker(pushPort);
    for (let check = 1; check <= 2; check++) {
      // An hour on: the check is due at the next look, which a push brings at once.
      await sql`UPDATE audit_push SET checked_at = now() - interval '2 hours' WHERE account = 'default' AND kind = 'webhook'`;
      const lists = fake.requestsByEndpoint['user_actions/subscriptions_list'] ?? 0;
      expect((await push(pushPort)).status).toBe(204);
      await waitFor('the check', async () => {
        const [row] = await sql<{ recent: boolean }[]>`
          SELECT checked_at > now() - interval '1 hour' AS recent FROM audit_push WHERE account = 'default' AND kind = 'webhook'`;
        return row?.recent === true && (fake.requestsByEndpoint['user_actions/subscriptions_list'] ?? 0) > lists;
      });
      expect(fake.subscriptionsOf('default').webhooks).toEqual(listed);
      const [row] = await sql<{ subscribed: boolean; problem: string | null }[]>`
        SELECT subscribed, subscription_problem AS problem FROM audit_push WHERE account = 'default' AND kind = 'webhook'`;
      expect(row).toEqual({ subscribed: true, problem: null });
    }
    expect(fake.requestsByEndpoint['user_actions/unsubscribe'] ?? 0).toBe(0);
    // The other URL's goes again (with this deployment's: Gcore removes all), and the worker subscribes anew for the tests after.
    await fetch(`${fake.url}/cloud/v1/user_actions/unsubscribe`, {
      method: 'POST',
      headers: { authorization: `APIKey ${env.env.GCORE_API_KEY}` },
    });
    await sql`UPDATE audit_push SET checked_at = NULL`;
    expect((await push(pushPort)).status).toBe(204);
    await waitFor('the subscription, made again', () => fake.subscriptionsOf('default').webhooks.length === 1, 60_000);
  });

  it('pushes duplicated, reordered or dropped still put each change down to who made it, once', async () => {
    await worker(pushPort);
    const [one, two, three] = images as [Triple, Triple, Triple];
    const before = { one: await nameChanges(one), two: await nameChanges(two), three: await nameChanges(three) };
    // Twice each: one refresh stores the change, the second finds nothing new.
    fake.setPushFault({ mode: 'duplicate' });
    fake.renameImageAs(alice, one, 'twice-pushed');
    await waitFor('the duplicated push', async () => (await nameChanges(one)) === before.one + 1, 60_000);
    // Held, then sent newest first.
    fake.setPushFault({ mode: 'reorder', hold: 2 });
    fake.renameImageAs(alice, two, 'reordered-a');
    fake.renameImageAs(alice, three, 'reordered-b');
    await waitFor(
      'both renames',
      async () => (await nameChanges(two)) === before.two + 1 && (await nameChanges(three)) === before.three + 1,
      60_000,
    );
    expect(fake.pushStats().held).toBe(0);
    expect((await attributedNames(one)).at(-1)).toEqual({ new_value: 'twice-pushed', actor_email: 'alice@example.com' });
    expect((await attributedNames(two)).at(-1)).toEqual({ new_value: 'reordered-a', actor_email: 'alice@example.com' });
    expect((await attributedNames(three)).at(-1)).toEqual({ new_value: 'reordered-b', actor_email: 'alice@example.com' });
    expect(await nameChanges(one)).toBe(before.one + 1);
    // Dropped: the next poll reads it (polls every 3 s for this worker).
    await Promise.all(running.splice(0).map((w) => w.stop()));
    fake.setPushFault({ mode: 'drop' });
    const polling = startCli(['worker'], {
      ...settings,
      AUDIT_LOG_POLL_SECONDS: '3',
      AUDIT_PUSH_PORT: String(pushPort),
      HTTP_PORT: String(await sparePort()),
    });
    running.push(polling);
    fake.renameImageAs(alice, one, 'never-pushed');
    await waitFor('the rename, read by a poll', async () => (await nameChanges(one)) === before.one + 2, 60_000);
    expect(fake.pushStats().webhook.dropped).toBeGreaterThanOrEqual(1);
    expect((await attributedNames(one)).at(-1)).toEqual({ new_value: 'never-pushed', actor_email: 'alice@example.com' });
    fake.setPushFault({ mode: 'deliver' });
    const services = await openServices(env.config());
    try {
      expect(await invariantViolations(services.sql, services.queues)).toEqual([]);
    } finally {
      await services.close();
    }
  });

  it.each([401, 403] as const)('a subscription endpoint that answers the key %i says so, and the key goes on working', async (code) => {
    fake.refuseKeyOnSubscriptions(code);
    await sql`UPDATE audit_push SET checked_at = NULL`;
    try {
      const { metricsPort } = await worker(pushPort);
      await waitFor(
        'the refusal, recorded',
        async () => {
          const [row] = await sql<{ problem: string | null }[]>`
          SELECT subscription_problem AS problem FROM audit_push WHERE account = 'default' AND kind = 'webhook' AND NOT subscribed`;
          return row?.problem?.startsWith(String(code)) ?? false;
        },
        60_000,
      );
      const ready = await readyz(metricsPort);
      expect(ready.api_key).toBe('ok');
      expect(Object.values(ready.audit_push ?? {}).join()).toContain('NOT subscribed');
      // The images and the log are still read with the key.
      const image = images[1]!;
      fake.renameImageAs(alice, image, `after-refusal-${code}`);
      expect((await push(pushPort)).status).toBe(204);
      await waitFor('the rename', async () => (await attributedNames(image)).at(-1)?.new_value === `after-refusal-${code}`, 60_000);
      const status = await runCli(['status', '--json'], settings);
      expect(status.code, status.stderr).toBe(0);
      const said = JSON.parse(status.stdout) as {
        api_key: { rejected_by: unknown[] };
        accounts: Record<string, { api_key: { rejected_by: unknown[] }; audit_push: Array<{ said: string }> }>;
      };
      expect(said.api_key.rejected_by).toEqual([]);
      expect(said.accounts.default!.api_key.rejected_by).toEqual([]);
      expect(said.accounts.default!.audit_push[0]!.said).toContain('NOT subscribed');
    } finally {
      fake.refuseKeyOnSubscriptions(null);
    }
  });

  it("push unsubscribe refuses while another URL's subscription is listed, and --force removes them all", async () => {
    const foreign = { url: 'https://siem.example.org/<b>gcore</b>', auth_header_name: 'X-Token', auth_header_value: 'theirs' };
    const created = await fetch(`${fake.url}/cloud/v1/user_actions/subscribe`, {
      method: 'POST',
      headers: { authorization: `APIKey ${env.env.GCORE_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(foreign),
    });
    expect(created.status).toBe(204);
    expect(fake.subscriptionsOf('default').webhooks.map((w) => w.url)).toEqual([settings.AUDIT_PUSH_URL, foreign.url]);
    const refused = await runCli(['push', 'unsubscribe'], settings);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("refused: Gcore's unsubscribe removes every webhook subscription of the client");
    expect(refused.stderr).toContain('https://siem.example.org/<b>gcore</b>');
    expect(refused.stderr).not.toContain(SECRET);
    expect(fake.subscriptionsOf('default').webhooks).toHaveLength(2);
    const forced = await runCli(['push', 'unsubscribe', '--force'], settings);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('unsubscribed: all 2');
    expect(fake.subscriptionsOf('default').webhooks).toEqual([]);
    const usage = await runCli(['push', 'subscribe'], settings);
    expect(usage.code).toBe(2);
  });

  it('a rename is put down to who made it at the push, long before the 600 s poll, whichever of two processes the push reaches', async () => {
    const a = await worker(pushPort);
    const b = await worker(await sparePort());
    // Both have started following: the first poll of the account has read the log to its end.
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const firstPoll = await polledAt();
    const [image] = images;
    const earlier = await nameChanges(image!);
    // Gcore's own push is dropped here: the one this test sends is the only one.
    fake.setPushFault({ mode: 'drop' });
    fake.renameImageAs(alice, image!, 'golden-pushed');
    const sent = Date.now();
    // The push reaches the process that does not serve the URL's port, as a load balancer may send it.
    const answer = await push(b.receiverPort);
    expect(answer.status).toBe(204);
    await waitFor('the rename, put down to alice', async () => (await nameChanges(image!)) === earlier + 1, 60_000);
    const took = Date.now() - sent;
    fake.setPushFault({ mode: 'deliver' });
    expect((await attributedNames(image!)).at(-1)).toEqual({ new_value: 'golden-pushed', actor_email: 'alice@example.com' });
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

  it('a push announced while a process was not listening is read once it listens again, not at the next poll', async () => {
    await worker(pushPort);
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const listeners = () => sql<{ pid: number }[]>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen "audit_log_wake"%'`;
    await waitFor('the worker to listen', async () => (await listeners()).length === 1);
    const image = images[0]!;
    const earlier = await nameChanges(image);
    fake.setPushFault({ mode: 'drop' });
    try {
      fake.renameImageAs(alice, image, 'missed-announcement');
      // A push taken while the worker's listening connection is down: the mark is made, its announcement heard by none.
      await sql`UPDATE audit_log_cursors SET wake_requested_at = now() WHERE account = 'default'`;
      const [listener] = await listeners();
      await sql`SELECT pg_terminate_backend(${listener!.pid})`;
      await waitFor('the rename, put down to alice', async () => (await nameChanges(image)) === earlier + 1, 60_000);
      expect((await attributedNames(image)).at(-1)).toEqual({ new_value: 'missed-announcement', actor_email: 'alice@example.com' });
    } finally {
      fake.setPushFault({ mode: 'deliver' });
    }
  });

  it("a push's mark makes a poll due a second after the last, unless the mark is ahead of the clock", async () => {
    // The first lease makes the cursor when no worker has yet.
    await takeAuditLease(sql, 'default', 'test-holder', 60_000, 600);
    await releaseAuditLease(sql, 'default', 'test-holder');
    const [saved] = await sql<{ polled_at: string | null; wake: string | null }[]>`
      SELECT polled_at::text, wake_requested_at::text AS wake FROM audit_log_cursors WHERE account = 'default'`;
    /** Whether a poll is due, and how long after the last one the next is, with a push's mark at `wake` from now. */
    const dueIn = async (wake: string) => {
      await sql`UPDATE audit_log_cursors SET polled_at = now() - interval '10 seconds', wake_requested_at = now() + ${wake}::interval
        WHERE account = 'default'`;
      const [row] = await sql<{ polled: string }[]>`
        SELECT (extract(epoch FROM polled_at) * 1000)::text AS polled FROM audit_log_cursors WHERE account = 'default'`;
      const lease = await takeAuditLease(sql, 'default', 'test-holder', 60_000, 600);
      await releaseAuditLease(sql, 'default', 'test-holder');
      return { due: lease?.due, afterPoll: Math.round((await auditPollDue(sql, 'default', 600)) - Number(row!.polled)) };
    };
    try {
      expect(await dueIn('-5 seconds')).toEqual({ due: true, afterPoll: 1000 });
      // Set an hour ahead (the clock went back): the poll is due at its interval, not every second until then.
      expect(await dueIn('1 hour')).toEqual({ due: false, afterPoll: 600_000 });
    } finally {
      await sql`UPDATE audit_log_cursors SET polled_at = ${saved!.polled_at}::timestamptz, wake_requested_at = ${saved!.wake}::timestamptz
        WHERE account = 'default'`;
    }
  });

  it('a push with a wrong or missing header gets 401, is counted, and reads nothing', async () => {
    const { metricsPort } = await worker(pushPort);
    const [before] = await sql<{ wake: string | null; refused: number }[]>`
      SELECT c.wake_requested_at::text AS wake, coalesce(p.pushes_refused, 0)::int AS refused
      FROM audit_log_cursors c LEFT JOIN audit_push p ON p.account = c.account AND p.kind = 'webhook' WHERE c.account = 'default'`;
    const accepted = await pushesAccepted(metricsPort);
    expect((await push(pushPort, 'Bearer wrong-secret')).status).toBe(401);
    expect((await push(pushPort, '')).status).toBe(401);
    expect((await push(pushPort, SECRET)).status).toBe(401);
    await waitFor('the refusals counted', async () => {
      const [row] = await sql<
        { n: number }[]
      >`SELECT pushes_refused::int AS n FROM audit_push WHERE account = 'default' AND kind = 'webhook'`;
      return row?.n === before!.refused + 3;
    });
    // Nothing asked for a read: no wake-up marked or counted.
    const [after] = await sql<
      { wake: string | null }[]
    >`SELECT wake_requested_at::text AS wake FROM audit_log_cursors WHERE account = 'default'`;
    expect(after!.wake).toBe(before!.wake);
    expect(await pushesAccepted(metricsPort)).toBe(accepted);
    const status = await runCli(['status'], settings);
    expect(status.stderr + status.stdout).toContain(`${before!.refused + 3} refused`);
    // With the right header, a body over the limit is refused too; a GET is not a push.
    expect((await push(pushPort, `Bearer ${SECRET}`, 'x'.repeat(MAX_PUSH_BYTES + 1))).status).toBe(413);
    expect((await fetch(`http://127.0.0.1:${pushPort}${PATH}`)).status).toBe(405);
    expect(await pushesAccepted(metricsPort)).toBe(accepted);
  });

  it('a burst of 100 pushes within a second costs at most a few reads of the log', async () => {
    await worker(pushPort);
    await waitFor('the first poll', async () => (await polledAt()) !== null, 60_000);
    const reads = fake.requestsByEndpoint.user_actions;
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
    const extra = fake.requestsByEndpoint.user_actions - reads;
    expect(extra).toBeGreaterThanOrEqual(1);
    expect(extra).toBeLessThanOrEqual(3);
  });
});
