// The fake's lists: the stored images filed by project and region (as
// /images and /bmimages, or another kind's list endpoint, list them), the projects and regions, and what is
// injected into list answers (faults, hooks between pages). The server routes
// and authenticates; this answers.
import { kindList } from '../images/image-kinds.js';
import { consumerList } from '../usage/consumer-lists.js';
import { consumerDefaultLimit, consumerFilter } from './consumers.js';
import type { Triple } from '../interfaces.js';
import type { Fault, ListLie } from './faults.js';
import {
  imageFilter,
  pageOf,
  projectFilter,
  projectRecord,
  readPaging,
  regionRecord,
  selects,
  QueryError,
  type RoutedListRequest,
  type ListSelector,
  type ImagePayload,
  type Paging,
  type ProjectInput,
  type ProjectRecord,
  type RegionInput,
} from './list-queries.js';

interface ListFaultRule {
  selector: ListSelector;
  fault: Fault;
  /** How many more pages it applies to; Infinity until cleared. */
  remaining: number;
}

interface ListLieRule {
  selector: ListSelector;
  lie: ListLie;
  /** How many more pages it applies to; Infinity until cleared. */
  remaining: number;
}

/** The items a lying list holds out of those the real one would (already filtered by the query). */
function toldItems<T>(items: T[], lie: ListLie): T[] {
  switch (lie.kind) {
    case 'shortCount':
      return items.slice(0, lie.count);
    case 'empty':
      return [];
    case 'omit':
      return items.filter((item) => !lie.ids.includes((item as { id?: number | string }).id as number | string));
    case 'countOff':
      return items;
  }
}

interface PageHook {
  selector: ListSelector;
  fn: () => void;
  remaining: number;
}

/** One project and region's images by the list endpoint that lists them; each in insertion order. */
type ScopeLists = Map<string, Map<string, ImagePayload>>;

export interface Page {
  count: number;
  results: unknown[];
}

/**
 * Items a list makes when a page asks for them (`fake-api --volumes`): the n-th (from 0) by index, so a
 * page costs its own items, and hundreds of thousands of them cost no memory. They are fixed: served
 * before any item filed on the same list, never changed or deleted.
 */
export interface GeneratedItems {
  count: number;
  item(index: number): ImagePayload;
}

function* generatedFrom(generated: GeneratedItems, start: number): Generator<ImagePayload> {
  for (let index = start; index < generated.count; index++) yield generated.item(index);
}

function* concat<T>(...lists: Array<Iterable<T>>): Generator<T> {
  for (const list of lists) yield* list;
}

const NO_IMAGES = new Map<string, ImagePayload>();

/** The page, as the list tells it: without a lie, as pageOf walks it; with one, of the items the lie keeps. */
function pageTold<T>(
  items: Iterable<T>,
  size: number,
  paging: Paging,
  keep: ((item: T) => boolean) | undefined,
  lie: ListLie | undefined,
): Page {
  if (!lie) return pageOf(items, size, paging, keep);
  if (lie.kind === 'countOff') {
    const page = pageOf(items, size, paging, keep);
    return { ...page, count: Math.max(0, page.count + lie.by) };
  }
  const told = toldItems(
    [...items].filter((item) => !keep || keep(item)),
    lie,
  );
  return pageOf(told, told.length, paging);
}

export class FakeLists {
  /** By `p/r`, so a page of one project and region costs no walk of every image. */
  private readonly scopes = new Map<string, ScopeLists>();
  /** By `p/r/endpoint`: the items a consumer list makes as they are asked for, before those filed on it. */
  private readonly generated = new Map<string, GeneratedItems>();
  private readonly projects = new Map<number, ProjectRecord>();
  private readonly regions = new Map<number, Record<string, unknown>>();
  private faults: ListFaultRule[] = [];
  private lies: ListLieRule[] = [];
  private hooks: PageHook[] = [];

  /**
   * Files an image under its project and region on list `endpoint` (`key` names it), and off
   * `siblings`, the other lists of its kind; a re-filed image keeps its place unless it changes list.
   */
  file(triple: Triple, key: string, payload: ImagePayload, endpoint: string, siblings: readonly string[]): void {
    const scope = `${triple.projectId}/${triple.regionId}`;
    let lists = this.scopes.get(scope);
    if (!lists) this.scopes.set(scope, (lists = new Map()));
    for (const other of siblings) if (other !== endpoint) lists.get(other)?.delete(key);
    let mine = lists.get(endpoint);
    if (!mine) lists.set(endpoint, (mine = new Map()));
    mine.set(key, payload);
  }

  /** Files an item of a consumer list (a volume, snapshot or cluster) by its id, replacing one of that id in place. */
  fileItem(projectId: number, regionId: number, endpoint: string, item: ImagePayload): void {
    this.file({ projectId, regionId, imageId: '' }, String(item.id), item, endpoint, []);
  }

