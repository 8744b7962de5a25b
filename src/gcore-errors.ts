// What an API answer means, decided once here (as the official Gcore SDKs do):
// each failure is a class that says whether another attempt can help.

export class GcoreApiError extends Error {
  constructor(
    message: string,
    /** HTTP status, or undefined when no answer arrived. */
    readonly status: number | undefined,
    /** Whether another attempt later can succeed. */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 401: the key was rejected; retrying with the same key cannot help. */
export class AuthenticationError extends GcoreApiError {}

/** Not sent: the API already rejected this process's key, so the request is handed back. */
export class RequestWithheldError extends GcoreApiError {}

/** 404 without Gcore's JSON NotFoundError body: the route is wrong, not the image gone. */
export class RouteNotFoundError extends GcoreApiError {}

/** 429: the API asks us to slow down for `retryAfterMs`. */
export class RateLimitedError extends GcoreApiError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    retryable: boolean,
  ) {
    super(message, 429, retryable);
  }
}

/** 403 (capacity), 408, 409, 5xx, connection errors and timeouts. */
export class TransientApiError extends GcoreApiError {}

/** Any other status the API should not answer for a read. */
export class UnexpectedStatusError extends GcoreApiError {}

/** The answer arrived but is not a usable JSON document (not JSON, too large). */
export class MalformedAnswerError extends GcoreApiError {}

/** Statuses that are worth another attempt, per Gcore's fact sheet. */
export function isTransientStatus(status: number): boolean {
  return status === 403 || status === 408 || status === 409 || status === 429 || status >= 500;
}

/** A hint beyond a year is read as a year: the policy (refresh-policy.ts) caps what it honours far below. */
const MAX_HINT_MS = 366 * 24 * 3600_000;

/** The server's wait hint from `retry-after-ms` or `Retry-After` (seconds or HTTP date), if it is a wait at all. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.min(Math.ceil(ms), MAX_HINT_MS);
  const text = headers.get('retry-after');
  if (text === null) return undefined;
  const seconds = Number(text);
  const wait = Number.isFinite(seconds) && text.trim() !== '' ? seconds * 1000 : Date.parse(text) - now;
  return Number.isFinite(wait) && wait >= 0 ? Math.min(Math.ceil(wait), MAX_HINT_MS) : undefined;
}

/** `x-should-retry: true|false` overrides our own decision. */
export function shouldRetry(headers: Headers, fallback: boolean): boolean {
  const hint = headers.get('x-should-retry');
  if (hint === 'true') return true;
  if (hint === 'false') return false;
  return fallback;
}

/** Short, single-line excerpt of a body for an error message. */
export function excerpt(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
