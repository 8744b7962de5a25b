// Audit-log pushes for two accounts of one Gcore client, whose subscriptions
// are the client's: real worker processes (the built CLI), the fake Gcore API.
// However the accounts' checks meet, in one process or two started at once,
// the client ends with exactly one subscription to this deployment's URL.
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';

const SECRET = 'push-secret-0123456789abcdef0123456789';
const PROD: Triple = { projectId: 1, regionId: 7, imageId: sampleImageId(1) };
const STAGING: Triple = { projectId: 2, regionId: 7, imageId: sampleImageId(2) };

let env: TestEnv;
let fake: FakeGcore;
let sql: postgres.Sql;
let settings: Record<string, string>;
const running: RunningCli[] = [];

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({
    accounts: {
      prod: { apiKey: 'prod-key-0123456789', projects: [1], client: 'acme' },
      staging: { apiKey: 'staging-key-0123456789', projects: [2], client: 'acme' },
    },
  });
  fake.putImage(PROD, sampleImage(PROD));
  fake.putImage(STAGING, sampleImage(STAGING));
  await fake.start();
  const file = await writeTargetsFile(`schedule: { every: 1h }
accounts:
  prod: { api_key_env: GCORE_API_KEY }
  staging: { api_key_env: GCORE_API_KEY_STAGING }
targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [${PROD.imageId}] }
  - { account: staging, project_id: 2, region_id: 7, image_ids: [${STAGING.imageId}] }
`);
  settings = {
    ...env.env,
    GCORE_API_KEY: 'prod-key-0123456789',
    GCORE_API_KEY_STAGING: 'staging-key-0123456789',
    TARGETS_FILE: file,
    GCORE_BASE_URL: fake.url,
    AUDIT_LOG_POLL_SECONDS: '600',
    AUDIT_PUSH_URL: `http://127.0.0.1:${await sparePort()}/gcore/audit-push`,
    AUDIT_PUSH_SECRET: SECRET,
  };
  const first = await runCli(['sync', '--wait'], { ...settings, AUDIT_LOG_POLL_SECONDS: '0', AUDIT_PUSH_URL: '', AUDIT_PUSH_SECRET: '' });
  expect(first.code, first.stderr).toBe(0);
  sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} });
}, 120_000);

afterEach(async () => {
  await Promise.all(running.splice(0).map((worker) => worker.stop()));
});

afterAll(async () => {
  await sql?.end();
  await fake?.stop();
  await env?.cleanup();
});

/** Whether both accounts' subscriptions were checked since `since` and found in place. */
async function bothChecked(since: Date): Promise<boolean> {
  const rows = await sql<{ account: string }[]>`
    SELECT account FROM audit_push WHERE kind = 'webhook' AND subscribed AND checked_at > ${since}`;
  return rows.length === 2;
}

it('two accounts of one client, followed by two processes started at once, end with one subscription', async () => {
  for (let round = 0; round < 3; round++) {
    await fetch(`${fake.url}/cloud/v1/user_actions/unsubscribe`, {
      method: 'POST',
      headers: { authorization: 'APIKey prod-key-0123456789' },
    });
    await sql`UPDATE audit_push SET checked_at = NULL`;
    const since = new Date(Date.now() - 1000);
    const workers = await Promise.all(
      [0, 1].map(async () =>
        startCli(['worker'], { ...settings, HTTP_PORT: String(await sparePort()), AUDIT_PUSH_PORT: String(await sparePort()) }),
      ),
    );
    running.push(...workers);
    await waitFor('both accounts checked', () => bothChecked(since), 60_000);
    expect(
      fake.subscriptionsOf('acme').webhooks.map((w) => w.url),
      `round ${round}`,
    ).toEqual([settings.AUDIT_PUSH_URL]);
    await Promise.all(running.splice(0).map((worker) => worker.stop()));
  }
}, 300_000);

it("a subscription of this deployment's listed twice is made one at the next check", async () => {
  await fetch(`${fake.url}/cloud/v1/user_actions/unsubscribe`, {
    method: 'POST',
    headers: { authorization: 'APIKey prod-key-0123456789' },
  });
  for (const key of ['prod-key-0123456789', 'staging-key-0123456789']) {
    const made = await fetch(`${fake.url}/cloud/v1/user_actions/subscribe`, {
      method: 'POST',
      headers: { authorization: `APIKey ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: settings.AUDIT_PUSH_URL, auth_header_name: 'Authorization', auth_header_value: `Bearer ${SECRET}` }),
    });
    expect(made.status).toBe(204);
  }
  expect(fake.subscriptionsOf('acme').webhooks).toHaveLength(2);
  await sql`UPDATE audit_push SET checked_at = now() - interval '2 hours'`;
  const since = new Date(Date.now() - 1000);
  running.push(startCli(['worker'], { ...settings, HTTP_PORT: String(await sparePort()), AUDIT_PUSH_PORT: String(await sparePort()) }));
  await waitFor('both accounts checked', () => bothChecked(since), 60_000);
  expect(fake.subscriptionsOf('acme').webhooks.map((w) => w.url)).toEqual([settings.AUDIT_PUSH_URL]);
});
