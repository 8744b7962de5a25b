// The built CLI as a child process, as an operator runs it (npm run build first).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; `env` is the whole environment (PATH added); in this process's directory unless `cwd` is given. */
export function runCli(args: string[], env: Record<string, string>, cwd?: string): Promise<CliResult> {
  return startCli(args, env, cwd).exited;
}

export interface RunningCli {
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM; the command's result once it has exited. */
  stop(): Promise<CliResult>;
  exited: Promise<CliResult>;
}

/** Starts a long-running command (start, worker) and captures its output. */
export function startCli(args: string[], env: Record<string, string>, cwd?: string): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH!, ...env } });
  // A test that fails or times out before stopping it must not leave a worker running after the run.
  const orphaned = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', orphaned);
  child.once('exit', () => process.off('exit', orphaned));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
