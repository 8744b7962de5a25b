// JSON logs on stdout (pino). The API key never reaches a log line: nothing
// logs it, and any field that could carry it is redacted as a second guard.
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines by default; LOG_PRETTY=1 makes them readable for a person at a terminal. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const pretty = process.env.LOG_PRETTY === '1' && !destination;
  return pino(
    {
      level,
      // Host and pid tell apart the lines of several worker processes merged in one log store.
      base: { service: 'gcore-image-sync', hostname: hostname(), pid: process.pid },
      redact: { paths: ['apiKey', '*.apiKey', 'authorization', '*.authorization', '*.headers.authorization'], censor: '[redacted]' },
    },
    pretty
      ? pino.transport({
          target: 'pino-pretty',
          options: { destination: 1, colorize: process.stdout.isTTY, ignore: 'service,hostname,pid' },
        })
      : (destination ?? pino.destination({ dest: 1, sync: false })),
  );
}
