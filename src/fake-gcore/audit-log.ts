// The fake's audit log of user actions (GET /cloud/v1/user_actions): what its
// admin routes did to images, by whom, as UserActionSerializer entries of the
// account that acted, with the contract's filters, paging and order.
import type { Triple } from '../interfaces.js';
import { pageOf, QueryError, readPaging } from './list-queries.js';

/** The action types the contract lists (ActionType); a filter naming another is refused with 422. */
const ACTION_TYPES = new Set([
  'activate', 'attach', 'change_logging_resources', 'create', 'create_access_rule', 'deactivate', 'delete',
  'delete_access_rule', 'delete_metadata', 'detach', 'disable_logging', 'disable_portsecurity', 'download',
  'enable_logging', 'enable_portsecurity', 'failover', 'put_into_servergroup', 'reboot', 'reboot_hard', 'rebuild',
  'regenerate_credentials', 'remove_from_servergroup', 'replace', 'replace_metadata', 'resize', 'resume', 'retype',
  'revert', 'scale_down', 'scale_up', 'start', 'stop', 'suspend', 'update', 'update_metadata', 'upgrade',
]); // prettier-ignore

/** The API groups the fake logs; the contract's other groups are accepted as filters and match nothing here. */
const API_GROUPS = new Set([
  'ai_cluster', 'caas_container', 'caas_key', 'caas_pull_secret', 'dbaas_postgres', 'ddos_profile', 'faas_function',
  'faas_key', 'faas_namespace', 'file_shares', 'floating_ip', 'image', 'inference_at_the_edge', 'instance',
  'instance_isolation', 'k8s_cluster', 'k8s_cluster_template', 'k8s_pool', 'laas', 'laas_topic', 'lb_health_monitor',
  'lb_l7policy', 'lb_l7rule', 'lblistener', 'lbpool', 'lbpool_member', 'lifecycle_policy',
  'lifecycle_policy_volume_member', 'loadbalancer', 'network', 'port', 'project', 'quota_limit_request', 'registry',
  'reservation', 'reserved_fixed_ip', 'role', 'router', 'secret', 'securitygroup', 'securitygrouprule', 'servergroup',
  'shared_flavor', 'shared_image', 'shared_network', 'snapshot', 'snapshot_schedule', 'ssh_key', 'subnet', 'user',
  'vip_ip_addresses', 'volume',
]); // prettier-ignore

/** Who acted: a user by email, or Gcore itself (no email, user 0). */
export interface Actor {
  email: string | null;
  userId?: number;
  tokenId?: number | null;
  issuedByUserId?: number | null;
  ip?: string | null;
  userAgent?: string | null;
}

export interface ActionInput {
  /** The fake account whose log holds it. */
  account: string;
  actionType: string;
  triple: Triple;
  actor: Actor;
  apiGroup?: 'image' | 'shared_image';
  actionData?: Record<string, unknown> | null;
  /** Its timestamp, any date (one ahead of every clock, as a Gcore node with a fast clock or a forged entry gives); the log's clock when absent. */
  at?: Date;
  /**
   * Logged before Gcore has filled it with all it should hold (is_complete false), naming the image
   * only when `namesImage`; complete() fills it in later.
   */
  incomplete?: { namesImage: boolean };
}

interface Entry {
  account: string;
  /** Sort key: the instant in microseconds, so entries that share a timestamp keep their order of insertion after it. */
  micros: bigint;
  seq: number;
  body: Record<string, unknown>;
  /** The resource the entry is about, named in `resources` once complete. */
  resource: Record<string, unknown>;
}

/** A user id for an email, stable within a run: the same person is always the same id. */
function userIdOf(email: string | null): number {
  if (email === null) return 0;
  let hash = 7;
  for (const char of email) hash = (hash * 31 + char.charCodeAt(0)) % 1_000_000;
  return 100_000 + hash;
}

/** An ISO date-time as microseconds since the epoch; undefined when it is not one. */
function micros(text: string): bigint | undefined {
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?$/.exec(text);
  const ms = match ? Date.parse(`${match[1]}${match[3] ?? 'Z'}`) : Number.NaN;
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1000n + BigInt((match![2] ?? '').padEnd(6, '0'));
}

function timestampFilter(query: URLSearchParams, name: string): bigint | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const value = micros(raw);
  if (value === undefined) throw new QueryError(`${name}: must be an ISO formatted datetime (got "${raw}")`);
  return value;
}

function enumFilter(query: URLSearchParams, name: string, allowed: Set<string>): Set<string> | undefined {
  const values = query.getAll(name);
  for (const value of values) if (!allowed.has(value)) throw new QueryError(`${name}: "${value}" is not a valid choice`);
  return values.length > 0 ? new Set(values) : undefined;
}

