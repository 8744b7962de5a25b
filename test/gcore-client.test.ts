import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient } from '../src/gcore/gcore-client.js';
import {
  AuthenticationError,
  MalformedAnswerError,
  RateLimitedError,
  RequestWithheldError,
  retryAfterMs,
  RouteNotFoundError,
  TransientApiError,
  UnexpectedStatusError,
} from '../src/gcore/gcore-errors.js';
import { sparePort } from './support/throwaway.js';

const fake = new FakeGcore({ apiKey: 'k$y with "quotes"' });
let client: GcoreClient;

async function failure(triple = SAMPLE_TRIPLE): Promise<Error> {
  return client.getImage(triple).then(
    () => {
      throw new Error('expected the request to fail');
    },
    (error: Error) => error,
  );
}

beforeAll(async () => {
  const url = await fake.start();
  client = new GcoreClient({ baseUrl: url, apiKey: fake.apiKey, timeoutMs: 500, maxResponseBytes: 64 * 1024 });
  fake.putImage(SAMPLE_TRIPLE, sampleImage(SAMPLE_TRIPLE));
});
afterAll(async () => {
  client.close();
  await fake.stop();
});

describe('Gcore client over real HTTP', () => {
  it('sends the APIKey header and returns the parsed body', async () => {
    const answer = await client.getImage(SAMPLE_TRIPLE);
    expect(answer.kind).toBe('found');
    expect(answer.kind === 'found' && (answer.body as { id: string }).id).toBe(SAMPLE_TRIPLE.imageId);
    expect([...fake.authorizations]).toEqual([`APIKey ${fake.apiKey}`]);
  });

  it('encodes the image id into one path segment', async () => {
    const odd = { projectId: 1, regionId: 7, imageId: 'a:b&c=d' };
    fake.putImage(odd, sampleImage(odd));
    const answer = await client.getImage(odd);
    expect(answer.kind === 'found' && (answer.body as { id: string }).id).toBe('a:b&c=d');
  });

  it("reads Gcore's JSON NotFoundError as gone, and a bare 404 as a wrong route", async () => {
    expect((await client.getImage({ ...SAMPLE_TRIPLE, imageId: 'missing' })).kind).toBe('gone');
    fake.setFault(SAMPLE_TRIPLE, { kind: 'bare404' }, 1);
    const error = await failure();
    expect(error).toBeInstanceOf(RouteNotFoundError);
    expect(error).toMatchObject({ status: 404, retryable: false });
    expect(error.message).toBe("404 without Gcore's NotFoundError body (is GCORE_BASE_URL right?): (empty body)");
  });

  it('classifies 429, 403, 500, 400, malformed and oversized answers, and timeouts', async () => {
    fake.setFault(SAMPLE_TRIPLE, { kind: 'rateLimited', retryAfter: '2' }, 1);
    expect(await failure()).toMatchObject({ constructor: RateLimitedError, retryAfterMs: 2000, retryable: true });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 403 }, 1);
    expect(await failure()).toMatchObject({ constructor: TransientApiError, status: 403, retryable: true });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 500 }, 1);
    expect(await failure()).toMatchObject({ constructor: TransientApiError, retryable: true, message: '500: injected 500' });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 503, headers: { 'x-should-retry': 'false' } }, 1);
    expect(await failure()).toMatchObject({ constructor: TransientApiError, retryable: false });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 400 }, 1);
    expect(await failure()).toMatchObject({ constructor: UnexpectedStatusError, retryable: false });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'malformed' }, 1);
    expect(await failure()).toMatchObject({
      constructor: MalformedAnswerError,
      message: '200 with a body that is not JSON: {"id": "truncated',
    });
    fake.putImage(SAMPLE_TRIPLE, sampleImage(SAMPLE_TRIPLE, { description: 'x'.repeat(100_000) }));
    expect(await failure()).toMatchObject({
      constructor: MalformedAnswerError,
      message: 'answer of 100774 bytes exceeds the 65536-byte limit',
    });
    fake.putImage(SAMPLE_TRIPLE, sampleImage(SAMPLE_TRIPLE));
    fake.setFault(SAMPLE_TRIPLE, { kind: 'slow', ms: 2000 }, 1);
    expect(await failure()).toMatchObject({ constructor: TransientApiError, status: undefined, message: 'no answer within 500 ms' });
  });

  it('after a 401 sends no more requests with the rejected key', async () => {
    const own = new GcoreClient({ baseUrl: fake.url, apiKey: fake.apiKey, timeoutMs: 500, maxResponseBytes: 64 * 1024 });
    fake.setFault(SAMPLE_TRIPLE, { kind: 'unauthorized' }, 1);
    const before = fake.requestCount;
    expect(await own.getImage(SAMPLE_TRIPLE).catch((e: Error) => e)).toMatchObject({
      constructor: AuthenticationError,
      retryable: false,
      message: '401: the API key was rejected: Authentication credentials were not provided.',
    });
    expect(await own.getImage(SAMPLE_TRIPLE).catch((e: Error) => e)).toMatchObject({
      constructor: RequestWithheldError,
      message: 'request not sent: the API already rejected this key',
    });
    expect(fake.requestCount).toBe(before + 1);
  });

  it('reports a connection failure as transient', async () => {
    const port = await sparePort();
    const closed = new GcoreClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: 'k', timeoutMs: 1000, maxResponseBytes: 1024 });
    const error = await closed.getImage(SAMPLE_TRIPLE).catch((e: Error) => e);
    expect(error).toBeInstanceOf(TransientApiError);
    expect((error as Error).message).toBe(`connection failed: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('reads wait hints in milliseconds, seconds or as an HTTP date, as asked: an unbounded one is unbounded, not absent', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const hint = (headers: Record<string, string>) => retryAfterMs(new Headers(headers), now);
    expect(hint({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    expect(hint({ 'retry-after': '3' })).toBe(3000);
    expect(hint({ 'retry-after': ' 0.25 ' })).toBe(250);
    expect(hint({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' })).toBe(5000);
    expect(hint({ 'retry-after': '3600' })).toBe(3_600_000);
    // Beyond any cap, kept as asked: the policy caps what it honours and says what was asked.
    expect(hint({ 'retry-after': '99999999' })).toBe(99_999_999_000);
    expect(hint({ 'retry-after': '1e12' })).toBe(1e15);
    expect(hint({ 'retry-after': 'Fri, 01 Jan 2100 00:00:00 GMT' })).toBe(Date.parse('2100-01-01T00:00:00Z') - now);
    for (const unbounded of ['1e400', 'Infinity', '+Infinity', 'infinity']) {
      expect(hint({ 'retry-after': unbounded }), unbounded).toBe(Number.POSITIVE_INFINITY);
    }
    expect(hint({ 'retry-after-ms': '1e400' })).toBe(Number.POSITIVE_INFINITY);
    // Not a wait: no hint (the client waits its default).
    for (const none of ['soon', '', ' ', '-5', 'NaN', '0x10', 'Thu, 01 Jan 2025 00:00:00 GMT']) {
      expect(hint({ 'retry-after': none }), none).toBeUndefined();
    }
    expect(hint({ 'retry-after-ms': '-1' })).toBeUndefined();
    expect(hint({})).toBeUndefined();
  });
});
