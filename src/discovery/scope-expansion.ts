// A scope's projects and regions as ids: those it names, or for `all` every
// project that is not deleted and every active region, listed page by page
// at each tick. A list that cannot be trusted to be whole stops the listing:
// a project missing from it must not look like a project without images.
import type { ListPage, ListRequest } from '../gcore/gcore-client.js';
import { INT4_MAX } from '../config/input-ranges.js';
import { kindNamed } from '../images/image-kinds.js';
import { listParts, PAGE_LIMIT, type ListPart, type ScopeRegion } from '../gcore/list-query.js';
import type { ScopeDefinition } from '../config/scope.js';
import { usageParts } from '../usage/usage-parts.js';

/** The list of projects or regions is not whole; the scope's listing is incomplete. */
export class IncompleteListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteListError';
  }
}

/** Fetches one page of a list, on the shared rate limit. */
export type FetchPage = (request: ListRequest, offset: number) => Promise<ListPage>;

type Item = Record<string, unknown>;

/** Every item of the projects or regions list, each with a distinct id, as many as the list counts. */
async function listEvery(fetchPage: FetchPage, endpoint: 'projects' | 'regions'): Promise<Item[]> {
  const items = new Map<number, Item>();
  let count: number | undefined;
  for (let offset = 0; count === undefined || items.size < count; offset += PAGE_LIMIT) {
    const page = await fetchPage({ endpoint, query: [] }, offset);
    if (count !== undefined && page.count !== count) {
      throw new IncompleteListError(`${endpoint}: the count changed between pages (${count}, then ${page.count})`);
    }
    count = page.count;
    for (const result of page.results) {
      const id = (result as Item | null)?.id;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > INT4_MAX) {
        throw new IncompleteListError(`${endpoint}: a result without a usable id (${JSON.stringify(id) ?? 'none'})`);
      }
      if (items.has(id)) throw new IncompleteListError(`${endpoint}: id ${id} listed twice (does the server honour offset?)`);
      items.set(id, result as Item);
    }
    if (page.results.length === 0) break;
  }
  if (items.size !== count) throw new IncompleteListError(`${endpoint}: ${items.size} listed where the API counts ${count}`);
  return [...items.values()];
}

async function projectIds(fetchPage: FetchPage, projects: ScopeDefinition['projects']): Promise<number[]> {
  if (projects !== 'all') return projects;
  const listed = await listEvery(fetchPage, 'projects');
  const live = listed.filter((p) => p.deleted_at == null && p.state !== 'DELETED').map((p) => p.id as number);
  // An account always has a project: none would make every stored image of the scope look absent.
  if (live.length === 0) throw new IncompleteListError(`projects: none listed that is not deleted (of ${listed.length})`);
  return live;
}

async function scopeRegions(fetchPage: FetchPage, regions: ScopeDefinition['regions']): Promise<ScopeRegion[]> {
  // A region named by id is listed as named, bare-metal images included; its GPU capacity is not read (the regions
  // list is not asked for), so its GPU images are listed where the scope names their kinds.
  if (regions !== 'all') return regions.map((id) => ({ id, baremetal: true, gpu: false }));
  const listed = await listEvery(fetchPage, 'regions');
  const active = listed
    .filter((r) => r.state === 'ACTIVE')
    .map((r) => ({ id: r.id as number, baremetal: r.has_baremetal !== false, gpu: r.has_ai_gpu === true }));
  if (active.length === 0) throw new IncompleteListError(`regions: none listed that is ACTIVE (of ${listed.length})`);
  return active;
}

/** The parts of a scope's listing, its images' and then its usage's; throws an IncompleteListError, or the API's error for a request. */
export async function expandScope(fetchPage: FetchPage, definition: ScopeDefinition): Promise<ListPart[]> {
  // A scope stored by a process that defines a kind this one does not: its listing cannot be whole here.
  const unknown = (definition.filters.kinds ?? []).find((name) => !kindNamed(name));
  if (unknown !== undefined) throw new IncompleteListError(`it lists kind ${unknown}, which no definition in this process knows`);
  const projects = await projectIds(fetchPage, definition.projects);
  const regions = await scopeRegions(fetchPage, definition.regions);
  return [...listParts(projects, regions, definition.filters), ...usageParts(projects, regions, definition.filters)];
}
