// The only module that speaks HTTP to Gcore. One request per call: retries and
// pacing belong to the queue, which sees every worker process.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DEFAULTS } from '../config/config.js';
import {
  AuthenticationError,
  excerpt,
  GcoreApiError,
  isTransientStatus,
  MalformedAnswerError,
  RateLimitedError,
  RequestWithheldError,
  retryAfterMs,
  RouteNotFoundError,
  shouldRetry,
  SubscriptionRefusedError,
  TransientApiError,
  UnexpectedStatusError,
} from './gcore-errors.js';
import { imageIdProblem } from '../images/image-id.js';
import { fillPath, kindList, ORDINARY, type ImageKind } from '../images/image-kinds.js';
import { consumerList } from '../usage/consumer-lists.js';
import type { Triple } from '../interfaces.js';
import { parseJsonExactly } from '../images/json-text.js';
import { secretScrubber } from '../ops/secret-scrub.js';
import { RATE_LIMIT_DEFAULT_WAIT_MS } from '../work/retry-policy.js';

export interface GcoreClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  maxResponseBytes: number;
  /** The limit for one page of a list (up to 1,000 images); SYNC_MAX_PAGE_BYTES's default when absent. */
  maxPageBytes?: number;
  /** Other secrets this client sends (an audit-log push's header value, a broker's connection string): scrubbed from answers like the key. */
  sentSecrets?: string[];
}

/** A request to an audit-log subscription endpoint (`/cloud/v1/user_actions/...`), with the JSON body of a POST. */
export interface SubscriptionRequest {
  method: 'GET' | 'POST';
  /** After /cloud/v1/user_actions/, with any query. */
  path: string;
  body?: unknown;
}

export type ImageAnswer = { kind: 'found'; body: unknown; observedAt: Date } | { kind: 'gone'; observedAt: Date };

/**
 * The list endpoints: a kind's list of one project and region (`endpoint` names it, image-kinds.ts;
 * the ordinary kind's are images and bmimages) or a list of what uses images (usage/consumer-lists.ts),
 * and the account's projects, regions and audit log.
 */
export type ListRequest =
  | { endpoint: string; projectId: number; regionId: number; query: Array<[string, string]> }
  | { endpoint: 'projects' | 'regions' | 'user_actions'; query: Array<[string, string]> };

/** One page of a list: `count` is the total over all pages. */
export interface ListPage {
  count: number;
  results: unknown[];
  observedAt: Date;
}

/** The single-image GET of `kind` for `triple`. */
export function imageUrl(baseUrl: string, triple: Triple, kind: ImageKind = ORDINARY): string {
  const problem = imageIdProblem(triple.imageId);
  if (problem)
    throw new GcoreApiError(`request not sent: image id ${JSON.stringify(triple.imageId.slice(0, 140))} ${problem}`, undefined, false);
  return baseUrl + fillPath(kind.getPath, { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId });
}

