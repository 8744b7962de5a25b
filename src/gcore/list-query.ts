// What a scope asks the list endpoints: the parts of its listing (one project,
// region, endpoint and visibility each) and the query every page of a part sends.
import { VISIBILITIES, type DiscoverFilters, type Visibility } from '../config/scope.js';

/** Gcore's largest page, and the default: a listing costs one request per 1,000 images. */
export const PAGE_LIMIT = 1000;
/**
 * The most images one part of a listing may count: a page row and a job per
 * 1,000, so a hostile or broken count (a billion) ends the listing as
 * incomplete instead of queueing a million jobs.
 */
export const MAX_PART_COUNT = 10_000_000;

/** A region as discovery needs it: whether it serves bare-metal images (unknown for a region named by id). */
export interface ScopeRegion {
  id: number;
  baremetal: boolean;
}

export interface ListPart {
  projectId: number;
  regionId: number;
  endpoint: 'images' | 'bmimages';
  query: Array<[string, string]>;
}

/** The filters as query parameters; `visibility` is one value (the API takes one) or none for every visibility. */
function partQuery(filters: DiscoverFilters, visibility: Visibility | null): Array<[string, string]> {
  const query: Array<[string, string]> = [];
  if (visibility !== null) query.push(['visibility', visibility]);
  for (const key of filters.tagKey ?? []) query.push(['tag_key', key]);
  if (filters.tagKeyValue) query.push(['tag_key_value', JSON.stringify(filters.tagKeyValue)]);
  if (filters.name !== undefined) query.push(['name', filters.name]);
  if (filters.osDistro !== undefined) query.push(['os_distro', filters.osDistro]);
  if (filters.osVersion !== undefined) query.push(['os_version', filters.osVersion]);
  if (filters.architecture !== undefined) query.push(['architecture', filters.architecture]);
  return query;
}

/**
 * Every part of a listing, in a fixed order. Every visibility is one
 * unfiltered list (owned, shared and public images); a subset is one list per
 * value, and an image is in exactly one of them.
 */
export function listParts(projects: number[], regions: ScopeRegion[], filters: DiscoverFilters): ListPart[] {
  const every = VISIBILITIES.every((v) => filters.visibility.includes(v));
  const visibilities: Array<Visibility | null> = every ? [null] : VISIBILITIES.filter((v) => filters.visibility.includes(v));
  const parts: ListPart[] = [];
  for (const projectId of projects) {
    for (const region of regions) {
      const endpoints = filters.baremetal && region.baremetal ? (['images', 'bmimages'] as const) : (['images'] as const);
      for (const endpoint of endpoints) {
        for (const visibility of visibilities)
          parts.push({ projectId, regionId: region.id, endpoint, query: partQuery(filters, visibility) });
      }
    }
  }
  return parts;
}
