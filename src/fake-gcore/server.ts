// A fake of Gcore's image endpoints for tests, the demo and benchmarks: the
// single-image GET, the lists (images, bare-metal images, projects, regions;
// lists.ts) and the audit log of user actions (audit-log.ts). It serves the
// built-in kinds of image (ordinary, GPU virtual and bare-metal), and any other
// kind a test defines (serveKind), each with its own GET and lists. It answers like
// the real API (auth, JSON NotFoundError, error bodies) and lets a caller
// change, delete and restore images (as a user, logged, or behind the log's
// back) and inject faults, also between the pages of a list. Like Gcore it
// takes subscriptions to the audit log (subscriptions.ts) and pushes each new
// entry to them (push.ts), with faults of its own, and lists the addresses it
// pushes from (egress ranges).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { GPU_BAREMETAL, GPU_VIRTUAL, ORDINARY, type ImageKind } from '../images/image-kinds.js';
import type { Triple } from '../interfaces.js';
import { type ActionInput, type Actor, FakeAuditLog } from './audit-log.js';
import {
  ControlError,
  readActionId,
  readActor,
  readBody,
  readEvery,
  readIncompleteAction,
  readKeyRefusal,
  readListFault,
  readListLie,
  readOn,
  readPushFault,
} from './control.js';
import type { Fault, ListLie } from './faults.js';
import { FakePusher, type PushFault, type PushStats } from './push.js';
import { readJsonObject } from './request-body.js';
import {
  AMQP_TEST_MESSAGE,
  allowsMethod,
  FakeSubscriptions,
  subscriptionRoute,
  takesBody,
  type AmqpSubscription,
  type SubscriptionRoute,
  type WebhookSubscription,
} from './subscriptions.js';
import {
  QueryError,
  type ImagePayload,
  type ListEndpoint,
  type ListSelector,
  type ProjectInput,
  type RegionInput,
  type RoutedListRequest,
} from './list-queries.js';
import { FakeLists, type GeneratedItems } from './lists.js';
import { CONSUMER_LISTS, type ConsumerList } from '../usage/consumer-lists.js';

interface FaultRule {
  fault: Fault;
  /** How many more requests it applies to; Infinity until cleared. */
  remaining: number;
}

/** A key the fake accepts, and the projects it reaches (each Gcore account sees its own). */
export interface FakeAccount {
  apiKey: string;
  projects: number[] | 'all';
  /** The Gcore client it belongs to, whose audit-log subscriptions it shares with the client's other accounts; its own name when absent. */
  client?: string;
}

export interface FakeGcoreOptions {
  /** The one key accepted, reaching every project, when `accounts` is absent. */
  apiKey?: string;
  /** Several accounts by name, each with its key and projects; a request for another account's project is refused with 403. */
  accounts?: Record<string, FakeAccount>;
  /** Added to every answer. */
  latencyMs?: number;
}

/** `image` is the ordinary kind's single-image GET, `image:<kind>` another kind's; the others are lists. */
export type Endpoint = 'image' | ListEndpoint;

type Route = { endpoint: string; kind: ImageKind; imageKey: string; rawId: string } | RoutedListRequest;

interface StoredImage {
  triple: Triple;
  kind: ImageKind;
  payload: ImagePayload;
}

/** A kind the fake serves: the patterns of its GET and lists, and the list an image of it is filed on. */
interface ServedKind {
  kind: ImageKind;
  get: RegExp;
  lists: Array<{ endpoint: string; pattern: RegExp }>;
  listOf: (payload: ImagePayload) => string;
}

