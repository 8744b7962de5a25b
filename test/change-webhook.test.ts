// Change alerts to a webhook over real HTTP: batches, retries with backoff,
// at-least-once delivery from a cursor, and a failing receiver that never
// holds up the sync.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const A: Triple = { projectId: 9, regionId: 4, imageId: sampleImageId(1) };
const B: Triple = { projectId: 9, regionId: 4, imageId: sampleImageId(2) };

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
let receiver: Server;
let failuresLeft = 2;
const answered: number[] = [];
const delivered: Array<{ changes: Array<Record<string, unknown>> }> = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const status = failuresLeft-- > 0 ? 500 : 200;
      answered.push(status);
      if (status === 200) delivered.push(JSON.parse(body));
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(A, sampleImage(A));
  fake.putImage(B, sampleImage(B));
  await fake.start();
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
  pipeline = await startPipeline(env, fake.url, `${QUIET_SCHEDULE}
targets:
  - { project_id: 9, region_id: 4, image_ids: [${A.imageId}, ${B.imageId}] }
`, { env: { ALERT_WEBHOOK_URL: url } });
  await waitFor('the delivery cursor', async () => (await pipeline.services.sql`SELECT 1 FROM alert_cursor`).length === 1);
});

afterAll(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('change webhook', () => {
  it('delivers every change once, in order, after retrying a failing receiver, without holding up the sync', async () => {
    expect(await pipeline.sync()).toMatchObject({ changed: 2, failed: 0 });
    fake.updateImage(A, { name: 'renamed' });
    expect(await pipeline.sync()).toMatchObject({ changed: 1, failed: 0 });
    await waitFor('three changes delivered', () => delivered.flatMap((d) => d.changes).length >= 3, 30_000);
    expect(answered.slice(0, 3)).toEqual([500, 500, 200]);
    const changes = delivered.flatMap((d) => d.changes);
    expect(changes.map((c) => [c.image_id, c.change_type, c.field])).toEqual([
      [expect.any(String), 'created', null],
      [expect.any(String), 'created', null],
      [A.imageId, 'updated', 'name'],
    ]);
    expect(new Set(changes.map((c) => c.id)).size).toBe(3);
    expect(changes[2]).toMatchObject({ project_id: 9, region_id: 4, image_name: 'renamed', old_value: 'ubuntu-22.04-x64-0001', new_value: 'renamed' });
    // The cursor moves once the receiver's 200 has arrived.
    await waitFor('the cursor past the last change', async () =>
      (await pipeline.services.sql`SELECT last_change_id FROM alert_cursor`)[0]!.last_change_id === changes[2]!.id);
  });
});
