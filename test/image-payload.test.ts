import { describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { InvalidPayloadError, normalizeTimestamp, validateImage } from '../src/image-payload.js';

function rejection(body: unknown): string {
  try {
    validateImage(body, SAMPLE_TRIPLE);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPayloadError);
    const message = (error as Error).message;
    expect(message).toContain(`; body: ${JSON.stringify(body).slice(0, 40)}`);
    return message.slice(0, message.indexOf('; body: '));
  }
  throw new Error('expected the answer to be rejected');
}

describe('image payload', () => {
  it('normalizes dates to UTC, keeping the fraction to the digit', () => {
    expect(normalizeTimestamp('2024-05-05T14:51:26.570866')).toBe('2024-05-05T14:51:26.570866Z');
    expect(normalizeTimestamp('2024-05-05T14:51:26+03:00')).toBe('2024-05-05T11:51:26Z');
    expect(normalizeTimestamp('2024-05-05 14:51:26.500Z')).toBe('2024-05-05T14:51:26.5Z');
    expect(normalizeTimestamp('2024-05-05T00:30:00-0130')).toBe('2024-05-05T02:00:00Z');
    expect(normalizeTimestamp('yesterday')).toBeNull();
  });

  it('accepts tags as tags or tags_v2, unknown enum values, extra fields and absent nullable fields', () => {
    const base = sampleImage(SAMPLE_TRIPLE, { tags: undefined, tags_v2: [{ key: 'k', value: 'v', read_only: true }] });
    const { description: _d, gpu_driver: _g, ...withoutNullables } = base;
    const snapshot = validateImage(
      JSON.parse(JSON.stringify({ ...withoutNullables, hw_machine_type: 'i440', os_type: 'plan9', brand_new_field: { a: 1 } })),
      SAMPLE_TRIPLE,
    );
    expect(snapshot.tags).toEqual({ k: { value: 'v', read_only: true } });
    expect(snapshot.hw_machine_type).toBe('i440');
    expect(snapshot.os_type).toBe('plan9');
    expect(snapshot.brand_new_field).toEqual({ a: 1 });
    expect(snapshot.description).toBeNull();
    expect(snapshot.gpu_driver).toBeNull();
    expect(snapshot.created_at).toBe('2024-05-05T14:51:26.570866Z');
    expect('tags_v2' in snapshot).toBe(false);
  });

  it('rejects an answer for another image, missing or mistyped fields, and ambiguous tags', () => {
    expect(rejection(sampleImage({ ...SAMPLE_TRIPLE, imageId: 'other' }))).toBe(
      'answer is for image "other", not the requested 8cab6f28-09ca-4201-b3f7-23c7893f4bd6',
    );
    const { name: _n, ...nameless } = sampleImage(SAMPLE_TRIPLE);
    expect(rejection({ ...nameless, min_ram: '1024', size: -1 })).toBe(
      'answer does not fit the image schema: name: required; min_ram: expected number, received string; size: Too small: expected number to be >=0',
    );
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), created_at: 'last tuesday' })).toBe(
      'answer does not fit the image schema: created_at: not an ISO 8601 date-time: "last tuesday"',
    );
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), tags: undefined })).toBe('tags: required (as tags or tags_v2)');
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), tags_v2: [] })).toBe('tags and tags_v2: both present, expected one');
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), tags: [{ key: 'a', value: '1', read_only: false }, { key: 'a', value: '2', read_only: false }] })).toBe(
      'tags[1].key: "a" appears twice',
    );
    expect(rejection([1, 2])).toBe('answer does not fit the image schema: (top level): expected object, received array');
  });

  it('quotes at most 200 characters of the body in the error', () => {
    const body = { ...sampleImage(SAMPLE_TRIPLE), name: 7, description: 'y'.repeat(5000) };
    expect(() => validateImage(body, SAMPLE_TRIPLE)).toThrow(
      `answer does not fit the image schema: name: expected string, received number; body: ${JSON.stringify(body).slice(0, 200)}…`,
    );
  });
});
