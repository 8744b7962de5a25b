// What a scope asks the list endpoints: the parts of its listing (one project,
// region, endpoint and visibility each) and the query every page of a part sends.
import { VISIBILITIES, type DiscoverFilters, type Visibility } from '../config/scope.js';
import { defaultKinds, KindDefinitionError, kindNamed, type ImageKind, type KindList } from '../images/image-kinds.js';

/** Gcore's largest page, and the default: a listing costs one request per 1,000 images. */
export const PAGE_LIMIT = 1000;
/**
 * The most images one part of a listing may count: a page row and a job per
 * 1,000, so a hostile or broken count (a billion) ends the listing as
 * incomplete instead of queueing a million jobs.
 */
export const MAX_PART_COUNT = 10_000_000;

/** A region as discovery needs it: whether it serves bare-metal images, and has GPU capacity (unknown for a region named by id). */
export interface ScopeRegion {
  id: number;
  baremetal: boolean;
  gpu: boolean;
}

export interface ListPart {
  projectId: number;
  regionId: number;
  /** A kind's list endpoint (image-kinds.ts). */
  endpoint: string;
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

/** The kinds a scope lists in a region: those it names, or where it names none, the kinds listed there by default. */
function regionKinds(filters: DiscoverFilters, region: ScopeRegion): ImageKind[] {
  if (filters.kinds === undefined) return defaultKinds(region);
  return filters.kinds.map((name) => {
    const kind = kindNamed(name);
    if (!kind) throw new KindDefinitionError(`a scope lists kind ${name}, which no definition in this process knows`);
    return kind;
  });
}

/** The lists of the scope's kinds, in the kinds' order and each kind's own, that a region is listed from; bare-metal lists only where the scope and the region both want them. */
function regionLists(filters: DiscoverFilters, region: ScopeRegion): KindList[] {
  return regionKinds(filters, region).flatMap((kind) =>
    kind.lists.filter((list) => !list.baremetal || (filters.baremetal && region.baremetal)),
  );
}

/**
 * Every part of a listing, in a fixed order. Every visibility is one
 * unfiltered list (owned, shared and public images); a subset is one list per
 * value, and an image is in exactly one of them. A list that takes no
 * filters is one part, listed whole: the worker applies the filters.
 */
export function listParts(projects: number[], regions: ScopeRegion[], filters: DiscoverFilters): ListPart[] {
  const every = VISIBILITIES.every((v) => filters.visibility.includes(v));
  const visibilities: Array<Visibility | null> = every ? [null] : VISIBILITIES.filter((v) => filters.visibility.includes(v));
  const parts: ListPart[] = [];
  for (const projectId of projects) {
    for (const region of regions) {
      for (const { endpoint, filters: filtered } of regionLists(filters, region)) {
        if (!filtered) parts.push({ projectId, regionId: region.id, endpoint, query: [] });
        else
          for (const visibility of visibilities)
            parts.push({ projectId, regionId: region.id, endpoint, query: partQuery(filters, visibility) });
      }
    }
  }
  return parts;
}
