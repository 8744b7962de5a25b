// Graceful stop on SIGTERM (orchestrators) and SIGINT (a terminal's Ctrl-C):
// stop taking jobs, let those in flight finish within a bound, close
// connections, exit 0. Jobs still running at the bound are handed back by
// exiting: their Redis locks lapse and another worker retries them. A second
// signal exits at once.
import type { Logger } from './logger.js';

export function onShutdown(logger: Logger, timeoutMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, timeout_ms: timeoutMs }, 'stopping: finishing jobs in flight');
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
}
