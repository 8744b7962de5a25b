// Logs on stdout (pino): JSON for machines, one readable line per event on a
// terminal (log-format.ts). The API key never reaches a log line: nothing
// logs it, and any field that could carry it is redacted as a second guard.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { DestinationStream, Logger } from 'pino';
import { logFormat, prettyLine } from './log-format.js';
import { aboveProgress } from './progress.js';

export type { Logger };

/**
 * pino, loaded with the first logger: a command that logs nothing (`status`, `--help`) starts
 * without it, a few tens of milliseconds sooner. It is CommonJS, so a require loads it at once.
 */
const loadPino = () => createRequire(import.meta.url)('pino') as typeof import('pino');

/**
 * Writes each line at once, above a progress line being drawn on the same
 * terminal: a synchronous stream, so no worker thread starts for it.
 */
function terminalDestination(out: NodeJS.WriteStream, format: (line: string) => string): DestinationStream {
  return { write: (line: string) => aboveProgress(() => out.write(format(line))) };
}

/** The format LOG_FORMAT (or LOG_PRETTY, or the terminal) asks for; `destination` takes JSON, for tests. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const { pino } = loadPino();
  const out = process.stdout;
  const format = logFormat(process.env, out.isTTY === true);
  const color = out.isTTY === true && !process.env.NO_COLOR;
  const stream =
    destination ??
    (format === 'pretty'
      ? terminalDestination(out, (line) => prettyLine(line, color))
      : out.isTTY
        ? terminalDestination(out, (line) => line)
        : pino.destination({ dest: 1, sync: false }));
  return pino(
    {
      level,
      // Host and pid tell apart the lines of several worker processes merged in one log store.
      base: { service: 'gcore-image-sync', hostname: hostname(), pid: process.pid },
      redact: { paths: ['apiKey', '*.apiKey', 'authorization', '*.authorization', '*.headers.authorization'], censor: '[redacted]' },
    },
    stream,
  );
}
