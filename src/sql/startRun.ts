import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import { inRunScope } from './runScope.js';

export interface RunStart {
  kind: 'scheduled' | 'manual';
  /** The schedule group it covers (a group is of one account); null covers every target, or every target of `account`. */
  scheduleKey: string | null;
  /** The account a manual run covers; a scheduled run's is its group's. */
  account?: string;
  /** A single target it covers instead (sync --target). */
  target?: Triple;
  /** Unique per tick or manual request, so a retried tick reuses its run. */
  trigger: string;
}

/** A listing as its jobs are queued: by id, on its account's list queue. */
export interface ListingJob {
  id: number;
  account: string;
}

export interface Run {
  id: number;
  startedAt: string;
  planned: number;
  /** Listings of discovery scopes it opened, to be queued on their accounts' queues. */
  listings: ListingJob[];
  /** Open runs of its group it closed as superseded. */
  superseded: number[];
}

/**
 * Opens a run planning every target in its scope and a listing of each
 * discovery scope of its group (finished at once when it has neither). A scheduled run closes the
 * earlier open runs of its group as superseded: their refreshes were lost or
 * are still queued, and this run's refreshes now stand for them.
 */
export async function startRun(sql: Sql, start: RunStart): Promise<Run> {
  const t = start.target;
  return sql.begin(async (tx) => {
    // A retried tick finds its run by trigger and plans nothing again.
    const key = start.scheduleKey;
    const [run] = await tx<{ id: number; inserted: boolean }[]>`
      INSERT INTO sync_runs (kind, account, schedule_key, target_project_id, target_region_id, target_image_id, trigger, started_at, planned)
      VALUES (${start.kind},
        coalesce(${start.account ?? null}::text, (SELECT account FROM targets WHERE schedule_key = ${key} LIMIT 1),
          (SELECT account FROM scopes WHERE schedule_key = ${key} LIMIT 1)),
        ${key}, ${t?.projectId ?? null}, ${t?.regionId ?? null}, ${t?.imageId ?? null}, ${start.trigger}, now(), 0)
      ON CONFLICT (trigger) DO UPDATE SET trigger = EXCLUDED.trigger
      RETURNING id, xmax = 0 AS inserted`;
    if (run!.inserted) {
      // A run of one target lists nothing.
      if (!t) {
        await tx`
          INSERT INTO listings (run_id, scope_key, account, started_at)
          SELECT ${run!.id}, key, account, now() FROM scopes
          WHERE (${key}::text IS NULL OR schedule_key = ${key}) AND (${start.account ?? null}::text IS NULL OR account = ${start.account ?? null}::text)`;
      }
      await tx`
        UPDATE sync_runs r SET planned = c.n,
          finished_at = CASE WHEN c.idle THEN now() END, status = CASE WHEN c.idle THEN 'finished' ELSE 'running' END
        FROM (SELECT id, n, n = 0 AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.run_id = p.id) AS idle
          FROM (SELECT r.id, (SELECT count(*)::int FROM targets t WHERE ${inRunScope(tx)}) AS n FROM sync_runs r WHERE r.id = ${run!.id}) p) c
        WHERE r.id = c.id`;
    }
    const superseded =
      start.kind === 'scheduled'
        ? await tx<{ id: number }[]>`
          UPDATE sync_runs SET finished_at = now(), status = 'superseded'
          WHERE finished_at IS NULL AND kind = 'scheduled' AND schedule_key = ${start.scheduleKey} AND id < ${run!.id}
          RETURNING id`
        : [];
    const [row] = await tx<{ started_at: string; planned: number }[]>`SELECT started_at, planned FROM sync_runs WHERE id = ${run!.id}`;
    const listings = await tx<
      ListingJob[]
    >`SELECT id, account FROM listings WHERE run_id = ${run!.id} AND status = 'expanding' ORDER BY id`;
    return {
      id: run!.id,
      startedAt: row!.started_at,
      planned: row!.planned,
      listings: [...listings],
      superseded: superseded.map((r) => r.id),
    };
  });
}
