import type { TransactionSql } from 'postgres';

export interface RunRow {
  id: number;
  kind: string;
  account: string | null;
  schedule_key: string | null;
  status: string;
  started_at: Date;
  finished_at: Date | null;
  planned: number;
  attempted: number;
  changed: number;
  created: number;
  deleted: number;
  failed: number;
  listings_failed: number;
  unattempted: number;
  error: string | null;
}

/** `limit` runs newest first, those with an id below `before` when given (the primary key is the keyset). */
export function recentRuns(tx: TransactionSql, limit: number, before?: number): Promise<RunRow[]> {
  return tx<RunRow[]>`
    SELECT id, kind, account, schedule_key, status, started_at, finished_at, planned, attempted, changed, created, deleted, failed,
      listings_failed, unattempted, error
    FROM sync_runs ${before === undefined ? tx`` : tx`WHERE id < ${before}`}
    ORDER BY id DESC LIMIT ${limit}`;
}

export interface ListingRow {
  id: number;
  run_id: number;
  scope_key: string;
  /** The scope's name (scopes.name), or null when it has none or is no longer configured. */
  scope_name: string | null;
  account: string;
  status: string;
  expected: number | null;
  listed: number | null;
  absent: number | null;
  error: string | null;
  suspect: string | null;
}

/** The scope listings of these runs (listings_run_scope_idx), in each run by id. */
export function runListings(tx: TransactionSql, runIds: number[]): Promise<ListingRow[]> {
  return tx<ListingRow[]>`
    SELECT l.id, l.run_id, l.scope_key, s.name AS scope_name, l.account, l.status, l.expected, l.listed, l.absent, l.error, l.suspect
    FROM listings l LEFT JOIN scopes s ON s.key = l.scope_key
    WHERE l.run_id = ANY(${runIds}::bigint[]) ORDER BY l.run_id DESC, l.id`;
}

export interface FailureCause {
  error_class: string;
  count: number;
  latest_message: string;
  latest_at: Date;
}

/** Refreshes that gave up within the interval, by cause: how many, and the latest of each (sync_failures_failed_at_idx). */
export function failuresByCause(tx: TransactionSql, within: '24 hours' | '7 days'): Promise<FailureCause[]> {
  return tx<FailureCause[]>`
    SELECT DISTINCT ON (error_class) error_class, count(*) OVER (PARTITION BY error_class)::int AS count,
      message AS latest_message, failed_at AS latest_at
    FROM sync_failures WHERE failed_at >= now() - ${within}::interval
    ORDER BY error_class, failed_at DESC, id DESC`;
}

export interface AuditLagRow {
  account: string;
  polled_at: Date | null;
  /** now() - polled_at in seconds; null before the first complete poll. */
  lag_seconds: number | null;
  last_error: string | null;
  ahead_count: number;
  ahead_at: Date | null;
  lease_holder: string | null;
  lease_until: Date | null;
}

/** How far behind each followed account's audit log is read. */
export function auditLogLag(tx: TransactionSql): Promise<AuditLagRow[]> {
  return tx<AuditLagRow[]>`
    SELECT account, polled_at, extract(epoch FROM now() - polled_at)::float8 AS lag_seconds, last_error, ahead_count, ahead_at,
      lease_holder, lease_until
    FROM audit_log_cursors ORDER BY account`;
}
