import type { Sql } from '../db.js';
import { outcomeCounts } from './outcomeCounts.js';

export interface RunProgress {
  id: number;
  status: string;
  kind: 'scheduled' | 'manual';
  /** The schedule group it covers; null for a manual run of every target. */
  scheduleKey: string | null;
  /** Null: every account. */
  account: string | null;
  startedAt: string;
  finishedAt: string | null;
  planned: number;
  unchanged: number;
  changed: number;
  deleted: number;
  failed: number;
  /** Scope listings that ended incomplete (deleting and confirming nothing). */
  listingsFailed: number;
}

/** A run with its counts: frozen once finished, counted live from targets before. */
export async function getRun(sql: Sql, id: number): Promise<RunProgress | undefined> {
  const [row] = await sql<RunProgress[]>`${runProgress(sql)} WHERE r.id = ${id}`;
  return row;
}

/** Every run still open, oldest first, with its live counts and schedule group. */
export async function openRuns(sql: Sql): Promise<RunProgress[]> {
  return sql`${runProgress(sql)} WHERE r.finished_at IS NULL ORDER BY r.id`;
}

function runProgress(sql: Sql) {
  return sql`
    SELECT r.id, r.status, r.kind, r.schedule_key AS "scheduleKey", r.account, r.started_at AS "startedAt", r.finished_at AS "finishedAt", r.planned,
      CASE WHEN r.finished_at IS NULL THEN c.unchanged ELSE r.unchanged END AS unchanged,
      CASE WHEN r.finished_at IS NULL THEN c.changed ELSE r.changed END AS changed,
      CASE WHEN r.finished_at IS NULL THEN c.deleted ELSE r.deleted END AS deleted,
      CASE WHEN r.finished_at IS NULL THEN c.failed ELSE r.failed END AS failed,
      CASE WHEN r.finished_at IS NULL
        THEN (SELECT count(*)::int FROM listings l WHERE l.run_id = r.id AND l.status = 'incomplete')
        ELSE r.listings_failed END AS "listingsFailed"
    FROM sync_runs r,
    LATERAL (${outcomeCounts(sql)} AND r.finished_at IS NULL) c`;
}
