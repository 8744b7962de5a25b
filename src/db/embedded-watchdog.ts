// Every process that uses the embedded server checks on it every few
// seconds: a server that died is started again (on another port when its own
// is taken; the process's connections follow it), and data gone for good
// ends the checks and stops what is left of its server.
import { readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { alive, clusterId, runningServer, startServer, STOP_TIMEOUT_SECONDS, warn, type Postmaster } from './embedded-cluster.js';
import { withLock } from './embedded-home.js';
import type { Binaries, ServerUser } from './embedded-install.js';
import { every } from '../ops/periodic.js';
import { POLL, STORE_AWAY } from '../work/retry-policy.js';

/**
 * Whether the data this process opened is gone for good, and why: the one
 * place that decides it. Gone when its data directory holds no cluster any
 * more (deleted or moved, the home with it) or another one (made anew since, by a
 * process that found none). Nothing else is: a server that died, a port
 * taken, a start that fails are outages the watchdog works through, and the
 * process waits them out. `opened` and `now` are clusterId's answers.
 */
export function dataLoss(dataDir: string, opened: string, now: string | undefined): string | undefined {
  if (now === undefined) return `the embedded PostgreSQL's data directory ${dataDir} is gone (deleted or moved while this process used it)`;
  if (now !== opened) {
    return `the embedded PostgreSQL's data directory ${dataDir} holds another cluster than the one this process opened (its data was deleted and made anew)`;
  }
  return undefined;
}

/** Resolves once `pid` has ended, or after `ms`; whether it ended. */
async function ended(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resume) => setTimeout(resume, POLL.embeddedMs));
  }
  return true;
}

/** Sends `signal` to `pid`; false when it is gone already. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the server `pid` of a data directory deleted under it, which pg_ctl
 * cannot reach any more, and says what became of it: an immediate shutdown
 * (SIGQUIT, which ends its sessions too), SIGKILL if it outlasts
 * STOP_TIMEOUT_SECONDS. Only a process /proc shows to be a postgres working in
 * that deleted directory (its realpath `realDataDir`), so neither another
 * program that took the pid nor a server made since on a new directory of
 * that name. Where /proc cannot tell (macOS), it is left to PostgreSQL, which
 * shuts itself down within a minute of losing its postmaster.pid.
 */
async function stopOrphanedServer(pid: number, realDataDir: string): Promise<string> {
  if (!alive(pid)) return 'its server had stopped';
  const [program, cwd] = await Promise.all([readlink(`/proc/${pid}/exe`), readlink(`/proc/${pid}/cwd`)]).catch(() => [
    undefined,
    undefined,
  ]);
  if (program === undefined || cwd === undefined) return `its server (pid ${pid}) stops itself within a minute`;
  if (basename(program.replace(/ \(deleted\)$/, '')) !== 'postgres') return 'its server had stopped';
  // Moved rather than deleted: the data is not lost, only gone from here, and its server serves it there.
  if (cwd !== `${realDataDir} (deleted)`) return `its server (pid ${pid}) runs on in ${cwd}, left as it is`;
  const stopTimeoutMs = STOP_TIMEOUT_SECONDS * 1000;
  if (!signal(pid, 'SIGQUIT') || (await ended(pid, stopTimeoutMs))) return `stopped its server (pid ${pid})`;
  if (!signal(pid, 'SIGKILL') || (await ended(pid, stopTimeoutMs))) return `killed its server (pid ${pid}), which did not stop`;
  return `could not stop its server (pid ${pid})`;
}

/** The server a process opened, as its watchdog needs it. */
export interface Watched {
  root: string;
  dataDir: string;
  bin: Binaries;
  user: ServerUser | undefined;
  /** clusterId's answer when the process opened it. */
  cluster: string;
  /** The data directory's realpath when opened: a server working in it once it is deleted is found by it. */
  realDataDir: string;
  server: Postmaster;
}

export interface Watchdog {
  /** Where the server runs now: every connection the process opens asks. */
  server(): Postmaster;
  /** Why the data is gone for good (dataLoss), once found so; undefined until then. */
  lost(): string | undefined;
  onLost(listener: (reason: string) => void): void;
  /** No further checks; resolves once the one in flight has ended. */
  stop(): Promise<void>;
}

/**
 * Checks the server every STORE_AWAY.embeddedCheckMs. A server that dies under a process
 * still using it (the OOM killer, a kill) is started again, on its last port
 * or, when that is taken, another, and this process's connections follow it
 * there. A restart that fails is said once (again only when its reason
 * changes), and tried at every check. Data that is gone for good (dataLoss)
 * ends the checks: its server, if left running, is stopped.
 */
export function watchServer(watched: Watched): Watchdog {
  const { root, dataDir, bin, user } = watched;
  let server = watched.server;
  let lost: string | undefined;
  let failure: string | undefined;
  const lostListeners: Array<(reason: string) => void> = [];
  const check = async (): Promise<'stop' | undefined> => {
    const loss = dataLoss(dataDir, watched.cluster, await clusterId(dataDir));
    if (loss !== undefined) {
      lost = `${loss}: ${await stopOrphanedServer(server.pid, watched.realDataDir)}`;
      warn(lost);
      for (const listener of lostListeners) listener(lost);
      return 'stop';
    }
    const { running, started } = await withLock(root, async () => {
      const found = await runningServer(dataDir);
      return found ? { running: found, started: false } : { running: await startServer(bin, dataDir, user), started: true };
    });
    if (started) {
      const moved = running.port === server.port ? '' : ` on port ${running.port} (its port ${server.port} was taken)`;
      warn(`the embedded PostgreSQL in ${dataDir} had stopped; started it again${moved}`);
    }
    server = running;
    failure = undefined;
    return undefined;
  };
  const checks = every(STORE_AWAY.embeddedCheckMs, check, {
    onError: (error) => {
      if (error.message === failure) return;
      failure = error.message;
      warn(
        `the embedded PostgreSQL in ${dataDir} has stopped and could not be started again (trying every ${STORE_AWAY.embeddedCheckMs / 1000} s): ${error.message}`,
      );
    },
  });
  return {
    server: () => server,
    lost: () => lost,
    onLost(listener) {
      if (lost !== undefined) listener(lost);
      else lostListeners.push(listener);
    },
    stop: () => checks.stop(),
  };
}
