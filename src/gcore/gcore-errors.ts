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

/**
 * 401 or 403 from an audit-log subscription endpoint: they may want a user's
 * token rather than an API key, so this says nothing about the key, which the
 * image and list endpoints go on accepting.
 */
export class SubscriptionRefusedError extends GcoreApiError {}

/** Not sent: the API already rejected this process's key, so the request is handed back. */
export class RequestWithheldError extends GcoreApiError {}

/** 404 without Gcore's JSON NotFoundError body: the route is wrong, not the image gone. */
export class RouteNotFoundError extends GcoreApiError {}

/**
 * Not sent: the image is of a kind no definition in this process knows (images.kind or targets.kind
 * names it: a newer release, or a kind only another process defines). Its GET is not guessed: the
 * ordinary kind's would ask another endpoint, whose 404 would read as a deletion.
 */
export class UnknownKindError extends GcoreApiError {
  constructor(readonly kindName: string) {
    super(`request not sent: no kind of image named ${JSON.stringify(kindName)} is defined in this process`, undefined, false);
  }
}

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

/** Not sent: the account's requests are paused after a 429 that asked for longer than this worker waits (rate-limiter.ts). */
export class PausedPastCapError extends GcoreApiError {
  constructor(
    /** How long the API asked for (Infinity when it set no bound). */
    readonly askedMs: number,
    capMs: number,
    remainingMs: number,
  ) {
    super(
      `request not sent: ${overCapText(askedMs, capMs)}; the account's requests are held back for ${formatWait(remainingMs)} more`,
      undefined,
      false,
    );
  }
}

/** A wait as a person reads it: whole seconds, rounded up; one without a bound as such. */
export function formatWait(ms: number): string {
  return Number.isFinite(ms) ? `${Math.ceil(ms / 1000)} s` : 'without limit';
}

/** What a failure says when the API asked to wait longer than the cap: the same for the request that got the 429 and those held back by its pause. */
export function overCapText(askedMs: number, capMs: number): string {
  return `Gcore asked to wait ${formatWait(askedMs)}, more than the ${formatWait(capMs)} cap set by SYNC_RATE_LIMIT_MAX_WAIT_SECONDS`;
}

/**
 * Seconds as `Retry-After` (or `retry-after-ms`) spells them: a non-negative
 * decimal number, any exponent, or Infinity. A number too large for a double
 * (`1e400`) is Infinity: a wait without a bound, never "no hint".
 */
const WAIT_NUMBER = /^\+?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|infinity)$/i;

function readWaitNumber(text: string): number | undefined {
  const trimmed = text.trim();
  return WAIT_NUMBER.test(trimmed) ? Number(trimmed.replace(/^\+?infinity$/i, 'Infinity')) : undefined;
}

/**
 * The server's wait hint from `retry-after-ms` or `Retry-After` (seconds or
 * HTTP date), as asked: not capped here (the policy caps what it honours and
 * says what was asked), Infinity for a wait without a bound. Undefined when
 * there is no hint or it is not a wait.
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = readWaitNumber(headers.get('retry-after-ms') ?? '');
  if (ms !== undefined) return Math.ceil(ms);
  const text = headers.get('retry-after');
  if (text === null) return undefined;
  const seconds = readWaitNumber(text);
  const wait = seconds !== undefined ? seconds * 1000 : Date.parse(text) - now;
  return wait >= 0 ? Math.ceil(wait) : undefined;
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