function integerFilter(query: URLSearchParams, name: string): Set<number> | undefined {
  const values = query.getAll(name);
  for (const value of values) if (!/^\d{1,18}$/.test(value)) throw new QueryError(`${name}: must be integers (got "${value}")`);
  return values.length > 0 ? new Set(values.map(Number)) : undefined;
}

export class FakeAuditLog {
  /** When entries are stamped; tests set a fixed instant to make entries share a timestamp. */
  clock: () => Date = () => new Date();
  /** When true, from_timestamp is ignored, as a server that does not know it would: every entry comes back. */
  ignoreFrom = false;
  private readonly entries: Entry[] = [];
  private nextId = 1;

  /** @param logged is told of each entry as it is logged (the fake pushes it to the client's subscriptions); it must not throw. */
  constructor(private readonly logged: (account: string, entry: Record<string, unknown>) => void = () => {}) {}

  /**
   * Logs an action of `input.actor` on an image, as Gcore does once the
   * action is done (or, `incomplete`, before it has filled the entry in:
   * complete() does). Returns the entry as the log keeps it: a test may change
   * its fields (not its timestamp) afterwards, as Gcore may complete or
   * correct an entry it has already answered.
   */
  record(input: ActionInput): Record<string, unknown> {
    const at = input.at ?? this.clock();
    const id = String(this.nextId++);
    const { actor, triple } = input;
    const resource = { resource_id: triple.imageId, resource_type: 'image', resource_body: null, search_field: null };
    const body = {
      id,
      // Microseconds, with the "+00:00" zone of the contract's example.
      timestamp: `${at.toISOString().slice(0, 23)}000+00:00`,
      client_id: 1,
      user_id: actor.userId ?? userIdOf(actor.email),
      email: actor.email,
      project_id: triple.projectId,
      region_id: triple.regionId,
      api_group: input.apiGroup ?? 'image',
      action_type: input.actionType,
      action_data: input.actionData ?? null,
      task_id: null,
      user_agent: actor.userAgent ?? (actor.email === null ? null : 'fake-client/1.0'),
      source_user_ip: actor.ip ?? (actor.email === null ? null : '203.0.113.7'),
      acknowledged: false,
      is_complete: input.incomplete === undefined,
      total_price: null,
      token_id: actor.tokenId ?? null,
      issued_by_user_id: actor.issuedByUserId ?? null,
      resources: input.incomplete?.namesImage === false ? [] : [resource],
    };
    this.entries.push({ account: input.account, micros: micros(body.timestamp)!, seq: this.entries.length, body, resource });
    this.logged(input.account, body);
    return body;
  }

  /**
   * Completes an entry logged incomplete, as Gcore does once it has filled it: the same id and
   * time, is_complete true, naming the image it is about. False when no incomplete entry has that id.
   */
  complete(id: string): boolean {
    // Looked for rather than indexed: completions are few, and a benchmark's log holds a million entries.
    const entry = this.entries.find((e) => e.body.id === id);
    if (!entry || entry.body.is_complete !== false) return false;
    entry.body.is_complete = true;
    entry.body.resources = [entry.resource];
    return true;
  }

  /** How many entries the log holds, of every account. */
  get size(): number {
    return this.entries.length;
  }

  /** The page a GET of the account's log asks for. Throws QueryError for what the API refuses with 422. */
  page(query: URLSearchParams, account: string): { count: number; results: unknown[] } {
    const paging = readPaging(query, 1000);
    const order = query.get('order_by') ?? query.get('sorting') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new QueryError(`order_by: must be asc or desc (got "${order}")`);
    const groups = enumFilter(query, 'api_group', API_GROUPS);
    const types = enumFilter(query, 'action_type', ACTION_TYPES);
    const projects = integerFilter(query, 'project_id');
    const regions = integerFilter(query, 'region_id');
    const resources = query.getAll('resource_id');
    const from = this.ignoreFrom ? undefined : timestampFilter(query, 'from_timestamp');
    const to = timestampFilter(query, 'to_timestamp');
    const keep = ({ account: owner, micros: at, body }: Entry) =>
      owner === account &&
      (groups === undefined || groups.has(body.api_group as string)) &&
      (types === undefined || types.has(body.action_type as string)) &&
      (projects === undefined || projects.has(body.project_id as number)) &&
      (regions === undefined || regions.has(body.region_id as number)) &&
      (resources.length === 0 || (body.resources as Array<{ resource_id: string }>).some((r) => resources.includes(r.resource_id))) &&
      (from === undefined || at >= from) &&
      (to === undefined || at <= to);
    const sorted = [...this.entries].sort((a, b) => (a.micros === b.micros ? a.seq - b.seq : a.micros < b.micros ? -1 : 1));
    if (order === 'desc') sorted.reverse();
    const { count, results } = pageOf(sorted, sorted.length, paging, keep);
    return { count, results: results.map((entry) => entry.body) };
  }
}
