import type { Logger } from '../ops/logger.js';

export interface CommandContext {
  /** Flags and positionals after the command name. */
  args: string[];
  logger: Logger;
  /** Where human-readable summaries go: stderr, so stdout carries only JSON log lines. */
  print(line: string): void;
}