  /** Serves `items` on a list of a project and region, before the items filed there. */
  generate(projectId: number, regionId: number, endpoint: string, items: GeneratedItems): void {
    this.generated.set(`${projectId}/${regionId}/${endpoint}`, items);
  }

  unfile(triple: Triple, key: string, endpoints: readonly string[]): void {
    const lists = this.scopes.get(`${triple.projectId}/${triple.regionId}`);
    for (const endpoint of endpoints) lists?.get(endpoint)?.delete(key);
  }

  /** Adds or replaces a project; the first one put is the client's default project. */
  putProject(project: ProjectInput): void {
    const first = this.projects.keys().next();
    this.projects.set(project.id, projectRecord(project, first.done === true || first.value === project.id));
  }

  putRegion(region: RegionInput): void {
    this.regions.set(region.id, regionRecord(region));
  }

  setFault(selector: ListSelector, fault: Fault, times: number): void {
    this.faults.push({ selector, fault, remaining: times });
  }

  setLie(selector: ListSelector, lie: ListLie, times: number): void {
    this.lies.push({ selector, lie, remaining: times });
  }

  afterPage(selector: ListSelector, fn: () => void, times: number): void {
    this.hooks.push({ selector, fn, remaining: times });
  }

  clearFaults(): void {
    this.faults = [];
    this.lies = [];
    this.hooks = [];
  }

  /** The fault of the earliest rule that matches `request`, counted down. */
  takeFault(request: RoutedListRequest): Fault | undefined {
    const rule = this.faults.find((candidate) => selects(candidate.selector, request));
    if (!rule) return undefined;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.faults = this.faults.filter((other) => other !== rule);
    return rule.fault;
  }

  /** The lie of the earliest rule that matches `request`, counted down. */
  private takeLie(request: RoutedListRequest): ListLie | undefined {
    const rule = this.lies.find((candidate) => selects(candidate.selector, request));
    if (!rule) return undefined;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.lies = this.lies.filter((other) => other !== rule);
    return rule.lie;
  }

  /** The page `request` asks for; from offset 0 when `ignoreOffset`. Throws QueryError for what the API refuses with 422. */
  page(request: RoutedListRequest, ignoreOffset: boolean, visible: number[] | 'all' = 'all'): Page {
    const { endpoint, projectId, regionId, query } = request;
    const consumers = consumerList(endpoint) !== undefined;
    const defaultLimit = endpoint === 'projects' || endpoint === 'regions' ? 100 : consumers ? consumerDefaultLimit(endpoint) : 1000;
    const paging = readPaging(query, defaultLimit);
    if (ignoreOffset) paging.offset = 0;
    const lie = this.takeLie(request);
    if (endpoint === 'projects') {
      // An account lists its own projects only.
      const projects = [...this.projects.values()].filter((p) => visible === 'all' || visible.includes(p.id));
      return pageTold(projects, projects.length, paging, projectFilter(query), lie);
    }
    if (endpoint === 'regions') return pageTold(this.regions.values(), this.regions.size, paging, undefined, lie);
    if (endpoint === 'user_actions') throw new Error("the audit log is the server's to answer (audit-log.ts)");
    if (Number.isNaN(projectId) || Number.isNaN(regionId)) throw new QueryError('project_id, region_id: must be integers');
    const images = this.scopes.get(`${projectId}/${regionId}`)?.get(endpoint) ?? NO_IMAGES;
    // A list that takes no filters answers every image, whatever the query says (as Gcore's GPU lists do).
    const filter = consumers ? consumerFilter(endpoint, query) : kindList(endpoint)?.filters === false ? undefined : imageFilter(query);
    const generated = this.generated.get(`${projectId}/${regionId}/${endpoint}`);
    if (!generated) return pageTold(images.values(), images.size, paging, filter, lie);
    const size = generated.count + images.size;
    // Nothing to filter or tell otherwise: the page starts at its offset, with no walk to it.
    if (!filter && !lie) {
      const start = Math.min(paging.offset, generated.count);
      return pageOf(concat(generatedFrom(generated, start), images.values()), size, { ...paging, offset: paging.offset - start });
    }
    return pageTold(concat(generatedFrom(generated, 0), images.values()), size, paging, filter, lie);
  }

  /** Runs (and counts down) every hook a sent page matches; they are taken first, so one may add another. */
  pageSent(request: RoutedListRequest): void {
    const due = this.hooks.filter((hook) => selects(hook.selector, request));
    for (const hook of due) hook.remaining -= 1;
    this.hooks = this.hooks.filter((hook) => hook.remaining > 0);
    for (const hook of due) hook.fn();
  }
}
