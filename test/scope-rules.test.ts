// The rules that decide a discovery scope's membership, as pure functions:
// whether a scope still covers an image a GET found (and where the server may
// read a filter otherwise), when a listing is suspect, how large its sample
// is, and when the sample says the list lied.
import { describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { validateImage } from '../src/images/image-payload.js';
import type { ImageSnapshot } from '../src/interfaces.js';
import { agreement, matchesFilters, scopeVerdict } from '../src/discovery/scope-match.js';
import { contradictions, MIN_SAMPLE, samplePlan, sampleSize, suspicion, type SampleAnswer } from '../src/discovery/scope-sample.js';
import { VISIBILITIES, type DiscoverFilters, type ScopeDefinition } from '../src/config/scope.js';

const triple = { projectId: 1, regionId: 7, imageId: sampleImageId(1) };

/** The sample image as validation reads it, with `overrides` applied to the API's answer. */
function snapshot(overrides: Record<string, unknown> = {}): ImageSnapshot {
  return validateImage(sampleImage(triple, overrides), triple).snapshot;
}

function scope(
  filters: Partial<DiscoverFilters> = {},
  projects: ScopeDefinition['projects'] = [1],
  regions: ScopeDefinition['regions'] = [7],
): ScopeDefinition {
  return { projects, regions, filters: { visibility: [...VISIBILITIES], baremetal: true, ...filters } };
}

const tags = (...pairs: Array<[string, string]>) => ({ tags: pairs.map(([key, value]) => ({ key, value, read_only: false })) });

describe('scopeVerdict: a GET found the image; does the scope still cover it?', () => {
  it('is in when every filter certainly matches, and out when its project or region is not the scope', () => {
    expect(scopeVerdict(scope({ tagKeyValue: { team: 'platform' } }), triple, snapshot())).toEqual({ verdict: 'in' });
    expect(scopeVerdict(scope({}, 'all', 'all'), triple, snapshot())).toEqual({ verdict: 'in' });
    expect(scopeVerdict(scope({}, [2]), triple, snapshot())).toEqual({ verdict: 'out', filter: 'projects and regions' });
    expect(scopeVerdict(scope({}, 'all', [8]), triple, snapshot())).toEqual({ verdict: 'out', filter: 'projects and regions' });
  });

  it('is out when a tag, the visibility, bare metal or the architecture certainly excludes it', () => {
    expect(scopeVerdict(scope({ tagKeyValue: { team: 'platform' } }), triple, snapshot(tags(['team', 'data'])))).toEqual({
      verdict: 'out',
      filter: 'tag_key_value',
    });
    expect(scopeVerdict(scope({ tagKey: ['env'] }), triple, snapshot())).toEqual({ verdict: 'out', filter: 'tag_key' });
    expect(scopeVerdict(scope({ visibility: ['private'] }), triple, snapshot({ visibility: 'shared' }))).toEqual({
      verdict: 'out',
      filter: 'visibility',
    });
    expect(scopeVerdict(scope({ baremetal: false }), triple, snapshot({ is_baremetal: true }))).toEqual({
      verdict: 'out',
      filter: 'baremetal',
    });
    expect(scopeVerdict(scope({ architecture: 'aarch64' }), triple, snapshot())).toEqual({ verdict: 'out', filter: 'architecture' });
    expect(scopeVerdict(scope({ name: 'windows' }), triple, snapshot())).toEqual({ verdict: 'out', filter: 'name' });
  });

  it('is unsure where the server may read a filter otherwise: case of tags, non-ASCII case folding, LIKE wildcards, exact OS names', () => {
    // A tag key that differs only in case: exact by this worker, maybe not by the server.
    expect(scopeVerdict(scope({ tagKey: ['Team'] }), triple, snapshot())).toEqual({ verdict: 'unsure', filter: 'tag_key' });
    expect(scopeVerdict(scope({ tagKeyValue: { team: 'Platform' } }), triple, snapshot())).toEqual({
      verdict: 'unsure',
      filter: 'tag_key_value',
    });
    // "ß" upper-cases to "SS": the name matches "STRASSE" under one case folding and not another.
    expect(scopeVerdict(scope({ name: 'strasse' }), triple, snapshot({ name: 'Straße-image' }))).toEqual({
      verdict: 'unsure',
      filter: 'name',
    });
    expect(scopeVerdict(scope({ name: 'ÄRGER' }), triple, snapshot({ name: 'ärger-image' }))).toEqual({
      verdict: 'unsure',
      filter: 'name',
    });
    // An unescaped "_" is any character to ILIKE.
    expect(scopeVerdict(scope({ name: 'ubuntu_22' }), triple, snapshot())).toEqual({ verdict: 'unsure', filter: 'name' });
    expect(scopeVerdict(scope({ osDistro: 'Ubuntu' }), triple, snapshot())).toEqual({ verdict: 'unsure', filter: 'os_distro' });
    // ASCII text in the same case reads the same every way.
    expect(scopeVerdict(scope({ name: 'UBUNTU-22', osDistro: 'ubuntu', osVersion: '22.04' }), triple, snapshot())).toEqual({
      verdict: 'in',
    });
  });

  it('a certain exclusion outweighs an unsure filter', () => {
    expect(scopeVerdict(scope({ tagKey: ['Team'], visibility: ['public'] }), triple, snapshot())).toEqual({
      verdict: 'out',
      filter: 'visibility',
    });
  });

  it('matchesFilters keeps this worker’s own reading, the first of each filter', () => {
    expect(matchesFilters(snapshot(), scope({ tagKey: ['Team'] }).filters)).toBe(false);
    expect(matchesFilters(snapshot({ name: 'Straße' }), scope({ name: 'STRASSE' }).filters)).toBe(false);
    expect(matchesFilters(snapshot(), scope({ name: 'UBUNTU', osDistro: 'Ubuntu' }).filters)).toBe(true);
  });

  it('agreement is certain only when every reading agrees', () => {
    expect([agreement([true, true]), agreement([false, false]), agreement([true, false]), agreement([false, true])]).toEqual([
      'in',
      'out',
      'unsure',
      'unsure',
    ]);
  });
});

describe('the sample rule', () => {
  it('samples the square root of the absences, at least 10, at most all', () => {
    expect(MIN_SAMPLE).toBe(10);
    expect([0, 1, 10, 11, 99, 100, 101, 500, 1500, 10_000, 1_000_000].map(sampleSize)).toEqual([
      0, 1, 10, 10, 10, 10, 11, 23, 39, 100, 1000,
    ]);
  });

  it('1,500 absences then 500 cost at most ~150 GETs', () => {
    expect(sampleSize(1500) + sampleSize(500)).toBeLessThanOrEqual(150);
  });

  it('samples only a suspect listing, and only when the sample is smaller than all its absences', () => {
    expect(samplePlan(1500, null)).toBe(null);
    expect(samplePlan(1500, 'reason')).toBe(39);
    expect(samplePlan(10, 'reason')).toBe(null);
    expect(samplePlan(11, 'reason')).toBe(10);
    expect(samplePlan(0, 'reason')).toBe(null);
  });

  it('says the list lied when a sampled image is still in the scope or did not answer; a deletion, a leaving or an unsure filter does not', () => {
    const believed: SampleAnswer[] = ['gone', 'left', 'unsure', 'gone'];
    expect(contradictions(believed)).toBe(0);
    expect(contradictions([...believed, 'in'])).toBe(1);
    expect(contradictions([...believed, 'failed', 'in'])).toBe(2);
    expect(contradictions([])).toBe(0);
  });
});

describe('suspicion: what makes a listing contradict what is stored', () => {
  const at = (stored: number, counted: number | null, regionId = 7) => ({ projectId: 1, regionId, stored, counted });

  it('a count below what is stored, an empty answer where images are stored, a project or region not listed', () => {
    expect(suspicion([at(1500, 1000)])).toBe('1/7 counts 1000 images where 1500 are stored');
    expect(suspicion([at(1500, 0)])).toBe('1/7 answered an empty list where 1500 images are stored');
    expect(suspicion([at(30, null)])).toBe('1/7 holds 30 stored images but was not listed (missing from the projects or regions list)');
  });

  it('nothing when the counts cover what is stored, or nothing is stored there', () => {
    expect(suspicion([])).toBe(null);
    expect(suspicion([at(1500, 1500), at(10, 12, 8), at(0, null, 9), at(0, 0, 10)])).toBe(null);
  });

  it('names three contradictions, then how many more', () => {
    const many = [at(5, 0, 1), at(5, 0, 2), at(5, 0, 3), at(5, 0, 4), at(5, 0, 5)];
    expect(suspicion(many)).toMatch(/^1\/1 answered .*; 1\/2 answered .*; 1\/3 answered [^;]*, and 2 more$/);
  });
});
