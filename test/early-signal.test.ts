// A stop during start-up exits 0 at once: the CLI handles SIGTERM and SIGINT before it loads a
// command's modules (a second or more on a busy machine), not only once the command has installed
// its own stop. The command's import is held open (support/hold-command-import.ts) so the signal
// lands while it is, for certain, still loading.
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const HOLD = pathToFileURL(fileURLToPath(new URL('./support/hold-command-import.ts', import.meta.url))).href;

/** Starts `worker` with its command's import held, waits until that import has begun, signals it, and resolves how it ended. */
function signalWhileLoading(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  // No database or queue settings: a worker that got past loading would fail on them, not exit 0.
  const child = spawn(process.execPath, ['--import', HOLD, CLI, 'worker'], { env: { PATH: process.env.PATH! } });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (stderr.includes('importing worker.js\n')) child.kill(signal);
  });
  return new Promise((resolve) => child.on('close', (code, by) => resolve({ code, signal: by, stderr })));
}

describe('a stop while a command is still loading', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s exits 0 at once, with nothing said', async (signal) => {
    const ended = await signalWhileLoading(signal);
    expect({ ...ended, stderr: ended.stderr.endsWith('importing worker.js\n') }).toEqual({ code: 0, signal: null, stderr: true });
  });
});