/** A kind's path template as a pattern, each {name} a named group of one segment. */
function pathPattern(template: string): RegExp {
  const parts = template.split(/\{(\w+)\}/);
  const source = parts.map((part, n) => (n % 2 === 1 ? `(?<${part}>[^/]+)` : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`);
}

function servedKind(kind: ImageKind, listOf: (payload: ImagePayload) => string): ServedKind {
  return {
    kind,
    get: pathPattern(kind.getPath),
    lists: kind.lists.map((l) => ({ endpoint: l.endpoint, pattern: pathPattern(l.path) })),
    listOf,
  };
}

const ORDINARY_SERVED = servedKind(ORDINARY, (payload) => (payload.is_baremetal === true ? 'bmimages' : 'images'));
const OTHER_LIST_PATH = /^\/cloud\/v1\/(projects|regions|user_actions)$/;
const EGRESS_PATH = '/cloud/public/v1/ipranges/egress';
const CONSUMER_PATHS = CONSUMER_LISTS.map((list) => ({ endpoint: list.endpoint, pattern: pathPattern(list.path) }));
const ALL = '*';

function key({ projectId, regionId, imageId }: Triple): string {
  return `${projectId}/${regionId}/${imageId}`;
}

function storeKey(triple: Triple, kind: ImageKind): string {
  return kind === ORDINARY ? key(triple) : `${kind.name}:${key(triple)}`;
}

/** A path id the API takes as an integer; NaN (refused with 422 once past auth) when it is not one. */
function pathInteger(raw: string): number {
  return /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
}

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const queryAt = url.indexOf('?');
  return { path: queryAt === -1 ? url : url.slice(0, queryAt), query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)) };
}

function routeOf(url: string, kinds: Iterable<ServedKind>): Route | undefined {
  const { path, query } = splitUrl(url);
  for (const served of kinds) {
    const image = served.get.exec(path)?.groups;
    if (image) {
      const { project_id: project, region_id: region, image_id: rawId } = image as Record<string, string>;
      const endpoint = served.kind === ORDINARY ? 'image' : `image:${served.kind.name}`;
      return { endpoint, kind: served.kind, imageKey: `${project}/${region}/${decodeURIComponent(rawId!)}`, rawId: rawId! };
    }
    for (const list of served.lists) {
      const ids = list.pattern.exec(path)?.groups;
      if (ids) return { endpoint: list.endpoint, projectId: pathInteger(ids.project_id!), regionId: pathInteger(ids.region_id!), query };
    }
  }
  for (const list of CONSUMER_PATHS) {
    const ids = list.pattern.exec(path)?.groups;
    if (ids) return { endpoint: list.endpoint, projectId: pathInteger(ids.project_id!), regionId: pathInteger(ids.region_id!), query };
  }
  const other = OTHER_LIST_PATH.exec(path);
  return other ? { endpoint: other[1] as ListEndpoint, query } : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function gcoreError(exceptionClass: string, message: string) {
  return { exception_class: exceptionClass, message, request_id: 'fake-request' };
}

function sendUnauthenticated(res: ServerResponse): void {
  sendJson(res, 401, gcoreError('NotAuthenticated', 'Authentication credentials were not provided.'));
}

/** What the subscription endpoints answer an API key with when they want a user token (refuseKeyOnSubscriptions). */
const USER_TOKEN_WANTED = {
  401: gcoreError('NotAuthenticated', 'API key authentication is not accepted here: a user token is required.'),
  403: gcoreError('PermissionDenied', 'API key authentication is not accepted here: a user token is required.'),
};

/** Answers with `fault` when it is one that replaces the answer; false for those that only delay it. */
function sendFault(res: ServerResponse, fault: Fault): boolean {
  switch (fault.kind) {
    case 'status':
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body ?? JSON.stringify(gcoreError('InternalServerError', `injected ${fault.status}`)));
      return true;
    case 'bare404':
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('');
      return true;
    case 'rateLimited':
      sendJson(res, 429, gcoreError('TooManyRequests', 'Too many requests'), { 'retry-after': fault.retryAfter });
      return true;
    case 'malformed':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id": "truncated');
      return true;
    default:
      return false;
  }
}

type RequestCounts = Record<'image' | 'images' | 'bmimages' | 'projects' | 'regions' | 'user_actions', number> & Record<string, number>;
const noRequests = (): RequestCounts => ({ image: 0, images: 0, bmimages: 0, projects: 0, regions: 0, user_actions: 0 });

export class FakeGcore {
  readonly apiKey: string;
  latencyMs: number;
  /** When true every list answers from offset 0, as a server that does not honour `offset` would; `count` is unchanged. */
  ignoreOffset = false;
  /** By triple for the ordinary kind, by `<kind>:<triple>` for another (storeKey): one triple may be on several kinds' endpoints. */
  private readonly images = new Map<string, StoredImage>();
  /** The built-in kinds are served from the start; a kind a test defines, once it calls serveKind. */
  private readonly kinds = new Map<string, ServedKind>([
    [ORDINARY.name, ORDINARY_SERVED],
    ...[GPU_VIRTUAL, GPU_BAREMETAL].map((kind): [string, ServedKind] => [kind.name, servedKind(kind, () => kind.lists[0]!.endpoint)]),
  ]);
  /** The same images by project and region, the projects and regions, and what list answers are given. */
  private readonly lists = new FakeLists();
  private readonly faults = new Map<string, FaultRule>();
  private server: Server | undefined;
  /** API requests (every endpoint), by the second (epoch seconds) they arrived in. */
  readonly requestsPerSecond = new Map<number, number>();
  requestCount = 0;
  readonly requestsByEndpoint = noRequests();
  /** When each API request arrived (ms since the epoch), for tests that check pauses. */
  readonly requestTimes: number[] = [];
  /** Authorization headers seen, for tests that check what was sent. */
  readonly authorizations = new Set<string>();
  /** API requests by account name (never by key), then by second, for tests of per-account limits. */
  readonly requestsPerSecondByAccount = new Map<string, Map<number, number>>();
  private readonly accounts: Map<string, FakeAccount & { name: string }>;
  private readonly rejected = new Set<string>();
  /** Accounts to reject once they have sent this many more requests. */
  private readonly rejectAfter = new Map<string, number>();
  /** Pushes each entry the log takes to the subscriptions of the client whose account it is logged for. */
  private readonly pusher = new FakePusher();
  private readonly subscriptions = new FakeSubscriptions((target) => this.pusher.publishTest(target, JSON.stringify(AMQP_TEST_MESSAGE)));
  /** What the admin routes below did, by whom (GET /cloud/v1/user_actions); each entry pushed as it is logged. */
  readonly auditLog = new FakeAuditLog((account, entry) => {
    const client = this.clientOf(account);
    this.pusher.entryLogged(entry, this.subscriptions.webhooksOf(client), this.subscriptions.amqpOf(client));
  });
  /** The status the subscription endpoints answer an API key with; null while they accept it. */
  private keyRefusal: 401 | 403 | null = null;
  /** What GET /cloud/public/v1/ipranges/egress answers: where the pushes come from (the fake pushes from this machine). */
  egressRanges = ['127.0.0.1/32', '::1/128'];

  constructor(options: FakeGcoreOptions = {}) {
    this.apiKey = options.apiKey ?? 'fake-key';
    this.latencyMs = options.latencyMs ?? 0;
    const accounts = options.accounts ?? { default: { apiKey: this.apiKey, projects: 'all' as const } };
    this.accounts = new Map(Object.entries(accounts).map(([name, account]) => [`APIKey ${account.apiKey}`, { ...account, name }]));
  }

  /**
   * From now on the account's key is answered 401, as a revoked key is; with
   * `afterRequests`, once that many more of its requests have been answered
   * as usual (a key revoked mid-run, at a point that does not depend on timing).
   */
  rejectAccount(name: string, afterRequests = 0): void {
    if (afterRequests > 0) this.rejectAfter.set(name, afterRequests);
    else this.rejected.add(name);
  }

  /**
   * Serves another kind of image: its GET and its lists, as its definition has them. An image of it is
   * filed on the list `listOf` names (by default its first); its images are put with `kind`.
   */
  serveKind(kind: ImageKind, listOf: (payload: ImagePayload) => string = () => kind.lists[0]!.endpoint): void {
    this.kinds.set(kind.name, servedKind(kind, listOf));
  }

  putImage(triple: Triple, payload: ImagePayload, kind: ImageKind = ORDINARY): void {
    this.store(triple, structuredClone(payload), kind);
  }

  /**
   * Stores `payload` itself, not a copy, for a caller that keeps no reference to it (generated images):
   * at a million images a copy of each doubles the fake's memory.
   */
  adoptImage(triple: Triple, payload: ImagePayload): void {
    this.store(triple, payload, ORDINARY);
  }

  /** Changes fields of an image; a field set to undefined is removed. */
  updateImage(triple: Triple, patch: ImagePayload, kind: ImageKind = ORDINARY): void {
    const current = this.images.get(storeKey(triple, kind));
    if (!current) throw new Error(`fake API has no ${kind.name} image ${key(triple)}`);
    this.store(triple, { ...current.payload, ...structuredClone(patch) }, kind);
  }

  deleteImage(triple: Triple, kind: ImageKind = ORDINARY): ImagePayload | undefined {
    const current = this.images.get(storeKey(triple, kind));
    this.images.delete(storeKey(triple, kind));
    this.lists.unfile(
      triple,
      key(triple),
      this.served(kind).lists.map((list) => list.endpoint),
    );
    return current?.payload;
  }

  getImage(triple: Triple, kind: ImageKind = ORDINARY): ImagePayload | undefined {
    return this.images.get(storeKey(triple, kind))?.payload;
  }

  // Admin routes: what a user does through Gcore, logged in the audit log of the account that holds the project.

  createImageAs(actor: Actor, triple: Triple, payload: ImagePayload): void {
    this.putImage(triple, payload);
    this.logAction(actor, 'create', triple, { name: payload.name ?? null });
  }

  renameImageAs(actor: Actor, triple: Triple, name: string): void {
    this.updateImage(triple, { name, updated_at: new Date().toISOString() });
    this.logAction(actor, 'update', triple, { name });
  }

  /** Sets one tag (replacing a tag of that key). */
  tagImageAs(actor: Actor, triple: Triple, tagKey: string, value: string): void {
    const tags = ((this.getImage(triple)?.tags as Array<{ key: string }> | undefined) ?? []).filter((tag) => tag.key !== tagKey);
    this.updateImage(triple, { tags: [...tags, { key: tagKey, value, read_only: false }], updated_at: new Date().toISOString() });
    this.logAction(actor, 'update_metadata', triple, { [tagKey]: value });
  }

  deleteImageAs(actor: Actor, triple: Triple): void {
    if (!this.deleteImage(triple)) throw new Error(`fake API has no image ${key(triple)}`);
    this.logAction(actor, 'delete', triple, null);
  }

  /** Renames every ordinary image, one logged action each, as a script run by one user would; returns how many. */
  renameAllAs(actor: Actor, stamp = new Date().toISOString()): number {
    const ordinary = [...this.images.values()].filter((image) => image.kind === ORDINARY);
    for (const { triple, payload } of ordinary) this.renameImageAs(actor, triple, `${String(payload.name)} ${stamp}`);
    return ordinary.length;
  }

  /** Logs an action without doing it (an entry whose effect a test controls). */
  logAction(
    actor: Actor,
    actionType: string,
    triple: Triple,
    actionData: Record<string, unknown> | null,
    more: Pick<ActionInput, 'at' | 'incomplete'> = {},
  ): Record<string, unknown> {
    const owner = [...this.accounts.values()].find((a) => a.projects === 'all' || a.projects.includes(triple.projectId));
    if (!owner) throw new Error(`no fake account holds project ${triple.projectId}`);
    return this.auditLog.record({ account: owner.name, actionType, triple, actor, actionData, ...more });
  }

  /**
   * Logs an action, without doing it, as Gcore logs one it has not yet filled in (is_complete false),
   * naming the image only when `namesImage`; dated `at` (the log's clock when absent). Returns the
   * entry's id, for completeAction.
   */
  logIncompleteAction(
    actor: Actor,
    actionType: string,
    triple: Triple,
    actionData: Record<string, unknown> | null,
    options: { namesImage?: boolean; at?: Date } = {},
  ): string {
    const incomplete = { namesImage: options.namesImage ?? false };
    return this.logAction(actor, actionType, triple, actionData, { incomplete, at: options.at }).id as string;
  }

  /** Completes an entry logged incomplete: the same id and time, is_complete true, naming its image. */
  completeAction(id: string): void {
    if (!this.auditLog.complete(id)) throw new Error(`the fake audit log holds no incomplete entry ${id}`);
  }

  /** Deletes the N-th, 2N-th, 3N-th... stored image, counted in insertion order (every one when N is 1); returns how many. */
  deleteEvery(n: number): number {
    const doomed = [...this.images.values()].filter((_, index) => (index + 1) % n === 0);
    for (const { triple, kind } of doomed) this.deleteImage(triple, kind);
    return doomed.length;
  }

  /** Adds or replaces an item of a consumer list of a project and region (consumers.ts makes them), by its id. */
  putConsumer(list: ConsumerList, projectId: number, regionId: number, item: ImagePayload): void {
    this.lists.fileItem(projectId, regionId, list.endpoint, structuredClone(item));
  }

  /** Serves `items` (made as pages ask for them, fixed) on a consumer list of a project and region, before the items put there. */
  generateConsumers(list: ConsumerList, projectId: number, regionId: number, items: GeneratedItems): void {
    this.lists.generate(projectId, regionId, list.endpoint, items);
  }

  /** Removes the item of that id from a consumer list, as deleting the volume, snapshot or cluster would. */
  deleteConsumer(list: ConsumerList, projectId: number, regionId: number, id: string): void {
    this.lists.unfile({ projectId, regionId, imageId: '' }, id, [list.endpoint]);
  }

  /** Adds or replaces a project; the first one put is the client's default project. */
  putProject(project: ProjectInput): void {
    this.lists.putProject(project);
  }

  /** Adds or replaces a region; every region is listed, whatever its state. */
  putRegion(region: RegionInput): void {
    this.lists.putRegion(region);
  }

  /** Makes requests for `triple` (or every triple) answer with `fault`, `times` times. */
  setFault(triple: Triple | 'all', fault: Fault, times = Infinity): void {
    this.faults.set(triple === 'all' ? ALL : key(triple), { fault, remaining: times });
  }

  /** Makes list requests that `selector` matches answer with `fault`, `times` times; the earliest rule set that matches applies. */
  setListFault(selector: ListSelector, fault: Fault, times = Infinity): void {
    this.lists.setFault(selector, fault, times);
  }

  /** Makes list requests that `selector` matches answer with `lie`, `times` pages; the earliest rule set that matches applies. */
  setListLie(selector: ListSelector, lie: ListLie, times = Infinity): void {
    this.lists.setLie(selector, lie, times);
  }

  /** Calls `fn` right after a page that `selector` matches has been sent (`times` pages), to change the images between pages. */
  afterListPage(selector: ListSelector, fn: () => void, times = 1): void {
    this.lists.afterPage(selector, fn, times);
  }

  /** Clears every fault, of images and of lists, every list lie, and the page hooks not yet run. */
  clearFaults(): void {
    this.faults.clear();
    this.lists.clearFaults();
  }

  /** How pushes go from now on (push.ts): deliver, drop, duplicate or reorder, optionally late; what `reorder` held is sent first, newest first. */
  setPushFault(fault: PushFault): void {
    this.pusher.setFault(fault);
  }

  /** Sends the pushes `reorder` holds, newest first; returns how many. */
  flushPushes(): number {
    return this.pusher.flush();
  }

  /** Pushes sent, failed and dropped, by kind (webhook, amqp), and how many `reorder` holds. */
  pushStats(): PushStats {
    return this.pusher.stats();
  }

  /**
   * Makes the subscription endpoints (/cloud/v1/user_actions/subscribe... and the AMQP ones) answer every API
   * key with `status`, as endpoints that take only a user token would; null: accept keys again. Every other
   * endpoint, the audit log's included, keeps accepting the key.
   */
  refuseKeyOnSubscriptions(status: 401 | 403 | null): void {
    this.keyRefusal = status;
  }

  /** The client's subscriptions (an account's own name when it names no client), as its listings give them. */
  subscriptionsOf(client: string): { webhooks: WebhookSubscription[]; amqp: AmqpSubscription[] } {
    return { webhooks: structuredClone(this.subscriptions.webhooksOf(client)), amqp: structuredClone(this.subscriptions.amqpOf(client)) };
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    this.pusher.reopen();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        if (!res.headersSent) sendJson(res, 500, gcoreError('InternalError', error.message));
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    return this.url;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) throw new Error('fake API is not listening');
    return `http://${address.address}:${address.port}`;
  }

  /** Stops serving and pushing: webhook calls in flight are aborted, held and delayed pushes forgotten, broker connections closed. */
  async stop(): Promise<void> {
    await this.pusher.close();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Changes every image (a new `updated_at` and description), as a mass update would. */
  touchAll(stamp = new Date().toISOString()): number {
    for (const { payload } of this.images.values()) {
      payload.updated_at = stamp;
      payload.description = `touched ${stamp}`;
    }
    return this.images.size;
  }

  /** Counts requests and pushes from none again. */
  resetStats(): void {
    this.pusher.resetStats();
    this.requestCount = 0;
    this.requestsPerSecond.clear();
    this.requestsPerSecondByAccount.clear();
    this.requestTimes.length = 0;
    // Every endpoint counted so far, other kinds' included, starts again from none.
    for (const endpoint of Object.keys(this.requestsByEndpoint)) this.requestsByEndpoint[endpoint] = 0;
  }

  private served(kind: ImageKind): ServedKind {
    const served = this.kinds.get(kind.name);
    if (!served) throw new Error(`fake API does not serve kind ${kind.name} (serveKind)`);
    return served;
  }

  private store(triple: Triple, payload: ImagePayload, kind: ImageKind): void {
    const served = this.served(kind);
    this.images.set(storeKey(triple, kind), { triple, kind, payload });
    const lists = served.lists.map((list) => list.endpoint);
    this.lists.file(triple, key(triple), payload, served.listOf(payload), lists);
  }

  private takeFault(imageKey: string): Fault | undefined {
    for (const k of [imageKey, ALL]) {
      const rule = this.faults.get(k);
      if (!rule) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.faults.delete(k);
      return rule.fault;
    }
    return undefined;
  }

  /** Control endpoints for a fake running in another process (benchmarks, demos). */
  private readonly controls: Record<string, (body: Record<string, unknown>) => unknown> = {
    'GET /__fake/stats': () => ({
      requests: this.requestCount,
      perSecond: Object.fromEntries(this.requestsPerSecond),
      perSecondByAccount: Object.fromEntries(
        [...this.requestsPerSecondByAccount].map(([name, seconds]) => [name, Object.fromEntries(seconds)]),
      ),
      byEndpoint: this.requestsByEndpoint,
      pushes: this.pushStats(),
    }),
    'POST /__fake/touch-all': () => ({ touched: this.touchAll() }),
    'POST /__fake/rename-all': (body) => ({ renamed: this.renameAllAs(readActor(body)) }),
    'POST /__fake/reset-stats': () => this.resetStats(),
    'POST /__fake/delete': (body) => ({ deleted: this.deleteEvery(readEvery(body)) }),
    'POST /__fake/ignore-offset': (body) => ({ ignoreOffset: (this.ignoreOffset = readOn(body)) }),
    'POST /__fake/list-fault': (body) => {
      const { selector, fault, times } = readListFault(body);
      this.setListFault(selector, fault, times);
    },
    'POST /__fake/list-lie': (body) => {
      const { selector, lie, times } = readListLie(body);
      this.setListLie(selector, lie, times);
    },
    'POST /__fake/clear-faults': () => this.clearFaults(),
    'POST /__fake/push-fault': (body) => this.setPushFault(readPushFault(body)),
    'POST /__fake/push-flush': () => ({ released: this.flushPushes() }),
    'POST /__fake/subscriptions-refuse-key': (body) => this.refuseKeyOnSubscriptions(readKeyRefusal(body)),
    'POST /__fake/log-incomplete': (body) => {
      const { actor, actionType, triple, namesImage } = readIncompleteAction(body);
      if (!this.getImage(triple)) throw new ControlError(`no image ${key(triple)}`);
      return { id: this.logIncompleteAction(actor, actionType, triple, null, { namesImage }) };
    },
    'POST /__fake/complete-action': (body) => {
      const id = readActionId(body);
      if (!this.auditLog.complete(id)) throw new ControlError(`id: the audit log holds no incomplete entry ${id}`);
      return { id };
    },
  };

  private async handleControl(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const control = this.controls[`${req.method} ${req.url}`];
    if (!control) return false;
    try {
      // A control that has nothing to say answers {}.
      sendJson(res, 200, control(await readBody(req)) ?? {});
    } catch (error) {
      if (!(error instanceof ControlError)) throw error;
      sendJson(res, 400, { error: error.message });
    }
    return true;
  }

  private countRequest(endpoint: Endpoint): void {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    this.requestsPerSecond.set(second, (this.requestsPerSecond.get(second) ?? 0) + 1);
    this.requestCount += 1;
    this.requestsByEndpoint[endpoint] = (this.requestsByEndpoint[endpoint] ?? 0) + 1;
    this.requestTimes.push(now);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url?.startsWith('/__fake/') && (await this.handleControl(req, res))) return;
    const { path, query } = splitUrl(req.url ?? '');
    if (path === EGRESS_PATH) return this.answerEgress(req, res);
    const subscription = subscriptionRoute(path);
    if (subscription) return this.answerSubscription(req, res, subscription, query);
    const route = req.method === 'GET' ? routeOf(req.url ?? '', this.kinds.values()) : undefined;
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body>404 Not Found</body></html>');
      return;
    }
    this.countRequest(route.endpoint);
    const authorization = req.headers.authorization ?? '';
    this.authorizations.add(authorization);
    if (this.latencyMs > 0) await delay(this.latencyMs);

    const fault = 'imageKey' in route ? this.takeFault(route.imageKey) : this.lists.takeFault(route);
    if (fault?.kind === 'slow') await delay(fault.ms);
    const account = this.admitted(authorization);
    if (fault?.kind === 'unauthorized' || !account) {
      sendUnauthenticated(res);
      return;
    }
    const projectId = 'imageKey' in route ? Number(route.imageKey.split('/')[0]) : route.projectId;
    if (account.projects !== 'all' && projectId !== undefined && !account.projects.includes(projectId)) {
      sendJson(res, 403, gcoreError('PermissionDenied', 'You do not have permission to perform this action.'));
      return;
    }
    if (fault && sendFault(res, fault)) return;
    if ('imageKey' in route) this.answerImage(res, route.kind, route.imageKey, route.rawId);
    else this.answerList(res, route, account.projects, account.name);
  }

  /** The account of a key, its request counted; undefined for a key that is not one, or is rejected. */
  private admitted(authorization: string): (FakeAccount & { name: string }) | undefined {
    const account = this.accounts.get(authorization);
    if (!account) return undefined;
    this.countAccountRequest(account.name);
    return this.rejected.has(account.name) ? undefined : account;
  }

  /** The client an account belongs to; a name no account has is a client of its own. */
  private clientOf(accountName: string): string {
    for (const account of this.accounts.values()) if (account.name === accountName) return account.client ?? account.name;
    return accountName;
  }

  /** The public list of the addresses Gcore pushes from: no key needed. */
  private async answerEgress(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.countRequest('ipranges/egress');
    if (this.latencyMs > 0) await delay(this.latencyMs);
    if (req.method !== 'GET') sendJson(res, 405, gcoreError('MethodNotAllowed', `Method "${req.method}" not allowed.`));
    else sendJson(res, 200, { ranges: [...this.egressRanges] });
  }

  /** A request to a subscription endpoint: counted as `user_actions/<action>`, answered for the client of the key's account. */
  private async answerSubscription(
    req: IncomingMessage,
    res: ServerResponse,
    route: SubscriptionRoute,
    query: URLSearchParams,
  ): Promise<void> {
    this.countRequest(`user_actions/${route.action}`);
    const authorization = req.headers.authorization ?? '';
    this.authorizations.add(authorization);
    if (this.latencyMs > 0) await delay(this.latencyMs);
    const account = this.admitted(authorization);
    if (!account) return sendUnauthenticated(res);
    const method = req.method ?? 'GET';
    if (!allowsMethod(route, method)) return sendJson(res, 405, gcoreError('MethodNotAllowed', `Method "${method}" not allowed.`));
    if (this.keyRefusal !== null) return sendJson(res, this.keyRefusal, USER_TOKEN_WANTED[this.keyRefusal]);
    let answer;
    try {
      const body = takesBody(route, method) ? await readJsonObject(req, (message) => new QueryError(message)) : {};
      answer = await this.subscriptions.answer(route, method, account.client ?? account.name, query, body);
    } catch (error) {
      if (!(error instanceof QueryError)) throw error;
      return sendJson(res, 422, gcoreError('ValidationError', error.message));
    }
    if (answer.status === 204) res.writeHead(204).end();
    else if (answer.status === 200) sendJson(res, 200, answer.body);
    else sendJson(res, answer.status, gcoreError(answer.exceptionClass, answer.message));
  }

  private countAccountRequest(name: string): void {
    const answered = this.rejectAfter.get(name);
    if (answered !== undefined) {
      if (answered > 0) this.rejectAfter.set(name, answered - 1);
      else {
        this.rejectAfter.delete(name);
        this.rejected.add(name);
      }
    }
    const second = Math.floor(Date.now() / 1000);
    const seconds = this.requestsPerSecondByAccount.get(name) ?? new Map<number, number>();
    seconds.set(second, (seconds.get(second) ?? 0) + 1);
    this.requestsPerSecondByAccount.set(name, seconds);
  }

  private answerImage(res: ServerResponse, kind: ImageKind, imageKey: string, rawId: string): void {
    const image = this.images.get(kind === ORDINARY ? imageKey : `${kind.name}:${imageKey}`);
    if (!image) {
      sendJson(res, 404, gcoreError('NotFoundError', `Image ${rawId} not found`));
      return;
    }
    sendJson(res, 200, image.payload);
  }

  private answerList(res: ServerResponse, request: RoutedListRequest, projects: FakeAccount['projects'], account: string): void {
    let page;
    try {
      page =
        request.endpoint === 'user_actions'
          ? this.auditLog.page(request.query, account)
          : this.lists.page(request, this.ignoreOffset, projects);
    } catch (error) {
      if (!(error instanceof QueryError)) throw error;
      sendJson(res, 422, gcoreError('ValidationError', error.message));
      return;
    }
    sendJson(res, 200, page);
    this.lists.pageSent(request);
  }
}
