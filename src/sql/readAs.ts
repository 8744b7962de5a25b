import type { TransactionSql } from 'postgres';
import type { Sql } from '../db/db.js';

/** How long one of the web view's reads may take before Postgres stops it (a page, not a report). */
const READ_TIMEOUT_MS = 10_000;

/**
 * Runs `read` in a read-only transaction as `role` (SET LOCAL ROLE), so what it
 * runs has the role's rights and no others, whoever the pool logs in as: the
 * web view reads through the reporting role (prepareReadingRole).
 *
 * JIT is off: a page's queries stop after at most 50 rows, but their planned
 * cost (a walk priced as if it read every image) passes jit_above_cost, and
 * compiling them took 0.7 s of a page's time, which no statement_timeout
 * interrupts (measured on the benchmark's million images).
 */
export function readAs<T>(sql: Sql, role: string, read: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin('read only', async (tx) => {
    await tx.unsafe(
      `SET LOCAL ROLE "${role.replace(/"/g, '""')}"; SET LOCAL statement_timeout = ${READ_TIMEOUT_MS}; SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0`,
    );
    return read(tx);
  }) as Promise<T>;
}

/**
 * How long a page may walk an index in its order, testing each row as it passes, before the rows are found
 * another way (by the planner's plan, which gathers and sorts them). A walk is quick when the tested rows
 * match often; one this long has met few matches.
 */
export const WALK_MS = 400;

type Settings = Record<string, string>;

/** Planner settings that leave no index to read in order: the rows a walk did not find are gathered and sorted. */
export const GATHERED: Settings = { enable_indexscan: 'off', enable_indexonlyscan: 'off' };

/** What a savepoint's body found, thrown so that the savepoint is rolled back (withSettings). */
class Found extends Error {
  constructor(readonly value: unknown) {
    super('found: the savepoint is rolled back');
  }
}

/**
 * Runs `body` in a savepoint with the settings given (SET LOCAL), and rolls the savepoint back when it is
 * done: the web view's reads change nothing, and the rollback takes the settings with it. Setting them back
 * by a statement instead would run under them, and under a statement timeout of 30 ms that statement can be
 * cancelled itself, which would leave the page's transaction aborted.
 */
export async function withSettings<T>(tx: TransactionSql, settings: Settings, body: (sp: TransactionSql) => Promise<T>): Promise<T> {
  const names = Object.keys(settings);
  const outcome = await tx
    .savepoint(async (sp) => {
      await sp`SELECT set_config(name, value, true) FROM unnest(${names}::text[], ${Object.values(settings)}::text[]) AS s(name, value)`;
      throw new Found(await body(sp));
    })
    .catch((thrown: unknown) => thrown);
  if (outcome instanceof Found) return outcome.value as T;
  throw outcome;
}

/** `body` under a statement timeout of `ms` (and the settings given); undefined when it took longer. */
export async function within<T>(
  tx: TransactionSql,
  ms: number,
  body: (sp: TransactionSql) => Promise<T>,
  settings: Settings = {},
): Promise<T | undefined> {
  try {
    return await withSettings(tx, { statement_timeout: String(ms), ...settings }, body);
  } catch (error) {
    if ((error as { code?: string }).code === '57014') return undefined;
    throw error;
  }
}
