// Graceful stop on SIGTERM (orchestrators) and SIGINT (a terminal's Ctrl-C):
// stop taking jobs, let those in flight finish within a bound, close
// connections, exit 0. Jobs still running at the bound are handed back by
// exiting: their Redis locks lapse and another worker retries them. A second
// signal exits at once.
import type { Logger } from './logger.js';

/**
 * Ctrl-C under `npm start` reaches this process twice, from the terminal and
 * forwarded by npm, a few milliseconds apart: signals this close to the first
 * are that same request, not an operator's second, impatient one.
 */
const SAME_REQUEST_MS = 1000;

/** `finishing` says what the stop waits for, in the line that says it has begun. */
export function onShutdown(logger: Logger, timeoutMs: number, stop: () => Promise<void>, finishing = 'jobs in flight'): void {
  let stoppingSince: number | undefined;
  const handle = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      if (performance.now() - stoppingSince < SAME_REQUEST_MS) return;
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(130);
    }
    stoppingSince = performance.now();
    logger.info({ signal, timeout_ms: timeoutMs }, `stopping: finishing ${finishing}`);
    setTimeout(() => {
      logger.warn({ timeout_ms: timeoutMs }, 'jobs in flight did not finish in time: handing them back to other workers');
      logger.flush();
      process.exit(0);
    }, timeoutMs).unref();
    stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: Error) => {
        logger.error({ error: error.message }, 'error while stopping');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
  // npx runs its command under a shell that neither passes signals on nor dies with them.
  if (process.env.npm_lifecycle_event === 'npx') {
    logger.warn(
      'started through npx, which does not pass SIGTERM or SIGINT on to this process: a supervisor that signals the process it started leaves this one running; use `npm start` or `node dist/src/cli.js start`',
    );
  }
}
