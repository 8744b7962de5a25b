// Hostile or huge input gets a clear error or bounded handling, never a crash
// and never a request to another route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient, imageUrl } from '../src/gcore-client.js';
import { GcoreApiError } from '../src/gcore-errors.js';
import type { Triple } from '../src/interfaces.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';

const MANY = { projectId: 6, regionId: 1, imageId: sampleImageId(1) };
const TOO_MANY = { projectId: 6, regionId: 1, imageId: sampleImageId(2) };
const HUGE = { projectId: 6, regionId: 1, imageId: sampleImageId(3) };
const tags = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}`, read_only: false }));

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(MANY, sampleImage(MANY, { tags: tags(10_000) }));
  fake.putImage(TOO_MANY, sampleImage(TOO_MANY, { tags: tags(10_001) }));
  fake.putImage(HUGE, sampleImage(HUGE, { description: 'x'.repeat(10 * 1024 * 1024) }));
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 6, region_id: 1, image_ids: [${[MANY, TOO_MANY, HUGE].map((t) => t.imageId).join(', ')}] }
`,
    { env: { SYNC_ATTEMPTS: '1' } },
  );
});

afterAll(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

describe('input safety', () => {
  it('stores 10,000 tags, and rejects 10,001 tags and a 10 MB body with a clear failure', async () => {
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 1, failed: 2 });
    const sql = pipeline.services.sql;
    expect(await sql`SELECT image_id, count(*)::int AS n FROM image_tags GROUP BY image_id`).toEqual([
      { image_id: MANY.imageId, n: 10_000 },
    ]);
    const recorded = await sql`SELECT image_id, error_class, message FROM sync_failures ORDER BY image_id`;
    expect(recorded.map((f) => [f.image_id, f.error_class])).toEqual([
      [TOO_MANY.imageId, 'InvalidPayloadError'],
      [HUGE.imageId, 'MalformedAnswerError'],
    ]);
    expect(recorded[0]!.message).toMatch(
      /^answer does not fit the image schema: tags: Too big: expected array to have <=10000 items; body: /,
    );
    expect(recorded[1]!.message).toBe('answer of 10486534 bytes exceeds the 1048576-byte limit');
    expect(await sql`SELECT count(*)::int AS n FROM images`).toEqual([{ n: 1 }]);
  });

  it('refuses to build a URL for an id that could leave its path segment', () => {
    for (const imageId of ['../../x', 'a/b', '..', 'a%2Fb', 'a b', 'a\nb', '']) {
      const triple: Triple = { projectId: 1, regionId: 2, imageId };
      expect(() => imageUrl('http://127.0.0.1:1', triple), imageId).toThrow(GcoreApiError);
    }
    expect(imageUrl('http://h', { projectId: 1, regionId: 2, imageId: 'a:b&c=d' })).toBe('http://h/cloud/v1/images/1/2/a%3Ab%26c%3Dd');
  });

  it('a refused id is a non-retryable failure and sends no request', async () => {
    const before = fake.requestCount;
    const client = new GcoreClient({ baseUrl: fake.url, apiKey: 'k', timeoutMs: 1000, maxResponseBytes: 1024 });
    const error = await client.getImage({ projectId: 1, regionId: 2, imageId: '../../admin' }).catch((e: Error) => e);
    expect(error).toMatchObject({ retryable: false, message: 'request not sent: image id "../../admin" must not contain ".."' });
    expect(fake.requestCount).toBe(before);
  });
});
