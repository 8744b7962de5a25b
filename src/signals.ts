// Graceful stop on SIGTERM (orchestrators), SIGINT (a terminal's Ctrl-C) and SIGHUP (the terminal
// closed): stop taking jobs, let those in flight finish within a bound, close connections, exit 0.
// Jobs still running at the bound are handed back by exiting: their Redis locks lapse and another
// worker retries them. A second signal exits at once. Until a command installs its own stop, a
// signal exits 0 at once (exitWhileStarting): nothing has been started that needs stopping. A
// one-shot command (sync, demo, status, ...) stopped by a signal first undoes what it started that
// would outlive it (undoIfStopped: the embedded server, the demo's database), then exits 128 + the
// signal's number, as a process killed by it would.
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

/** Exits 0 on a stop signal, unless a command's own stop (onShutdown, or a listener of its own) is installed. */
function exitUnlessHandled(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  process.exit(0);
}

let undoing = false;

/** A one-shot command's stop: undo what it started (a step that fails is passed over), then exit as the signal would. */
function undoThenExit(signal: NodeJS.Signals): void {
  const code = SIGNAL_EXIT_CODE[signal as keyof typeof SIGNAL_EXIT_CODE];
  if (undoing) process.exit(code);
  undoing = true;
  setTimeout(() => process.exit(code), UNDO_TIMEOUT_MS).unref();
  void (async () => {
    for (const step of [...undoSteps].reverse()) await step().catch(() => {});
  })().then(() => process.exit(code));
}

/**
 * The first thing the CLI does, before it loads a command's modules (a second or more on a busy
 * machine): a stop then exits 0 at once. Also watches for an npm launcher that goes away
 * (launcher.ts). Returns what a one-shot command calls once it is loaded: from then on a stop
 * undoes what it started and exits 128 + the signal's number (undoThenExit).
 */
export function exitWhileStarting(): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, exitUnlessHandled);
  stopWhenLauncherGoes();
  return () => {
    for (const signal of STOP_SIGNALS) {
      process.off(signal, exitUnlessHandled);
      process.on(signal, undoThenExit);
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
