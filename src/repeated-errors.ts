// A queue whose store is away reports the same error for every retry, many
// times a second on Postgres. The first report of an error is logged at once;
// the same error again is counted and logged at most once per interval, with
// how often it came, so an outage of hours leaves a readable log.
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
