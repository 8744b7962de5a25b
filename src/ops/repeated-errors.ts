// A queue whose store is away reports the same error for every retry, many
// times a second on Postgres. The first report of an error is logged at once;
// the same error again is counted and logged at most once per interval, with
// how often it came, so an outage of hours leaves a readable log. Likewise a
// cause that fails many API requests of an account (a wrong base URL, the
// network, the key) is one line per cause saying what to check, not one per image.
import type { Logger } from './logger.js';

const INTERVAL_MS = 30_000;

export function repeatedErrorLog(logger: Logger, what: string, intervalMs = INTERVAL_MS): (error: Error) => void {
  let last: string | undefined;
  let loggedAt = 0;
  let unlogged = 0;
  return (error) => {
    const now = Date.now();
    if (error.message === last && now - loggedAt < intervalMs) {
      unlogged += 1;
      return;
    }
    const again = error.message === last && unlogged > 0 ? { times_since_last_line: unlogged } : {};
    logger.error({ error: error.message, ...again }, `${what}: queue error`);
    last = error.message;
    loggedAt = now;
    unlogged = 0;
  };
}

/** What a failure tells the log of its cause, as retry-policy's FailureInfo has it. */
export interface FailureFacts {
  status: number | null;
  errorClass: string;
  message: string;
}

/** Where an account's requests go, and which setting says so. */
export interface ApiPlace {
  account: string;
  /** The variable that holds the account's key. */
  apiKeyEnv: string;
  url: string;
  /** GCORE_BASE_URL, or the account's base_url in the targets file. */
  urlSetting: string;
}

export interface Cause {
  /** Failures with the same key have the same cause: one line says it for all of them. */
  key: string;
  /** What happened and what to check. */
  text: string;
}

/** Where the base URL of `account` is set: its base_url in the targets file, or GCORE_BASE_URL. */
export function urlSetting(account: { name: string; baseUrl?: string }): string {
  return account.baseUrl === undefined ? 'GCORE_BASE_URL' : `base_url of account ${account.name} in the targets file`;
}

/**
 * The cause of a failure an operator can fix, shared by every image it fails
 * (the API unreachable, failing, or refusing the key); null for a failure
 * that is about one image, which is logged on its own.
 */
export function causeOf(failure: FailureFacts, place: ApiPlace): Cause | null {
  const { status, errorClass } = failure;
  if (errorClass === 'TransientApiError' && status === null) {
    return {
      key: 'unreachable',
      text: `cannot reach the API at ${place.url} (${failure.message}): check ${place.urlSetting} and the network`,
    };
  }
  if (status === 401) return { key: '401', text: `the API rejected the key in ${place.apiKeyEnv} (401): check the key` };
  if (status === 403) {
    return {
      key: '403',
      text: `the API refused the key in ${place.apiKeyEnv} (403): check the key and its permissions (Gcore also answers 403 when out of capacity)`,
    };
  }
  if (errorClass === 'RouteNotFoundError') {
    return { key: '404', text: `the API at ${place.url} answers 404 without Gcore's body: check ${place.urlSetting}` };
  }
  if (status !== null && status >= 500) {
    return {
      key: String(status),
      text: `the API at ${place.url} answers ${status}: check that ${place.urlSetting} is Gcore's API, else the API is failing and is retried`,
    };
  }
  return null;
}

const CAUSE_INTERVAL_MS = 60_000;

export interface CauseLog {
  /** The cause of `failure` at this account's API, or null when it is about one image. */
  of(failure: FailureFacts): Cause | null;
  /**
   * Says a cause of failure for `images` (keys of what it failed) on one
   * line: at once the first time, then at most once per interval, with how
   * many failed since the line before.
   */
  report(cause: Cause, images: string[], error: string): void;
}

/** One line per cause of an account's failures, at most once per interval, instead of one per image. */
export function causeLog(logger: Logger, place: ApiPlace, intervalMs = CAUSE_INTERVAL_MS, now = Date.now): CauseLog {
  const causes = new Map<string, { loggedAt: number; images: Set<string>; attempts: number }>();
  return {
    of: (failure) => causeOf(failure, place),
    report(cause, images, error) {
      const state = causes.get(cause.key) ?? { loggedAt: -Infinity, images: new Set<string>(), attempts: 0 };
      causes.set(cause.key, state);
      for (const image of images) state.images.add(image);
      state.attempts += images.length;
      const at = now();
      if (at - state.loggedAt < intervalMs) return;
      const first = state.loggedAt === -Infinity;
      const count = `${state.images.size} ${state.images.size === 1 ? 'request' : 'requests'} failed this way${first ? '' : ' since the last such line'}`;
      logger.error({ cause: cause.key, failed: state.images.size, attempts: state.attempts, error }, `${cause.text}; ${count}`);
      state.loggedAt = at;
      state.images.clear();
      state.attempts = 0;
    },
  };
}
