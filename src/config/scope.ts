// A discovery scope: "every image the list endpoints return" for some projects
// and regions, narrowed by the filters the API applies. The scope's key names
// it in Postgres (scopes, targets.scope_key, listings): it is a hash of what
// is listed, not of when, so a new schedule keeps the scope's targets.
import { createHash } from 'node:crypto';
import { DEFAULT_ACCOUNT } from './accounts.js';
import type { Schedule } from '../interfaces.js';
import { firstUnsafe, inert } from '../ops/log-format.js';

export const VISIBILITIES = ['private', 'shared', 'public'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** What the list endpoints are asked to return; the API applies every filter. */
export interface DiscoverFilters {
  /** Every visibility (the default) is listed without a filter; a subset with one listing per value (the API takes one). */
  visibility: Visibility[];
  /** Also list bare-metal images (/bmimages). */
  baremetal: boolean;
  tagKey?: string[];
  tagKeyValue?: Record<string, string>;
  name?: string;
  osDistro?: string;
  osVersion?: string;
  architecture?: string;
  /**
   * The kinds of image listed, by name (image-kinds.ts): each kind's list endpoints. Absent: each
   * kind where it is listed by default (the ordinary kind everywhere, images and bmimages with
   * `baremetal`; the GPU kinds in regions with GPU capacity). A list that takes no filters is listed
   * whole and the filters above are applied here (scope-match.ts).
   */
  kinds?: string[];
  /**
   * Whether each listing also lists who uses the images (volumes, GPU clusters, snapshots of each project and
   * region; src/usage/). Absent: yes; stored only when false. Not part of the scope's key: turning it off
   * keeps the scope and its images.
   */
  usage?: false;
}

/** The kind of explicit images that name none. */
export const DEFAULT_KIND = 'ordinary';

export interface Scope {
  key: string;
  /** What outputs call it: its `name:` in the targets file, else scopeName's. Not part of its key: renaming keeps the scope. */
  name: string;
  /** The account whose key lists it (accounts.ts). */
  account: string;
  /** Project ids, or every project the key can see (listed at each tick). */
  projects: number[] | 'all';
  /** Region ids, or every active region (listed at each tick). */
  regions: number[] | 'all';
  filters: DiscoverFilters;
  schedule: Schedule;
}

/**
 * The key of a scope: equal definitions (ids sorted, filters in a fixed order)
 * share one. The implied account adds nothing, so scopes keep the keys they had
 * before accounts; another account's `all` is another scope.
 */
export function scopeKey(account: string, projects: Scope['projects'], regions: Scope['regions'], filters: DiscoverFilters): string {
  const sorted = (ids: number[] | 'all') => (ids === 'all' ? 'all' : [...ids].sort((a, b) => a - b));
  const definition = {
    projects: sorted(projects),
    regions: sorted(regions),
    visibility: [...filters.visibility].sort(),
    baremetal: filters.baremetal,
    tagKey: filters.tagKey ? [...filters.tagKey].sort() : null,
    tagKeyValue: filters.tagKeyValue ? Object.entries(filters.tagKeyValue).sort(([a], [b]) => (a < b ? -1 : 1)) : null,
    name: filters.name ?? null,
    osDistro: filters.osDistro ?? null,
    osVersion: filters.osVersion ?? null,
    architecture: filters.architecture ?? null,
    // No kinds named adds nothing, so scopes keep the keys they had before kinds.
    ...(filters.kinds === undefined ? {} : { kinds: [...filters.kinds].sort() }),
    ...(account === DEFAULT_ACCOUNT ? {} : { account }),
  };
  return `scope-${createHash('sha256').update(JSON.stringify(definition)).digest('hex').slice(0, 16)}`;
}

const ids = (what: string, given: number[] | 'all') =>
  given === 'all' ? `all ${what}s` : `${what}${given.length === 1 ? '' : 's'} ${[...given].sort((a, b) => a - b).join(',')}`;

/**
 * The name of a scope without a `name:` in the file: its projects, regions
 * and filters, as a person reads them (`project 2, all regions, private`).
 */
export function scopeName(projects: Scope['projects'], regions: Scope['regions'], filters: DiscoverFilters): string {
  const parts = [ids('project', projects), ids('region', regions)];
  if (filters.visibility.length < VISIBILITIES.length) parts.push([...filters.visibility].sort().join('+'));
  if (!filters.baremetal) parts.push('no bare metal');
  for (const key of filters.tagKey ?? []) parts.push(`tag ${key}`);
  for (const [key, value] of Object.entries(filters.tagKeyValue ?? {})) parts.push(`tag ${key}=${value}`);
  if (filters.name !== undefined) parts.push(`name ${JSON.stringify(filters.name)}`);
  const os = [filters.osDistro ?? (filters.osVersion === undefined ? undefined : 'version'), filters.osVersion].filter(Boolean);
  if (os.length > 0) parts.push(`os ${os.join(' ')}`);
  if (filters.architecture !== undefined) parts.push(filters.architecture);
  if (filters.usage === false) parts.push('no usage');
  if (filters.kinds !== undefined) parts.push(`kind${filters.kinds.length === 1 ? '' : 's'} ${[...filters.kinds].sort().join('+')}`);
  return parts.join(', ');
}

/** A `name:` for a scope: printable, one line, short enough for a status line. */
const MAX_SCOPE_NAME_LENGTH = 64;

/** Why a scope's `name:` cannot be used, or null. */
export function scopeNameProblem(name: string): string | null {
  const length = [...name].length;
  if (name.trim().length === 0) return 'must not be empty';
  if (name !== name.trim()) return 'must not begin or end with a space';
  if (length > MAX_SCOPE_NAME_LENGTH) return `must be at most ${MAX_SCOPE_NAME_LENGTH} characters (has ${length})`;
  const bad = firstUnsafe(name);
  if (bad !== undefined) return `must not contain ${inert(JSON.stringify(bad))} (a name is one line of printable characters)`;
  return null;
}

/** What a listing needs of a scope, as the scopes table keeps it. */
export type ScopeDefinition = Pick<Scope, 'projects' | 'regions' | 'filters'>;

/** The architectures the list endpoints filter by. */
export const ARCHITECTURES = ['aarch64', 'x86_64'] as const;

// The list endpoints take tags and text filters of up to 255 characters. The
// API counts code points, so an emoji is one character here as well.
const MAX_FILTER_LENGTH = 255;

/** Why a text filter (name, OS, tag key or value) is too short or too long, or null. */
export function filterTextProblem(text: string): string | null {
  const length = [...text].length;
  if (length === 0) return 'must not be empty';
  if (length > MAX_FILTER_LENGTH) return `must be at most ${MAX_FILTER_LENGTH} characters (has ${length})`;
  return null;
}

/** Why the API would refuse a tag key (`^[^\s=]+$`), or null. */
export function tagKeyProblem(key: string): string | null {
  const bad = /[\s=]/u.exec(key);
  if (bad) return `must not contain ${JSON.stringify(bad[0])} (a tag key has no whitespace or "=")`;
  return filterTextProblem(key);
}

/** Why the API would refuse a tag value (no tabs or line breaks; no space first or last), or null. */
export function tagValueProblem(value: string): string | null {
  const bad = /[\t\n\r\f\v]/.exec(value);
  if (bad) return `must not contain ${JSON.stringify(bad[0])} (a tag value has no tabs or line breaks)`;
  if (value.startsWith(' ') || value.endsWith(' ')) return 'must not begin or end with a space';
  return filterTextProblem(value);
}
