import { describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { canonicalJson, contentHash, diffSnapshots } from '../src/images/image-diff.js';
import { validateImage } from '../src/images/image-payload.js';

const snapshot = (overrides: Record<string, unknown> = {}) => validateImage(sampleImage(SAMPLE_TRIPLE, overrides), SAMPLE_TRIPLE).snapshot;

describe('image diff', () => {
  it('serializes canonically whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, null, { f: 2, e: 1 }], c: null } })).toBe('{"a":{"d":[1,null,{"e":1,"f":2}]},"b":1}');
    expect(contentHash(snapshot())).toBe(
      contentHash(validateImage(JSON.parse(JSON.stringify(sampleImage(SAMPLE_TRIPLE))), SAMPLE_TRIPLE).snapshot),
    );
  });

  it('treats the same instant written differently as no change', () => {
    expect(contentHash(snapshot({ updated_at: '2024-05-06T12:12:00+03:00' }))).toBe(contentHash(snapshot()));
  });

  it('lists one change per field, tags per key', () => {
    const before = snapshot();
    const after = snapshot({
      name: 'renamed',
      size: null,
      new_field: 'x',
      tags: [
        { key: 'team', value: 'data', read_only: false },
        { key: 'env', value: 'prod', read_only: false },
      ],
    });
    expect(diffSnapshots(before, after)).toEqual([
      { field: 'name', oldValue: 'ubuntu-22.04-x64-4bd6', newValue: 'renamed' },
      { field: 'new_field', oldValue: null, newValue: 'x' },
      { field: 'size', oldValue: 2361393152, newValue: null },
      { field: 'tags.env', oldValue: null, newValue: { value: 'prod', read_only: false } },
      { field: 'tags.os', oldValue: { value: 'ubuntu', read_only: true }, newValue: null },
      { field: 'tags.team', oldValue: { value: 'platform', read_only: false }, newValue: { value: 'data', read_only: false } },
    ]);
    expect(diffSnapshots(before, snapshot())).toEqual([]);
  });
});
