// What the fake's list endpoints (images, bmimages, projects, regions) take
// and give: their queries, pages, and the project and region records they
// answer with, shaped as the contract's ProjectSerializer and RegionSerializer.
/** An image as the fake stores and serves it (fixtures.ts makes them). */
export type ImagePayload = Record<string, unknown>;

/** The built-in lists, and any other kind's list endpoint (image-kinds.ts) that the server serves. */
export type ListEndpoint = 'images' | 'bmimages' | 'projects' | 'regions' | 'user_actions' | (string & {});
export const LIST_ENDPOINTS: readonly ListEndpoint[] = [
  'images',
  'bmimages',
  'projects',
  'regions',
  'user_actions',
  'volumes',
  'snapshots',
  'gpu_virtual_clusters',
  'gpu_baremetal_clusters',
];

/** Which list requests a fault or a hook applies to; a field left unset matches any. */
export interface ListSelector {
  endpoint: ListEndpoint;
  projectId?: number;
  regionId?: number;
  /** The offset the request asked for (before `ignoreOffset` is applied). */
  offset?: number;
}

/** A routed list request: the path's ids (image lists only) and the query. */
export interface RoutedListRequest {
  endpoint: ListEndpoint;
  projectId?: number;
  regionId?: number;
  query: URLSearchParams;
}

/** A query the real API refuses with 422. */
export class QueryError extends Error {
  override name = 'QueryError';
}

export function selects(selector: ListSelector, request: RoutedListRequest): boolean {
  return (
    selector.endpoint === request.endpoint &&
    (selector.projectId === undefined || selector.projectId === request.projectId) &&
    (selector.regionId === undefined || selector.regionId === request.regionId) &&
    (selector.offset === undefined || selector.offset === requestedOffset(request.query))
  );
}

/** The offset asked for, NaN when it is not a whole number (so no selector's offset matches it). */
function requestedOffset(query: URLSearchParams): number {
  const raw = query.get('offset') ?? '0';
  return /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
}

function wholeNumber(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) throw new QueryError(`${name}: must be a whole number from ${min} to ${max} (got "${raw}")`);
  return value;
}

export interface Paging {
  limit: number;
  offset: number;
}

/** Every list takes at most 1000 a page; images default to the maximum, projects and regions to 100. */
export function readPaging(query: URLSearchParams, defaultLimit: number): Paging {
  return { limit: wholeNumber(query, 'limit', defaultLimit, 1, 1000), offset: wholeNumber(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER) };
}

/**
 * The page at `offset` and the count of every item `keep` keeps. Without a
 * filter the count is `size` and the walk stops at the page's end, so a late
 * page of a large list costs a walk to it, not a walk of everything.
 */
export function pageOf<T>(
  items: Iterable<T>,
  size: number,
  { limit, offset }: Paging,
  keep?: (item: T) => boolean,
): { count: number; results: T[] } {
  const results: T[] = [];
  let count = 0;
  for (const item of items) {
    if (keep && !keep(item)) continue;
    if (count >= offset && results.length < limit) results.push(item);
    count += 1;
    if (!keep && results.length === limit) break;
  }
  return { count: keep ? count : size, results };
}

const VISIBILITIES = ['private', 'public', 'shared'];

interface Tag {
  key: unknown;
  value: unknown;
}

/** Tags as the API names them now (`tags_v2`) or did before (`tags`): both lists of {key, value, read_only}. */
function tagsOf(image: ImagePayload): Tag[] {
  const list = Array.isArray(image.tags_v2) ? image.tags_v2 : Array.isArray(image.tags) ? image.tags : [];
  return list.filter((tag): tag is Tag => typeof tag === 'object' && tag !== null);
}

function tagPairs(raw: string): Record<string, string> {
  let pairs: unknown;
  try {
    pairs = JSON.parse(raw);
  } catch {
    throw new QueryError(`tag_key_value: not JSON (got ${JSON.stringify(raw)})`);
  }
  const valid =
    typeof pairs === 'object' &&
    pairs !== null &&
    !Array.isArray(pairs) &&
    Object.values(pairs).every((value) => typeof value === 'string');
  if (!valid) throw new QueryError(`tag_key_value: must be a JSON object of strings (got ${JSON.stringify(raw)})`);
  return pairs as Record<string, string>;
}

const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : undefined);

