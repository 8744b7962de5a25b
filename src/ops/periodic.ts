// The one way this project runs something every so often: a heartbeat, a
// sweep, a progress line. Each loop gets the same guarantees from here
// instead of writing them again: a run never overlaps the one before it (a
// slow Postgres makes runs late, not piled up), the timer never keeps the
// process alive, a failure is logged and the next run tries again, and stop()
// waits for the run in flight so that what follows a stop sees it finished.

/** What a failed run is reported to: the loop's own wording, at the level it chose. */
type RunFailed = (error: Error) => void;

export interface PeriodicOptions {
  /** Run once at once, not only after the first interval. */
  now?: boolean;
  /** Called with a run's error; the loop goes on. */
  onError: RunFailed;
}

export interface Periodic {
  /** No further runs; resolves when the run in flight (if any) has ended. */
  stop(): Promise<void>;
}

/**
 * Runs `task` every `intervalMs` until stopped or until `task` returns
 * 'stop'. A tick that comes while the previous run is still going is skipped.
 */
export function every(intervalMs: number, task: () => unknown, options: PeriodicOptions): Periodic {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const run = () => {
    if (stopped || running) return;
    // Started on the next microtask, so that `running` is set before the task can end.
    running = Promise.resolve()
      .then(task)
      .then(
        (answer) => answer === 'stop' && halt(),
        (error: unknown) => options.onError(error instanceof Error ? error : new Error(String(error))),
      )
      .finally(() => (running = undefined));
  };
  const timer = setInterval(run, intervalMs);
  timer.unref();
  const halt = () => {
    stopped = true;
    clearInterval(timer);
  };
  if (options.now) run();
  return {
    async stop() {
      halt();
      await running;
    },
  };
}