function listUrl(baseUrl: string, request: ListRequest): string {
  if (!('projectId' in request)) return `${baseUrl}/cloud/v1/${request.endpoint}`;
  // A kind's list of images, or a list of what uses them (usage/consumer-lists.ts).
  const list = kindList(request.endpoint) ?? consumerList(request.endpoint);
  if (!list) throw new GcoreApiError(`request not sent: no list is named ${JSON.stringify(request.endpoint)}`, undefined, false);
  return baseUrl + fillPath(list.path, { project_id: request.projectId, region_id: request.regionId });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `text` is scrubbed (send): no decoding of it, the message included, can spell the key. */
function errorFor(status: number, text: string, headers: Headers): GcoreApiError {
  const body = parseJson(text) as { exception_class?: unknown; message?: unknown } | undefined;
  const detail = typeof body?.message === 'string' ? excerpt(body.message) : excerpt(text) || '(empty body)';
  if (status === 401) {
    return new AuthenticationError(`401: the API key was rejected: ${detail}`, status, shouldRetry(headers, false));
  }
  if (status === 404) {
    return new RouteNotFoundError(
      `404 without Gcore's NotFoundError body (is GCORE_BASE_URL right?): ${detail}`,
      status,
      shouldRetry(headers, false),
    );
  }
  if (status === 429) {
    // The wait asked is in the error, not its message: the policy says it where it matters (over the cap).
    const wait = retryAfterMs(headers) ?? RATE_LIMIT_DEFAULT_WAIT_MS;
    return new RateLimitedError(`429: ${detail}`, wait, shouldRetry(headers, true));
  }
  const transient = isTransientStatus(status);
  const Kind = transient ? TransientApiError : UnexpectedStatusError;
  return new Kind(`${status}: ${detail}`, status, shouldRetry(headers, transient));
}

function isGcoreNotFound(text: string): boolean {
  const body = parseJson(text) as { exception_class?: unknown } | undefined;
  return body?.exception_class === 'NotFoundError';
}

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

export class GcoreClient {
  /** Set by the first 401: a rejected key is not sent again. */
  private keyRejected = false;
  /** Keep-alive connections, reused across requests (node:http costs far less per request than fetch). */
  private readonly agent: HttpAgent;
  private readonly scrub: (text: string) => string;

  constructor(private readonly options: GcoreClientOptions) {
    this.agent = options.baseUrl.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    const scrubbers = [options.apiKey, ...(options.sentSecrets ?? [])].map(secretScrubber);
    this.scrub = (text) => scrubbers.reduce((scrubbed, scrub) => scrub(scrubbed), text);
  }

  /** Fetches one image with its kind's GET; resolves "found" or "gone", throws a GcoreApiError otherwise. */
  async getImage(triple: Triple, kind: ImageKind = ORDINARY): Promise<ImageAnswer> {
    if (this.keyRejected) throw new RequestWithheldError('request not sent: the API already rejected this key', undefined, false);
    const url = new URL(imageUrl(this.options.baseUrl, triple, kind));
    const observedAt = new Date();
    const { status, headers, text } = await this.send(url);
    if (status === 404 && isGcoreNotFound(text)) return { kind: 'gone', observedAt };
    if (status !== 200) {
      const error = errorFor(status, text, toHeaders(headers));
      if (error instanceof AuthenticationError) this.keyRejected = true;
      throw error;
    }
    const body = parseJsonExactly(text);
    if (body === undefined) {
      throw new MalformedAnswerError(`200 with a body that is not JSON: ${excerpt(text) || '(empty body)'}`, 200, false);
    }
    return { kind: 'found', body, observedAt };
  }

  /**
   * Fetches one page of a list, `limit` items from `offset`; throws a GcoreApiError when it is not a list.
   * Numbers a double would change are kept as their text unless `exactNumbers` is false (parseJsonExactly).
   */
  async listPage(request: ListRequest, offset: number, limit: number, exactNumbers = true): Promise<ListPage> {
    if (this.keyRejected) throw new RequestWithheldError('request not sent: the API already rejected this key', undefined, false);
    const url = new URL(listUrl(this.options.baseUrl, request));
    for (const [name, value] of request.query) url.searchParams.append(name, value);
    url.searchParams.set('limit', String(limit));
    url.searchParams.set('offset', String(offset));
    const observedAt = new Date();
    const { status, headers, text } = await this.send(url, this.options.maxPageBytes ?? DEFAULTS.maxPageBytes);
    if (status === 404 && isGcoreNotFound(text)) {
      throw new UnexpectedStatusError(
        `404 NotFoundError: the API says ${'projectId' in request ? 'this project or region' : `/cloud/v1/${request.endpoint}`} does not exist: ${excerpt(text)}`,
        404,
        false,
      );
    }
    if (status !== 200) {
      const error = errorFor(status, text, toHeaders(headers));
      if (error instanceof AuthenticationError) this.keyRejected = true;
      throw error;
    }
    const body = parseJsonExactly(text, exactNumbers) as { count?: unknown; results?: unknown };
    const { count, results } = body ?? {};
    if (typeof body !== 'object' || body === null || !Array.isArray(results) || !Number.isSafeInteger(count) || (count as number) < 0) {
      throw new MalformedAnswerError(
        `200 with a body that is not a list page ({"count", "results"}): ${excerpt(text) || '(empty body)'}`,
        200,
        false,
      );
    }
    return { count: count as number, results, observedAt };
  }

  /**
   * One call of an audit-log subscription endpoint: its JSON answer (undefined
   * for 204). A 401 or 403 is a SubscriptionRefusedError and leaves the key
   * trusted: these endpoints may want a user's token (gcore-errors.ts).
   */
  async subscriptionCall(request: SubscriptionRequest): Promise<unknown> {
    if (this.keyRejected) throw new RequestWithheldError('request not sent: the API already rejected this key', undefined, false);
    const url = new URL(`${this.options.baseUrl}/cloud/v1/user_actions/${request.path}`);
    const { status, headers, text } = await this.send(url, this.options.maxResponseBytes, request);
    if (status === 401 || status === 403) {
      const detail = excerpt(text) || '(empty body)';
      throw new SubscriptionRefusedError(`${status}: Gcore refused the subscription request: ${detail}`, status, false);
    }
    if (status < 200 || status > 299) throw errorFor(status, text, toHeaders(headers));
    if (status === 204 || text === '') return undefined;
    const body = parseJson(text);
    if (body === undefined) throw new MalformedAnswerError(`${status} with a body that is not JSON: ${excerpt(text)}`, status, false);
    return body;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  /** One request (a GET unless `call` says otherwise), its body read up to the size limit, all within the timeout. */
  private send(url: URL, limit = this.options.maxResponseBytes, call?: SubscriptionRequest): Promise<RawAnswer> {
    const { apiKey, timeoutMs } = this.options;
    const payload = call?.body === undefined ? undefined : JSON.stringify(call.body);
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        agent: this.agent,
        method: call?.method ?? 'GET',
        headers: {
          authorization: `APIKey ${apiKey}`,
          accept: 'application/json',
          ...(payload !== undefined && { 'content-type': 'application/json' }),
        },
      });
      const timer = setTimeout(() => {
        timedOut = true;
        request.destroy();
      }, timeoutMs);
      const fail = (error: GcoreApiError) => {
        clearTimeout(timer);
        request.destroy();
        reject(error);
      };
      request.on('error', (error: Error) => {
        fail(
          new TransientApiError(
            timedOut ? `no answer within ${timeoutMs} ms` : `connection failed: ${this.scrub(error.message)}`,
            undefined,
            true,
          ),
        );
      });
      request.on('response', (response) => {
        const status = response.statusCode ?? 0;
        const declared = Number(response.headers['content-length']);
        if (declared > limit) {
          fail(new MalformedAnswerError(`answer of ${declared} bytes exceeds the ${limit}-byte limit`, status, false));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) fail(new MalformedAnswerError(`answer exceeds the ${limit}-byte limit`, status, false));
          else chunks.push(chunk);
        });
        response.on('error', (error: Error) => {
          fail(
            new TransientApiError(
              timedOut ? `no answer within ${timeoutMs} ms` : `answer broke off: ${this.scrub(error.message)}`,
              status,
              true,
            ),
          );
        });
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status, headers: response.headers, text: this.scrub(Buffer.concat(chunks).toString('utf8')) });
        });
      });
      request.end(payload);
    });
  }
}
