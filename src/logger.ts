// JSON logs on stdout (pino). The API key never reaches a log line: nothing
// logs it, and any field that could carry it is redacted as a second guard.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'gcore-image-sync' },
      redact: { paths: ['apiKey', '*.apiKey', 'authorization', '*.authorization', '*.headers.authorization'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
