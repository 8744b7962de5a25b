// Change alerts to a webhook over real HTTP, from a worker process as an
// operator runs it: signed batches, retries with backoff, at-least-once
// delivery from a cursor, a failing receiver that never holds up the sync, and
// a receiver that checks signatures with the function docs/reporting.md offers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { webhookUrlProblem } from '../src/config/config.js';
import type { Triple } from '../src/interfaces.js';
import { signatureHeader, SIGNATURE_HEADER, verifySignature, type Verification } from '../src/ops/webhook-signature.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const A: Triple = { projectId: 9, regionId: 4, imageId: sampleImageId(1) };
const B: Triple = { projectId: 9, regionId: 4, imageId: sampleImageId(2) };
const SECRET = 'whsec-test-0123456789abcdef0123456789abcdef';

interface Received {
  header: string | undefined;
  body: string;
  verification: Verification;
  status: number;
}

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let worker: RunningCli;
let receiver: Server;
let url: string;
let failuresLeft = 2;
const received: Received[] = [];

/** Answers 401 to a request whose signature does not verify; of the good ones, fails the first two with 500. */
function receive(header: string | undefined, body: string): Received {
  const verification = verifySignature(header, body, SECRET);
  const status = !verification.valid ? 401 : failuresLeft-- > 0 ? 500 : 200;
  const entry = { header, body, verification, status };
  received.push(entry);
  return entry;
}

