// The only module that speaks HTTP to Gcore. One request per call: retries and
// pacing belong to the queue, which sees every worker process.
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
  TransientApiError,
  UnexpectedStatusError,
} from './gcore-errors.js';
import { imageIdProblem } from './image-id.js';
import type { Triple } from './interfaces.js';

export interface GcoreClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  maxResponseBytes: number;
}

export type ImageAnswer =
  | { kind: 'found'; body: unknown; observedAt: Date }
  | { kind: 'gone'; observedAt: Date };

/** Default wait when a 429 carries no usable hint. */
const DEFAULT_RATE_LIMIT_WAIT_MS = 1000;

export function imageUrl(baseUrl: string, triple: Triple): string {
  const problem = imageIdProblem(triple.imageId);
  if (problem) throw new GcoreApiError(`request not sent: image id ${JSON.stringify(triple.imageId.slice(0, 140))} ${problem}`, undefined, false);
  const segments = [triple.projectId, triple.regionId, triple.imageId].map((part) => encodeURIComponent(String(part)));
  return `${baseUrl}/cloud/v1/images/${segments.join('/')}`;
}

async function readBody(response: Response, limit: number): Promise<string> {
  const header = response.headers.get('content-length');
  const declared = header === null ? Number.NaN : Number(header);
  if (declared > limit) {
    await response.body?.cancel();
    throw new MalformedAnswerError(`answer of ${declared} bytes exceeds the ${limit}-byte limit`, response.status, false);
  }
  // A declared length within the limit is read whole; only an undeclared one is counted as it streams.
  if (Number.isFinite(declared)) return response.text();
  if (!response.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) {
      throw new MalformedAnswerError(`answer exceeds the ${limit}-byte limit`, response.status, false);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

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
    const wait = retryAfterMs(headers) ?? DEFAULT_RATE_LIMIT_WAIT_MS;
    return new RateLimitedError(`429: rate limited for ${wait} ms: ${detail}`, wait, shouldRetry(headers, true));
  }
  const transient = isTransientStatus(status);
  const Kind = transient ? TransientApiError : UnexpectedStatusError;
  return new Kind(`${status}: ${detail}`, status, shouldRetry(headers, transient));
}

function isGcoreNotFound(text: string): boolean {
  const body = parseJson(text) as { exception_class?: unknown } | undefined;
  return body?.exception_class === 'NotFoundError';
}

export class GcoreClient {
  /** Set by the first 401: a rejected key is not sent again. */
  private keyRejected = false;

  constructor(private readonly options: GcoreClientOptions) {}

  /** Fetches one image; resolves "found" or "gone", throws a GcoreApiError otherwise. */
  async getImage(triple: Triple): Promise<ImageAnswer> {
    if (this.keyRejected) throw new RequestWithheldError('request not sent: the API already rejected this key', undefined, false);
    const url = imageUrl(this.options.baseUrl, triple);
    const observedAt = new Date();
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { authorization: `APIKey ${this.options.apiKey}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError'
        ? `no answer within ${this.options.timeoutMs} ms`
        : `connection failed: ${((error as Error).cause as Error)?.message ?? (error as Error).message}`;
      throw new TransientApiError(reason, undefined, true);
    }
    let text: string;
    try {
      text = await readBody(response, this.options.maxResponseBytes);
    } catch (error) {
      if (error instanceof GcoreApiError) throw error;
      throw new TransientApiError(`answer broke off: ${(error as Error).message}`, response.status, true);
    }
    if (response.status === 404 && isGcoreNotFound(text)) return { kind: 'gone', observedAt };
    if (response.status !== 200) {
      const error = errorFor(response.status, text, response.headers);
      if (error instanceof AuthenticationError) this.keyRejected = true;
      throw error;
    }
    const body = parseJson(text);
    if (body === undefined) {
      throw new MalformedAnswerError(`200 with a body that is not JSON: ${excerpt(text) || '(empty body)'}`, 200, false);
    }
    return { kind: 'found', body, observedAt };
  }
}
