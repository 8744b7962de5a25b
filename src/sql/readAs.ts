import type { TransactionSql } from 'postgres';
import type { Sql } from '../db/db.js';

/** How long one of the web view's reads may take before Postgres stops it (a page, not a report). */
const READ_TIMEOUT_MS = 10_000;

/**
 * Runs `read` in a read-only transaction as `role` (SET LOCAL ROLE), so what it
 * runs has the role's rights and no others, whoever the pool logs in as: the
 * web view reads through the reporting role (prepareReadingRole).
 */
export function readAs<T>(sql: Sql, role: string, read: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin('read only', async (tx) => {
    await tx.unsafe(`SET LOCAL ROLE "${role.replace(/"/g, '""')}"; SET LOCAL statement_timeout = ${READ_TIMEOUT_MS}`);
    return read(tx);
  }) as Promise<T>;
}
