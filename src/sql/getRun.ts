import type { Sql } from '../db/db.js';
import { runCounts } from './outcomeCounts.js';

/** What a run did (runCounts): live while it runs, frozen once closed. */
export interface RunCounts {
  unchanged: number;
  /** Every refresh that stored a new version, first sightings included. */
  changed: number;
  /** Of `changed`, the first sightings: an image's history began. */
  created: number;
  deleted: number;
  failed: number;
  /** Targets a confirming GET found alive outside their scope. */
  markedLeft: number;
  /** Targets its scope listings found that were not targets when it started (not in `planned`). */
  discovered: number;
  /** Images its scope listings returned. */
  listed: number;
  /** Scope listings that ended incomplete (deleting and confirming nothing). */
  listingsFailed: number;
  /** Closed incomplete: planned targets never attempted, and listings not ended, left queued (0 otherwise). */
  unattempted: number;
  listingsUnfinished: number;
}

export interface RunProgress extends RunCounts {
  id: number;
  /** running, finished, superseded, or incomplete (closed with work left: `error` says why). */
  status: string;
  kind: 'scheduled' | 'manual';
  /** The schedule group it covers; null for a manual run of every target. */
  scheduleKey: string | null;
  /** Null: every account. */
  account: string | null;
  startedAt: string;
  finishedAt: string | null;
  planned: number;
  error: string | null;
}

/** A run with its counts: frozen once finished, counted live from targets before. */
export async function getRun(sql: Sql, id: number): Promise<RunProgress | undefined> {
  const [row] = await sql<RunProgress[]>`${runProgress(sql)} WHERE r.id = ${id}`;
  return row;
}

/**
 * A run as stored, its counts frozen once finished and 0 before: for a look
 * that only asks whether it has closed, without counting every target of an
 * open run (seconds at a million).
 */
export async function getRunUncounted(sql: Sql, id: number): Promise<RunProgress | undefined> {
  const [row] = await sql<RunProgress[]>`${runProgress(sql, { live: false })} WHERE r.id = ${id}`;
  return row;
}

/** Every run still open, oldest first, with its live counts and schedule group. */
export async function openRuns(sql: Sql): Promise<RunProgress[]> {
  return sql`${runProgress(sql)} WHERE r.finished_at IS NULL ORDER BY r.id`;
}

/** Each count: the live one (c) while the run is open, the frozen column after. */
const live = (column: string, as: string) => `CASE WHEN r.finished_at IS NULL THEN c.${column} ELSE r.${column} END AS "${as}"`;
const stored = (column: string, as: string) => `r.${column} AS "${as}"`;

function runProgress(sql: Sql, { live: counted = true } = {}) {
  const counts = [
    ['unchanged', 'unchanged'],
    ['changed', 'changed'],
    ['created', 'created'],
    ['deleted', 'deleted'],
    ['failed', 'failed'],
    ['marked_left', 'markedLeft'],
    ['discovered', 'discovered'],
    ['listed', 'listed'],
    ['listings_failed', 'listingsFailed'],
  ].map(([column, as]) => (counted ? live : stored)(column!, as!));
  return sql`
    SELECT r.id, r.status, r.kind, r.schedule_key AS "scheduleKey", r.account, r.started_at AS "startedAt", r.finished_at AS "finishedAt",
      r.planned, r.error, r.unattempted, r.listings_unfinished AS "listingsUnfinished", ${sql.unsafe(counts.join(', '))}
    FROM sync_runs r
    ${counted ? sql`LEFT JOIN LATERAL (${runCounts(sql)} AND r.finished_at IS NULL) c ON true` : sql``}`;
}
