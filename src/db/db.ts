// The Postgres connection. Only modules under src/sql and migrate.ts use it.
import postgres from 'postgres';
import { redactUrl } from '../config/config.js';
import type { ServerSocket } from './embedded-postgres.js';
import { firstAnswer, ServiceUnavailableError } from '../errors.js';

export type Sql = postgres.Sql;

export interface ConnectOptions {
  max?: number;
  /** Seconds a connection may take to open once running; the first answer has FIRST_ANSWER_TIMEOUT_MS. */
  connectTimeout?: number;
  /** Opens each connection's socket (Database.socket): where the server is then, rather than the URL's port. */
  socket?: () => ServerSocket;
}

/** Opens a pool and proves it answers, or fails fast saying where it looked. */
export async function connectPostgres(url: string, options: ConnectOptions = {}): Promise<Sql> {
  const { socket } = options;
  const sql = postgres(url, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeout ?? 5,
    onnotice: () => {},
    // bigint columns (sizes, ids) stay far below 2^53, so numbers are exact.
    types: { bigint: { to: 20, from: [20], serialize: (value: number) => String(value), parse: (text: string) => Number(text) } },
    transform: { undefined: null },
    // postgres.js connects no socket it is handed, and sends on it at once (written once it connects).
    ...(socket && { socket: () => socket().connect() }),
  });
  try {
    await firstAnswer(sql`SELECT 1`);
  } catch (error) {
    await sql.end({ timeout: 0 });
    throw new ServiceUnavailableError('Postgres', redactUrl(url), error);
  }
  return sql;
}
