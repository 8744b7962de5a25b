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

/**
 * How long a service has to give its first answer when a command opens it.
 * A connection and a first query take milliseconds even on a loaded server,
 * so this only ends waits that would never end: a port that accepts
 * connections and says nothing (a firewall, a proxy with nothing behind it,
 * another program on the port), which the libraries alone wait on for 30 s
 * (postgres.js) or forever (ioredis's connectTimeout ends at the TCP connect,
 * and its ready check then waits with no limit). Three seconds leaves a
 * command room to start and say so well within 10 s. Only the first answer is
 * timed: a process already running whose service goes away keeps retrying.
 */
export const FIRST_ANSWER_TIMEOUT_MS = 3000;

/** `answer`, or a rejection once FIRST_ANSWER_TIMEOUT_MS pass without it; the caller names the service and closes its client. */
export async function firstAnswer<T>(answer: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${FIRST_ANSWER_TIMEOUT_MS / 1000} s`)), FIRST_ANSWER_TIMEOUT_MS);
  });
  try {
    return await Promise.race([answer, silence]);
  } finally {
    clearTimeout(timer);
  }
}
