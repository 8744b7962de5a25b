// Graceful stop on SIGTERM (orchestrators), SIGINT (a terminal's Ctrl-C) and SIGHUP (the terminal
// closed): stop taking jobs, let those in flight finish within a bound, close connections, exit 0.
// Jobs still running at the bound are handed back by exiting: their Redis locks lapse and another
// worker retries them. A second signal exits at once. Until a command installs its own stop, a
// signal exits 0 at once (exitWhileStarting): nothing has been started that needs stopping.
import { stopWhenLauncherGoes } from './launcher.js';
import type { Logger } from './logger.js';

/**
 * Ctrl-C under `npm start` reaches this process twice, from the terminal and
 * forwarded by npm, a few milliseconds apart: signals this close to the first
 * are that same request, not an operator's second, impatient one.
 */
const SAME_REQUEST_MS = 1000;

/**
 * SIGHUP is a stop like the others: a closed terminal must not leave a worker (or the embedded
 * server it holds) behind. Node resets an ignored SIGHUP to its default when it starts, so `nohup`
 * never protected a Node process from it; a worker meant to outlive its terminal runs under
 * `setsid` or a supervisor, where no terminal's hang-up reaches it.
 */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Exits 0 on a stop signal, unless a command's own stop (onShutdown, or a listener of its own) is installed. */
function exitUnlessHandled(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  process.exit(0);
}

/**
 * The first thing the CLI does, before it loads a command's modules (a second or more on a busy
 * machine): a stop then exits 0 at once. Also watches for an npm launcher that goes away
 * (launcher.ts). Returns what takes the early exit away again, for commands that keep the signals'
 * default (a one-shot command killed by a signal says so by its exit status).
 */
export function exitWhileStarting(): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, exitUnlessHandled);
  stopWhenLauncherGoes();
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, exitUnlessHandled);
  };
}

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
  for (const signal of STOP_SIGNALS) process.on(signal, handle);
}
