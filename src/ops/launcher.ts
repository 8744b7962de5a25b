// A foreground command started through npm (`npx gcore-image-sync …`, `npm exec`, `npm start`)
// stops when npm goes away. npm 11 runs the bin through a shell that neither passes SIGTERM or
// SIGINT on nor dies with them, so a supervisor or a person who signals the pid they started would
// otherwise leave this process (and the embedded server or fake API it holds) behind. On Linux the
// npm process is found among the ancestors through /proc; while it is there nothing is done, and
// once it is gone (or its pid names another process) this process signals itself SIGTERM: it stops
// exactly as if it had been signalled. npm passes SIGINT (and SIGTERM) on to its shell only, which
// waits for this process before it acts on it, and npm waits for the shell: so a shell between npm
// and this process that wakes up (its count of context switches moves while it should sleep in
// wait()) was signalled, and counts as npm going away too. A process in another session than npm's
// (setsid) was detached on purpose and is left alone; without npm, or without /proc, nothing is watched.
import { every } from './periodic.js';
import { contextSwitches, readCmdline, readStat } from './proc-stat.js';

/** How often the launcher is looked for: a read of one small /proc file. */
const POLL_MS = 1000;
/** npm's shell sits between it and this process; a few more levels allow for wrappers. */
const MAX_DEPTH = 6;

/**
 * Whether /proc/<pid>/cmdline is npm's: npm sets its title to "npm exec …" or "npm start" (the
 * arguments then read as one), and before that it runs as `node …/npm-cli.js` or `…/npx-cli.js`.
 */
export function isNpmCommandLine(cmdline: string): boolean {
  const args = cmdline.split('\0');
  const program = args[0]!.split(' ')[0]!.split('/').pop();
  if (program === 'npm' || program === 'npx') return true;
  return /(?:^|\/)np[mx]-cli\.js$/.test(args[1] ?? '');
}

/** A process between npm and this one (npm's shell), and how often it had been woken when looked at. */
interface Waiting {
  pid: number;
  switches: string | undefined;
}

export interface Launcher {
  pid: number;
  startTime: string;
  between: Waiting[];
}

/**
 * The npm process this one was started through, in the same session; undefined when there is none to watch.
 * @public test/launcher.test.ts imports it from the built file, in a process npm starts.
 */
export function findLauncher(env: NodeJS.ProcessEnv = process.env): Launcher | undefined {
  // npm sets npm_command for what it runs; without it no ancestor is npm's (and /proc is not read).
  if (env.npm_command === undefined || process.platform !== 'linux') return undefined;
  const self = readStat(process.pid);
  if (!self) return undefined;
  const between: Waiting[] = [];
  let pid = self.ppid;
  for (let depth = 0; depth < MAX_DEPTH && pid > 1; depth += 1) {
    const stat = readStat(pid);
    if (!stat) return undefined;
    if (isNpmCommandLine(readCmdline(pid))) {
      return stat.session === self.session ? { pid, startTime: stat.startTime, between } : undefined;
    }
    between.push({ pid, switches: contextSwitches(pid) });
    pid = stat.ppid;
  }
  return undefined;
}

/** Whether the launcher still runs (its pid is there and names the same process) and its shell was not signalled. */
function launcherAlive(launcher: Launcher): boolean {
  return (
    readStat(launcher.pid)?.startTime === launcher.startTime &&
    launcher.between.every((shell) => contextSwitches(shell.pid) === shell.switches)
  );
}

/** After this process was stopped and continued (Ctrl-Z, fg), its shell was woken by that: look again from here. */
function lookAgain(launcher: Launcher): void {
  for (const shell of launcher.between) shell.switches = contextSwitches(shell.pid);
}

/** Signals this process SIGTERM once its npm launcher is gone; the check runs on a timer that keeps nothing alive. */
export function stopWhenLauncherGoes(launcher = findLauncher()): void {
  if (!launcher) return;
  const continued = () => lookAgain(launcher);
  process.on('SIGCONT', continued);
  every(
    POLL_MS,
    () => {
      if (launcherAlive(launcher)) return undefined;
      process.off('SIGCONT', continued);
      process.kill(process.pid, 'SIGTERM');
      return 'stop';
    },
    // The reads of /proc answer undefined rather than throw; this would be a bug, said as a warning.
    { onError: (error) => process.emitWarning(`could not look for the npm launcher: ${error.message}`) },
  );
}
