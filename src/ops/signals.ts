// Graceful stop on SIGTERM (orchestrators), SIGINT (a terminal's Ctrl-C) and SIGHUP (the terminal
// closed): stop taking jobs, let those in flight finish within a bound, close connections, exit 0.
// Jobs still running at the bound are handed back by exiting: their Redis locks lapse and another
// worker retries them. A second signal exits at once. Until a long-running command installs its own
// stop, a signal exits 0 at once (exitWhileStarting), after undoing what it may have opened already.
// A one-shot command (sync, demo, status, ...) stopped by a signal, from the moment its arguments
// are read, first undoes what it started that would outlive it (undoIfStopped: the embedded server,
// the demo's database), then exits 128 + the signal's number, as a process killed by it would.
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

/** The status a shell reports for a process a signal ended: 128 + the signal's number. */
const SIGNAL_EXIT_CODE: Record<(typeof STOP_SIGNALS)[number], number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/** Bound on undoing: a step that hangs (a server that does not stop) must not keep a stopped command alive. */
const UNDO_TIMEOUT_MS = 30_000;

/** What a one-shot command has started that would outlive it, undone newest first if a signal stops it. */
const undoSteps = new Set<() => Promise<void>>();

/**
 * Registers `step` to run if a signal stops a one-shot command before the command undoes it
 * itself; returns what takes it off again (call it once the command has undone it).
 */
export function undoIfStopped(step: () => Promise<void>): () => void {
  undoSteps.add(step);
  return () => undoSteps.delete(step);
}

/** performance.now() of the first stop signal, while undoing; undefined before. */
let undoingSince: number | undefined;

/**
 * Undoes what was started (newest first; a step that fails is passed over), then exits `code`.
 * A second signal exits at once, unless it is the first one arriving again (SAME_REQUEST_MS).
 */
function undoThenExit(code: number): void {
  if (undoingSince !== undefined) {
    if (performance.now() - undoingSince >= SAME_REQUEST_MS) process.exit(code);
    return;
  }
  undoingSince = performance.now();
  setTimeout(() => process.exit(code), UNDO_TIMEOUT_MS).unref();
  void (async () => {
    for (const step of [...undoSteps].reverse()) await step().catch(() => {});
  })().then(() => process.exit(code));
}

/**
 * While a command starts: exits 0, after undoing what it may have started already (the embedded
 * server `db` opens before it installs its stop), unless the command's own stop is installed.
 */
function exitUnlessHandled(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  undoThenExit(0);
}

/** A one-shot command's stop: undo what it started, then exit as the signal would. */
function stopOneShot(signal: NodeJS.Signals): void {
  undoThenExit(SIGNAL_EXIT_CODE[signal as keyof typeof SIGNAL_EXIT_CODE]);
}

/**
 * The first thing the CLI does, before it loads a command's modules (a second or more on a busy
 * machine): a stop then exits 0 at once. Also watches for an npm launcher that goes away
 * (launcher.ts). Returns what a one-shot command calls once it is loaded: from then on a stop
 * undoes what it started and exits 128 + the signal's number (stopOneShot).
 */
export function exitWhileStarting(): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, exitUnlessHandled);
  stopWhenLauncherGoes();
  return () => {
    for (const signal of STOP_SIGNALS) {
      process.off(signal, exitUnlessHandled);
      process.on(signal, stopOneShot);
    }
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
      process.exit(SIGNAL_EXIT_CODE[signal as keyof typeof SIGNAL_EXIT_CODE]);
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
