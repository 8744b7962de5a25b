// What settling a refresh batch does to each image, decided without services:
// the policy's decision as a fate, the images queued again by wait, and the
// failures grouped by cause so that each cause is said once.
import { describe, expect, it } from 'vitest';
import { AuthenticationError, RateLimitedError, RequestWithheldError, TransientApiError } from '../src/gcore/gcore-errors.js';
import type { ImageSnapshot } from '../src/interfaces.js';
import type { RefreshItem } from '../src/queues/queue.js';
import type { RetryPolicy } from '../src/work/retry-policy.js';
import { confirmAnswerOf, fateOf, groupByCause, requeueGroups, type ItemFate, type StoredResult } from '../src/work/refresh-worker.js';
import { InvalidPayloadError } from '../src/images/image-payload.js';

const policy: RetryPolicy = { attempts: 3, rateLimitMaxWaitMs: 60_000, freeRateLimitRetries: 2 };
const item = (imageId: string, extra: Partial<RefreshItem> = {}): RefreshItem => ({
  projectId: 1,
  regionId: 7,
  imageId,
  attempt: 0,
  ...extra,
});
const snapshot = { name: 'x' } as unknown as ImageSnapshot;
const stored = (it: RefreshItem, extra: Partial<StoredResult> = {}): StoredResult => ({
  item: it,
  outcome: 'unchanged',
  warnings: [],
  ms: 3,
  ...extra,
});
const limited = (ms: number) => new RateLimitedError('429: Too many requests', ms, true);

describe('what settling does to an image', () => {
  it('a stored image is said; it answers its scope only when it was a confirming GET', () => {
    const plain = stored(item('a'), { snapshot });
    expect(fateOf(plain, policy)).toEqual({ kind: 'stored', result: plain });
    const confirming = stored(item('b', { confirmScope: 's1' }), { snapshot });
    expect(fateOf(confirming, policy)).toEqual({ kind: 'stored', result: confirming, confirm: { kind: 'found', snapshot } });
  });

  it('a confirming GET says gone on a 404, found with its snapshot, else failed', () => {
    expect(confirmAnswerOf(stored(item('a'), { gone: true, outcome: 'deleted' }))).toEqual({ kind: 'gone' });
    expect(confirmAnswerOf(stored(item('a'), { snapshot }))).toEqual({ kind: 'found', snapshot });
    expect(confirmAnswerOf(stored(item('a')))).toEqual({ kind: 'failed' });
  });

  it('a withheld request is handed back untried; a transient error is retried with its attempt spent', () => {
    const withheld = { item: item('a'), error: new RequestWithheldError('not sent', undefined, false), ms: 0 };
    expect(fateOf(withheld, policy)).toEqual({ kind: 'hand-back', item: item('a') });
    const busy = { item: item('b'), error: new TransientApiError('503: busy', 503, true), ms: 5 };
    expect(fateOf(busy, policy)).toMatchObject({
      kind: 'retry',
      of: item('b'),
      item: { imageId: 'b', attempt: 1, rateLimited: 0 },
      failure: { status: 503, errorClass: 'TransientApiError' },
    });
  });

  it('a failure is recorded; a rejected key stops the account; a confirming GET answers its scope "failed"', () => {
    const rejected = { item: item('a'), error: new AuthenticationError('401: no', 401, false), ms: 1 };
    expect(fateOf(rejected, policy)).toMatchObject({ kind: 'record', of: item('a'), attempts: 1, stopWorker: true });
    expect(fateOf(rejected, policy)).not.toHaveProperty('confirm');
    const invalid = { item: item('b', { confirmScope: 's1' }), error: new InvalidPayloadError('not an image'), ms: 1 };
    expect(fateOf(invalid, policy)).toMatchObject({
      kind: 'record',
      stopWorker: false,
      failure: { status: 200, errorClass: 'InvalidPayloadError' },
      confirm: { kind: 'failed' },
    });
  });
});

describe('the images queued again', () => {
  it('are grouped by their wait, the first wait seen first; stored and recorded images are not among them', () => {
    const results = [
      { item: item('a'), error: limited(1000), ms: 0 },
      stored(item('b')),
      { item: item('c'), error: new RequestWithheldError('not sent', undefined, false), ms: 0 },
      { item: item('d'), error: limited(1000), ms: 0 },
      { item: item('e'), error: new AuthenticationError('401: no', 401, false), ms: 0 },
    ];
    const fates: ItemFate[] = results.map((result) => fateOf(result, policy));
    const groups = requeueGroups(fates);
    expect([...groups.keys()]).toEqual([1000, 0]);
    expect(groups.get(1000)!.map((i) => [i.imageId, i.rateLimited])).toEqual([
      ['a', 1],
      ['d', 1],
    ]);
    expect(groups.get(0)!.map((i) => i.imageId)).toEqual(['c']);
  });

  it('are none when every image ended', () => {
    expect(requeueGroups([fateOf(stored(item('a')), policy)]).size).toBe(0);
  });
});

describe('failures grouped by cause', () => {
  it('one group per cause, with every image and the first failure message', () => {
    const down = { key: 'down', text: 'the API is down' };
    const key = { key: 'key', text: 'the key is refused' };
    expect(
      groupByCause([
        { cause: down, image: '1/7/a', error: 'first' },
        { cause: key, image: '1/7/b', error: 'refused' },
        { cause: down, image: '1/7/c', error: 'second' },
      ]),
    ).toEqual([
      { cause: down, images: ['1/7/a', '1/7/c'], error: 'first' },
      { cause: key, images: ['1/7/b'], error: 'refused' },
    ]);
    expect(groupByCause([])).toEqual([]);
  });
});