/** The image list's filters, as one test; undefined when the query has none. */
export function imageFilter(query: URLSearchParams): ((image: ImagePayload) => boolean) | undefined {
  const tests: Array<(image: ImagePayload) => boolean> = [];
  const visibility = query.get('visibility');
  if (visibility !== null) {
    if (!VISIBILITIES.includes(visibility))
      throw new QueryError(`visibility: must be one of ${VISIBILITIES.join(', ')} (got "${visibility}")`);
    tests.push((image) => image.visibility === visibility);
  }
  const keys = query.getAll('tag_key');
  if (keys.length > 0) tests.push((image) => keys.every((key) => tagsOf(image).some((tag) => tag.key === key)));
  const pairs = query.get('tag_key_value');
  if (pairs !== null) {
    const wanted = Object.entries(tagPairs(pairs));
    tests.push((image) => wanted.every(([key, value]) => tagsOf(image).some((tag) => tag.key === key && tag.value === value)));
  }
  const name = lower(query.get('name'));
  if (name !== undefined) tests.push((image) => lower(image.name)?.includes(name) === true);
  for (const field of ['os_distro', 'os_version']) {
    const wanted = lower(query.get(field));
    if (wanted !== undefined) tests.push((image) => lower(image[field]) === wanted);
  }
  const architecture = query.get('architecture');
  if (architecture !== null) tests.push((image) => image.architecture === architecture);
  return tests.length === 0 ? undefined : (image) => tests.every((test) => test(image));
}

export interface ProjectInput {
  id: number;
  name?: string;
  state?: string;
  deleted_at?: string | null;
}

/** A ProjectSerializer: every field the contract requires. */
export interface ProjectRecord {
  id: number;
  client_id: number;
  name: string;
  description: string | null;
  state: string;
  is_default: boolean;
  created_at: string;
  deleted_at: string | null;
  task_id: string | null;
}

const CREATED_AT = '2024-01-01T00:00:00';

/** Each client has exactly one default project: the server makes the first one put the default. */
export function projectRecord(input: ProjectInput, isDefault: boolean): ProjectRecord {
  const deletedAt = input.deleted_at ?? null;
  return {
    id: input.id,
    client_id: 1,
    name: input.name ?? `project-${input.id}`,
    description: null,
    state: input.state ?? (deletedAt === null ? 'ACTIVE' : 'DELETED'),
    is_default: isDefault,
    created_at: CREATED_AT,
    deleted_at: deletedAt,
    task_id: null,
  };
}

function readBoolean(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null) return false;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new QueryError(`${name}: must be true or false (got "${raw}")`);
}

/** Deleted projects only with include_deleted=true; `name` is a case-insensitive substring, as for images. */
export function projectFilter(query: URLSearchParams): ((project: ProjectRecord) => boolean) | undefined {
  const includeDeleted = readBoolean(query, 'include_deleted');
  const name = lower(query.get('name'));
  if (includeDeleted && name === undefined) return undefined;
  return (project) => (includeDeleted || project.deleted_at === null) && (name === undefined || project.name.toLowerCase().includes(name));
}

type RegionState = 'ACTIVE' | 'DELETED' | 'DELETING' | 'DELETION_FAILED' | 'INACTIVE' | 'MAINTENANCE' | 'NEW';

export interface RegionInput {
  id: number;
  display_name?: string;
  state?: RegionState;
  has_baremetal?: boolean;
  has_ai_gpu?: boolean;
}

/** A RegionSerializer: every field the contract requires, filled with a plain core region's values. */
export function regionRecord(input: RegionInput): Record<string, unknown> {
  return {
    id: input.id,
    display_name: input.display_name ?? `Region ${input.id}`,
    keystone_name: `fake-${input.id}`,
    slug: `fake-${input.id}`,
    state: input.state ?? 'ACTIVE',
    country: 'LU',
    zone: 'EMEA',
    task_id: null,
    endpoint_type: 'public',
    external_network_id: null,
    created_on: CREATED_AT,
    created_at: CREATED_AT,
    keystone_id: input.id,
    has_kvm: true,
    has_baremetal: input.has_baremetal ?? false,
    has_basic_vm: true,
    has_sfs: false,
    has_dbaas: false,
    has_ddos: false,
    vlan_physical_network: 'br-ex',
    available_volume_types: null,
    metrics_database_id: null,
    access_level: 'core',
    has_k8s: false,
    has_ai: false,
    has_ai_gpu: input.has_ai_gpu ?? false,
    coordinates: null,
    file_share_types: null,
  };
}
