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

/** Postgres' answer when the database in the URL does not exist (SQLSTATE invalid_catalog_name). */
const NO_SUCH_DATABASE = '3D000';

/** A service the command needs did not answer, or answered that it cannot serve it. */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: 'Postgres' | 'Redis',
    readonly where: string,
    cause: unknown,
  ) {
    const reason = (cause as Error)?.message ?? String(cause);
    super(
      (cause as { code?: unknown })?.code === NO_SUCH_DATABASE
        ? `${service} at ${where} answered: ${reason}: create it (e.g. createdb), or point DATABASE_URL at one that exists`
        : `${service} at ${where} did not answer: ${reason}`,
    );
    this.name = 'ServiceUnavailableError';
  }
}
