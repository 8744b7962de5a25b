// Whether an image, as validation read it, is one a discovery scope's filters
// would list. Used to take in at once an image the audit log says was created,
// and to decide whether an image a listing did not return, but a GET found
// alive, has left its scope. The API documents its filters loosely ("name:
// substring, case-insensitive"), so each filter is read every way the server
// might plausibly read it: only where every reading agrees is the answer
// certain. Where they disagree, the image stays in its scope.
import type { ImageSnapshot, Triple } from '../interfaces.js';
import type { DiscoverFilters, ScopeDefinition } from '../config/scope.js';

/** Every plausible reading of a filter gives the same answer ('in' or 'out'), or they differ ('unsure'). */
export type FilterAnswer = 'in' | 'out' | 'unsure';

/** What a scope says of an image: in it, out of it, or unsure; the latter two name the filter that decided. */
export type ScopeVerdict = { verdict: 'in' } | { verdict: 'out' | 'unsure'; filter: string };

const asciiLower = (text: string) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Case-insensitive comparisons as a server may make them: Unicode lower case, Unicode upper case, or ASCII only. */
const CASE_FOLDS: Array<(text: string) => string> = [(t) => t.toLowerCase(), (t) => t.toUpperCase(), asciiLower];

/** `pattern` read as SQL LIKE would (`%` any run, `_` any one character), anywhere in `text`; both already folded. */
function likeMatch(text: string, pattern: string): boolean {
  const source = [...pattern].map((c) => (c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'))).join('');
  return new RegExp(source, 'su').test(text);
}

/** The readings of a filter: this project's own first (the one matchesFilters uses). */
type Readings = Array<(image: ImageSnapshot) => boolean>;

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** Each filter the scope sets, with its readings; unset filters are left out. */
function filterReadings(filters: DiscoverFilters): Array<[string, Readings]> {
  const readings: Array<[string, Readings]> = [
    ['baremetal', [(image) => image.is_baremetal !== true || filters.baremetal]],
    ['visibility', [(image) => filters.visibility.includes(image.visibility as never)]],
  ];
  const tagValue = (image: ImageSnapshot, key: string, fold: (t: string) => string) =>
    Object.entries(image.tags).find(([k]) => fold(k) === fold(key))?.[1].value;
  if (filters.tagKey) {
    const keys = filters.tagKey;
    readings.push([
      'tag_key',
      [
        (image) => keys.every((key) => Object.hasOwn(image.tags, key)),
        // A server that compares keys case-insensitively.
        (image) => keys.every((key) => tagValue(image, key, (t) => t.toLowerCase()) !== undefined),
      ],
    ]);
  }
  if (filters.tagKeyValue) {
    const pairs = Object.entries(filters.tagKeyValue);
    readings.push([
      'tag_key_value',
      [
        (image) => pairs.every(([key, value]) => Object.hasOwn(image.tags, key) && image.tags[key]!.value === value),
        (image) => pairs.every(([key, value]) => tagValue(image, key, (t) => t.toLowerCase())?.toLowerCase() === value.toLowerCase()),
      ],
    ]);
  }
  if (filters.name !== undefined) {
    const wanted = filters.name;
    readings.push([
      'name',
      [
        ...CASE_FOLDS.map((fold) => (image: ImageSnapshot) => {
          const name = text(image.name);
          return name !== undefined && fold(name).includes(fold(wanted));
        }),
        // A server that filters with ILIKE and does not escape the pattern's wildcards.
        (image) => {
          const name = text(image.name);
          return name !== undefined && likeMatch(name.toLowerCase(), wanted.toLowerCase());
        },
      ],
    ]);
  }
  for (const [field, wanted] of [
    ['os_distro', filters.osDistro],
    ['os_version', filters.osVersion],
  ] as const) {
    if (wanted === undefined) continue;
    readings.push([
      field,
      [
        ...CASE_FOLDS.map((fold) => (image: ImageSnapshot) => {
          const value = text(image[field]);
          return value !== undefined && fold(value) === fold(wanted);
        }),
        // Undocumented: the server may compare these exactly.
        (image) => image[field] === wanted,
      ],
    ]);
  }
  if (filters.architecture !== undefined) {
    const wanted = filters.architecture;
    readings.push(['architecture', [(image) => image.architecture === wanted]]);
  }
  return readings;
}

/** The answer of one filter's readings: certain when they all agree. */
export function agreement(results: boolean[]): FilterAnswer {
  if (results.every(Boolean)) return 'in';
  if (!results.some(Boolean)) return 'out';
  return 'unsure';
}

/** The API's filters, as this project reads them: name a case-insensitive substring, the others equal values. */
export function matchesFilters(image: ImageSnapshot, filters: DiscoverFilters): boolean {
  return filterReadings(filters).every(([, [ours]]) => ours!(image));
}

/** Whether the scope lists the image's project and region (every project, or every region, covers any). */
export function coversTriple(scope: ScopeDefinition, { projectId, regionId }: Triple): boolean {
  return (scope.projects === 'all' || scope.projects.includes(projectId)) && (scope.regions === 'all' || scope.regions.includes(regionId));
}

/**
 * Whether an image the API answered for still belongs to the scope: out when
 * its project or region is not the scope's, or a filter certainly excludes it;
 * unsure when a filter excludes it under some reading but not all.
 */
export function scopeVerdict(scope: ScopeDefinition, triple: Triple, image: ImageSnapshot): ScopeVerdict {
  if (!coversTriple(scope, triple)) return { verdict: 'out', filter: 'projects and regions' };
  let unsure: string | undefined;
  for (const [filter, readings] of filterReadings(scope.filters)) {
    const answer = agreement(readings.map((reading) => reading(image)));
    if (answer === 'out') return { verdict: 'out', filter };
    if (answer === 'unsure') unsure ??= filter;
  }
  return unsure === undefined ? { verdict: 'in' } : { verdict: 'unsure', filter: unsure };
}
