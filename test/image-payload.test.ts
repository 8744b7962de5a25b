import { describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { normalizeTimestamp, postgresTimestamp } from '../src/gcore/api-date.js';
import { contentHash } from '../src/images/image-diff.js';
import { InvalidPayloadError, validateImage } from '../src/images/image-payload.js';
import { parseJsonExactly } from '../src/images/json-text.js';

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

  it('accepts real calendar dates only, and writes the ones Postgres reads differently its way', () => {
    expect(normalizeTimestamp('2023-02-30T00:00:00Z')).toBeNull();
    expect(normalizeTimestamp('2023-02-29T00:00:00Z')).toBeNull();
    expect(normalizeTimestamp('2024-02-29T00:00:00Z')).toBe('2024-02-29T00:00:00Z');
    expect(normalizeTimestamp('2024-13-01T00:00:00Z')).toBeNull();
    expect(normalizeTimestamp('2024-01-01T24:00:00Z')).toBeNull();
    expect(normalizeTimestamp('2024-01-01T00:00:00+24:00')).toBeNull();
    expect(normalizeTimestamp('2016-12-31T23:59:60Z')).toBe('2017-01-01T00:00:00Z');
    expect(normalizeTimestamp('9999-12-31T23:59:59-01:00')).toBe('10000-01-01T00:59:59Z');
    expect(normalizeTimestamp('0000-01-01T00:30:00+01:00')).toBe('-0001-12-31T23:30:00Z');
    expect(postgresTimestamp('0000-03-01T00:00:00.5Z')).toBe('0001-03-01T00:00:00.5+00 BC');
    expect(postgresTimestamp('-0001-12-31T23:30:00Z')).toBe('0002-12-31T23:30:00+00 BC');
    expect(postgresTimestamp('10000-01-01T00:59:59Z')).toBe('10000-01-01T00:59:59Z');
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), created_at: '2023-02-30T00:00:00Z' })).toBe(
      'answer does not fit the image schema: created_at: not a real ISO 8601 date-time: "2023-02-30T00:00:00Z"',
    );
  });

  it('accepts tags as tags or tags_v2, unknown enum values, extra fields and absent nullable fields', () => {
    const base = sampleImage(SAMPLE_TRIPLE, { tags: undefined, tags_v2: [{ key: 'k', value: 'v', read_only: true }] });
    const { description: _d, gpu_driver: _g, ...withoutNullables } = base;
    const { snapshot, warnings } = validateImage(
      JSON.parse(JSON.stringify({ ...withoutNullables, hw_machine_type: 'i440', os_type: 'plan9', brand_new_field: { a: 1 } })),
      SAMPLE_TRIPLE,
    );
    expect(warnings).toEqual([]);
    expect(snapshot.tags).toEqual({ k: { value: 'v', read_only: true } });
    expect(snapshot.hw_machine_type).toBe('i440');
    expect(snapshot.os_type).toBe('plan9');
    expect(snapshot.brand_new_field).toEqual({ a: 1 });
    expect(snapshot.description).toBeNull();
    expect(snapshot.gpu_driver).toBeNull();
    expect(snapshot.created_at).toBe('2024-05-05T14:51:26.570866Z');
    expect('tags_v2' in snapshot).toBe(false);
  });

  it('rejects an answer for another image, missing or mistyped fields, and missing tags', () => {
    expect(rejection(sampleImage({ ...SAMPLE_TRIPLE, imageId: 'other' }))).toBe(
      'answer is for image "other", not the requested 8cab6f28-09ca-4201-b3f7-23c7893f4bd6',
    );
    const { name: _n, ...nameless } = sampleImage(SAMPLE_TRIPLE);
    expect(rejection({ ...nameless, min_ram: '1024' })).toBe(
      'answer does not fit the image schema: name: required; min_ram: expected number, received string',
    );
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), created_at: 'last tuesday' })).toBe(
      'answer does not fit the image schema: created_at: not a real ISO 8601 date-time: "last tuesday"',
    );
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), tags: undefined })).toBe('tags_v2: required (older answers name it tags)');
    expect(rejection({ ...sampleImage(SAMPLE_TRIPLE), tags: undefined, tags_v2: null })).toBe(
      'answer does not fit the image schema: tags_v2: expected array, received null',
    );
    expect(rejection([1, 2])).toBe('answer does not fit the image schema: (top level): expected an object, received array');
  });

  it('accepts what the contract allows and warns where it is stricter: duplicate tags, long tags, both tag lists', () => {
    const tag = (key: string, value: string) => ({ key, value, read_only: false });
    const { snapshot, warnings } = validateImage(
      {
        ...sampleImage(SAMPLE_TRIPLE),
        size: -1,
        min_ram: 4294967296,
        display_order: 3000000000,
        tags: [tag('x', '1')],
        tags_v2: [tag('a', '1'), tag('a', '2'), tag('k'.repeat(300), 'v')],
      },
      SAMPLE_TRIPLE,
    );
    expect(snapshot.size).toBe(-1);
    expect(snapshot.min_ram).toBe(4294967296);
    expect(snapshot.display_order).toBe(3000000000);
    expect(snapshot.tags).toEqual({ a: { value: '2', read_only: false }, ['k'.repeat(300)]: { value: 'v', read_only: false } });
    expect(warnings).toEqual([
      'tags: differs from tags_v2; stored tags_v2',
      'tags[1].key: "a" appears twice; kept the last',
      'tags[2]: longer than the documented 255 characters',
    ]);
  });

  it('keeps tag keys and unknown fields named like object properties as data', () => {
    const body = parseJsonExactly(
      JSON.stringify({
        ...sampleImage(SAMPLE_TRIPLE),
        tags: [
          { key: 'constructor', value: 'c', read_only: false },
          { key: '__proto__', value: 'p', read_only: true },
        ],
      }).replace('"description":null', '"__proto__":{"x":1},"constructor":7'),
    ) as Record<string, unknown>;
    const { snapshot } = validateImage(body, SAMPLE_TRIPLE);
    expect(Object.keys(snapshot.tags)).toEqual(['constructor', '__proto__']);
    expect(Object.hasOwn(snapshot, '__proto__') && Object.hasOwn(snapshot, 'constructor')).toBe(true);
    expect(JSON.stringify(snapshot)).toContain('"__proto__":{"x":1},"constructor":7');
  });

  it('keeps numbers a double cannot hold as sent, and refuses them in typed fields', () => {
    const text = JSON.stringify(sampleImage(SAMPLE_TRIPLE)).replace('{', '{"big":12345678901234567890123,"huge":1e400,"fine":1.50,');
    const { snapshot, raw } = validateImage(parseJsonExactly(text), SAMPLE_TRIPLE);
    expect(JSON.stringify(raw)).toContain('"big":12345678901234567890123,"huge":1e400,"fine":1.5,');
    expect(JSON.stringify(snapshot)).toContain('"big":12345678901234567890123');
    const typed = JSON.stringify(sampleImage(SAMPLE_TRIPLE)).replace('"size":2361393152', '"size":123456789012345678901');
    expect(rejection(parseJsonExactly(typed))).toBe(
      'answer does not fit the image schema: size: 123456789012345678901 is beyond what a double holds exactly',
    );
  });

  it('with exactNumbers false (the usage lists, which read no number) parses numbers as doubles, names as written', () => {
    expect(parseJsonExactly('{"big":12345678901234567890123,"fine":1.50,"\\"":"e123"}', false)).toEqual({
      big: 1.2345678901234568e22,
      fine: 1.5,
      '"': 'e123',
    });
  });

  it('reads member names written with escapes as written, where V8 may not (nodejs/node#63785)', () => {
    // After this parse, V8 (Node 24) reads the escaped names below as "\\".
    JSON.parse('{"h":[],"\\\\":0}');
    expect(Object.keys(parseJsonExactly('{"h":1,"\\"":2}') as object)).toEqual(['h', '"']);
    expect(Object.keys(parseJsonExactly('{"h":1,"\\u0002":2}') as object)).toEqual(['h', '\u0002']);
  });

  it('refuses a number beyond what Postgres stores anywhere in the answer, which would fail its whole batch', () => {
    const text = JSON.stringify(sampleImage(SAMPLE_TRIPLE)).replace(
      '{',
      '{"most":9e131071,"least":1e-16383,"extra":{"far":[1e131072]},"tiny":1.5e-16383,',
    );
    expect(rejection(parseJsonExactly(text))).toBe(
      "answer does not fit the image schema: extra.far[0]: 1e131072 is beyond what Postgres' numeric holds; tiny: 1.5e-16383 is beyond what Postgres' numeric holds",
    );
  });

  it('keeps one of the names that become one when made storable, whatever their order: the last tag, the non-null member named last', () => {
    const tag = (key: string, value: string) => ({ key, value, read_only: false });
    const members: Array<[string, unknown]> = [
      ['x\u0000', 1],
      ['x\ud800', 2],
      ['x\uFFFD', null],
    ];
    const image = (entries: Array<[string, unknown]>) =>
      validateImage(
        {
          ...sampleImage(SAMPLE_TRIPLE),
          tags: [tag('k\u0000', '1'), tag('k\ud800', '2'), tag('k\u0000', '3')],
          ...Object.fromEntries(entries),
        },
        SAMPLE_TRIPLE,
      );
    const { snapshot, warnings } = image(members);
    expect(snapshot.tags).toEqual({ 'k\uFFFD': { value: '3', read_only: false } });
    expect(warnings.slice(0, 2)).toEqual([
      'tags[1].key: "k\uFFFD" appears twice; kept the last',
      'tags[2].key: "k\uFFFD" appears twice; kept the last',
    ]);
    expect(snapshot['x\uFFFD']).toBe(2);
    expect(contentHash(image(members.toReversed()).snapshot)).toBe(contentHash(snapshot));
    expect(contentHash(image(members.slice(0, 2)).snapshot)).toBe(contentHash(snapshot));
  });

  it('stores NUL and lone surrogates as U+FFFD, with a warning', () => {
    const { snapshot, raw, warnings } = validateImage(
      {
        ...sampleImage(SAMPLE_TRIPLE),
        name: 'a\u0000b',
        description: 'x\ud800y',
        tags: [{ key: 'k\u0000', value: 'v', read_only: false }],
      },
      SAMPLE_TRIPLE,
    );
    expect([snapshot.name, snapshot.description, Object.keys(snapshot.tags)[0]]).toEqual(['a\uFFFDb', 'x\uFFFDy', 'k\uFFFD']);
    expect((raw as { name: string }).name).toBe('a\uFFFDb');
    expect(warnings).toEqual([
      'name, description, tags.k\u0000 (key): NUL or lone surrogate characters stored as U+FFFD (Postgres cannot hold them)',
    ]);
  });

  it('quotes at most 200 characters of the body in the error', () => {
    const body = { ...sampleImage(SAMPLE_TRIPLE), name: 7, description: 'y'.repeat(5000) };
    expect(() => validateImage(body, SAMPLE_TRIPLE)).toThrow(
      `answer does not fit the image schema: name: expected string, received number; body: ${JSON.stringify(body).slice(0, 200)}…`,
    );
  });
});