const accepted = () => received.filter((r) => r.status === 200);

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const header = req.headers[SIGNATURE_HEADER.toLowerCase()];
      const { status, verification } = receive(Array.isArray(header) ? header[0] : header, body);
      res.writeHead(status).end(verification.valid ? '' : verification.reason);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(A, sampleImage(A));
  fake.putImage(B, sampleImage(B));
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 9, region_id: 4, image_ids: [${A.imageId}, ${B.imageId}] }
`,
    { noWorker: true },
  );
  worker = startCli(['worker'], { ...env.env, GCORE_BASE_URL: fake.url, ALERT_WEBHOOK_URL: url, ALERT_WEBHOOK_SECRET: SECRET });
  await waitFor('the delivery cursor', async () => (await pipeline.services.sql`SELECT 1 FROM alert_cursor`).length === 1);
});

afterAll(async () => {
  await worker?.stop();
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('change webhook', () => {
  it('delivers every change once, in order, signed, after retrying a failing receiver, without holding up the sync', async () => {
    expect(await pipeline.sync()).toMatchObject({ changed: 2, failed: 0 });
    fake.updateImage(A, { name: 'renamed' });
    expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
    await waitFor('three changes delivered', () => accepted().flatMap((r) => JSON.parse(r.body).changes).length >= 3, 30_000);
    expect(received.slice(0, 3).map((r) => [r.status, r.verification.valid])).toEqual([
      [500, true],
      [500, true],
      [200, true],
    ]);
    const now = Math.floor(Date.now() / 1000);
    for (const r of received) {
      expect(r.header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(Math.abs(now - (r.verification as { timestamp: number }).timestamp)).toBeLessThan(60);
    }
    const changes = accepted().flatMap((r) => JSON.parse(r.body).changes as Array<Record<string, unknown>>);
    expect(changes.map((c) => [c.image_id, c.change_type, c.field])).toEqual([
      [expect.any(String), 'created', null],
      [expect.any(String), 'created', null],
      [A.imageId, 'updated', 'name'],
    ]);
    expect(new Set(changes.map((c) => c.id)).size).toBe(3);
    expect(changes[2]).toMatchObject({
      project_id: 9,
      region_id: 4,
      image_name: 'renamed',
      old_value: 'ubuntu-22.04-x64-0001',
      new_value: 'renamed',
    });
    // The cursor moves once the receiver's 200 has arrived.
    await waitFor(
      'the cursor past the last change',
      async () => (await pipeline.services.sql`SELECT last_change_id FROM alert_cursor`)[0]!.last_change_id === changes[2]!.id,
    );
  });

  it('lets the receiver refuse a tampered body, a replayed old request, another secret and a missing signature', async () => {
    const genuine = accepted().at(-1)!;
    const post = async (header: string | undefined, body: string) => {
      const response = await fetch(url, { method: 'POST', headers: header ? { [SIGNATURE_HEADER]: header } : {}, body });
      return [response.status, await response.text()];
    };
    const tampered = genuine.body.replace('"renamed"', '"renamed-by-mallory"');
    expect(tampered).not.toBe(genuine.body);
    expect(await post(genuine.header, tampered)).toEqual([401, 'signature does not match']);
    // A request captured six minutes ago, signature and all.
    const old = Math.floor(Date.now() / 1000) - 360;
    expect(await post(signatureHeader(SECRET, genuine.body, old), genuine.body)).toEqual([401, 'timestamp outside the tolerance']);
    expect(await post(signatureHeader('another-secret-of-at-least-32-chars!', genuine.body, old + 360), genuine.body)).toEqual([
      401,
      'signature does not match',
    ]);
    expect(await post(undefined, genuine.body)).toEqual([401, 'no signature header']);
    expect(await post('sha256=abc', genuine.body)).toEqual([401, 'malformed signature header']);
  });

  it('verifies within the tolerance window and not a second beyond it, and accepts any matching v1', () => {
    const body = '{"changes":[]}';
    const header = signatureHeader(SECRET, body, 1_800_000_000);
    expect(verifySignature(header, body, SECRET, 1_800_000_300)).toEqual({ valid: true, timestamp: 1_800_000_000 });
    expect(verifySignature(header, body, SECRET, 1_799_999_700)).toEqual({ valid: true, timestamp: 1_800_000_000 });
    expect(verifySignature(header, body, SECRET, 1_800_000_301)).toEqual({ valid: false, reason: 'timestamp outside the tolerance' });
    expect(verifySignature(header, body, SECRET, 1_799_999_699)).toEqual({ valid: false, reason: 'timestamp outside the tolerance' });
    // A changed timestamp breaks the signature: it is signed with the body.
    expect(verifySignature(header.replace('t=1800000000', 't=1800000100'), body, SECRET, 1_800_000_100)).toEqual({
      valid: false,
      reason: 'signature does not match',
    });
    // During a rotation a sender may sign with two secrets; unknown schemes are skipped.
    const rotated = `t=1800000000,v1=${'0'.repeat(64)},${header.split(',')[1]},v0=whatever`;
    expect(verifySignature(rotated, body, SECRET, 1_800_000_000)).toEqual({ valid: true, timestamp: 1_800_000_000 });
  });

  it('refuses ALERT_WEBHOOK_URL without a secret at startup, and never prints the secret', async () => {
    const settings = { ...env.env, GCORE_BASE_URL: fake.url, ALERT_WEBHOOK_URL: url };
    expect(await runCli(['worker'], settings)).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'gcore-image-sync worker: configuration error in environment: 1 problem\n' +
        '  ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URL is set, to sign the alerts (e.g. the output of `openssl rand -hex 32`)\n',
    });
    expect(await runCli(['worker'], { ...settings, ALERT_WEBHOOK_SECRET: 'too-short-a-secret' })).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'gcore-image-sync worker: configuration error in environment: 1 problem\n  ALERT_WEBHOOK_SECRET: must be at least 32 characters (has 18)\n',
    });
    expect(worker.stdout() + worker.stderr()).not.toContain(SECRET);
    expect(worker.stdout()).toContain('"msg":"changes delivered to the webhook"');
  });

  it('refuses ALERT_WEBHOOK_URL with a user name or password at startup, and never prints them', async () => {
    const password = 'hunter2-webhook-password';
    const withCredentials = url.replace('http://', `http://alice:${password}@`);
    const problem =
      'ALERT_WEBHOOK_URL: must not hold a user name or password (user:password@host): the receiver authenticates alerts by their signature (ALERT_WEBHOOK_SECRET); a token it needs can go in the path or query';
    const settings = { ...env.env, GCORE_BASE_URL: fake.url, ALERT_WEBHOOK_SECRET: SECRET };
    expect(await runCli(['worker'], { ...settings, ALERT_WEBHOOK_URL: withCredentials })).toEqual({
      code: 2,
      stdout: '',
      stderr: `gcore-image-sync worker: configuration error in environment: 1 problem\n  ${problem}\n`,
    });
    // A user name alone is refused too; a token in the query is the receiver's own business.
    expect(webhookUrlProblem(url.replace('http://', 'http://alice@'))).toBe(problem.slice('ALERT_WEBHOOK_URL: '.length));
    expect(webhookUrlProblem(`${url}?token=abc`)).toBeUndefined();
  });
});
