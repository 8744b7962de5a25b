// Errors that change control flow, as named classes so callers catch by meaning.

/** Bad configuration: every problem found, each with where it is. Nothing was done. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** A service the command needs did not answer. */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: 'Postgres' | 'Redis',
    readonly where: string,
    cause: unknown,
  ) {
    super(`${service} at ${where} did not answer: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'ServiceUnavailableError';
  }
}
