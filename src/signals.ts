// Graceful stop on SIGTERM (orchestrators) and SIGINT (a terminal's Ctrl-C):
// stop taking jobs, let those in flight finish within a bound, close
// connections, exit 0. A second signal exits at once.
import type { Logger } from './logger.js';

export function onShutdown(logger: Logger, timeoutMs: number, shutdown: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, timeout_ms: timeoutMs }, 'stopping: finishing jobs in flight');
    const timer = setTimeout(() => {
      logger.error({ timeout_ms: timeoutMs }, 'jobs in flight did not finish in time; exiting (BullMQ hands them to another worker)');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    shutdown().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: Error) => {
        logger.error({ error: error.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
