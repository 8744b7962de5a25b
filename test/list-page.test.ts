// A listing's page read and its images' outcomes (src/discovery/list-page.ts), without a server or a store.
import { describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { StoredOutcomes } from '../src/work/image-store.js';
import { listedOutcome, listRequestOf, readListedPage, type ListedImage } from '../src/discovery/list-page.js';
import type { QueuedPage } from '../src/sql/listingPages.js';
import { tripleKey } from '../src/images/triple.js';

const where = { projectId: 1, regionId: 7 };
const triple = (n: number) => ({ ...where, imageId: sampleImageId(n) });
const observedAt = new Date('2026-12-06T02:00:00Z');

describe('readListedPage', () => {
  it('observes each usable image once, counting results without a usable id and ids the page repeats', () => {
    const results = [
      sampleImage(triple(1)),
      { name: 'no id' },
      null,
      sampleImage(triple(1)),
      { ...sampleImage(triple(2)), id: '../../x' },
      sampleImage(triple(3)),
    ];
    const read = readListedPage('acme', where, { count: 6, results, observedAt });
    expect(read.unusable).toBe(3);
    expect(read.repeatedOnPage).toBe(1);
    expect(read.listed.map((l) => l.triple)).toEqual([triple(1), triple(3)]);
    const first = read.listed[0]!;
    expect('observation' in first && first.observation).toMatchObject({ account: 'acme', triple: triple(1), observedAt });
  });

  it('keeps an image that fails validation as its own error, never dropping the rest of the page', () => {
    const read = readListedPage('acme', where, { count: 2, results: [{ id: sampleImageId(4) }, sampleImage(triple(5))], observedAt });
    expect(read.listed.map((l) => 'error' in l)).toEqual([true, false]);
    expect(read.listed[0]!.triple).toEqual(triple(4));
    expect(read.unusable).toBe(0);
  });
});

describe('listedOutcome', () => {
  const observed = (n: number): ListedImage => {
    const read = readListedPage('acme', where, { count: 1, results: [sampleImage(triple(n))], observedAt });
    return read.listed[0]!;
  };

  it('takes what the store said, and unchanged where it said nothing', () => {
    const refused = new Error('refused');
    const stored: StoredOutcomes = new Map<string, 'unchanged' | 'changed' | Error>([
      [tripleKey(triple(1)), 'changed'],
      [tripleKey(triple(2)), 'unchanged'],
      [tripleKey(triple(3)), refused],
    ]);
    expect(listedOutcome(observed(1), stored)).toBe('changed');
    expect(listedOutcome(observed(2), stored)).toBe('unchanged');
    expect(listedOutcome(observed(3), stored)).toEqual({ failure: refused });
    expect(listedOutcome(observed(9), stored)).toBe('unchanged');
  });

  it('fails an image that did not validate, whatever the store holds', () => {
    const invalid = new Error('not an image');
    expect(listedOutcome({ triple: triple(1), error: invalid }, new Map([[tripleKey(triple(1)), 'unchanged']]))).toEqual({
      failure: invalid,
    });
  });
});

describe('listRequestOf', () => {
  it('asks for the page’s endpoint, project, region and query', () => {
    const page: QueuedPage = {
      listingId: 3,
      scopeKey: 's',
      part: 0,
      page: 2,
      projectId: 1,
      regionId: 7,
      endpoint: 'bmimages',
      query: [['visibility', 'private']],
      scopeConfigured: true,
    };
    expect(listRequestOf(page)).toEqual({ endpoint: 'bmimages', projectId: 1, regionId: 7, query: [['visibility', 'private']] });
  });
});
