import type { Sql } from '../db.js';
import type { Triple } from '../interfaces.js';
import { inRunScope } from './runScope.js';

export interface RunStart {
  kind: 'scheduled' | 'manual';
  /** The schedule group it covers; null covers every target. */
  scheduleKey: string | null;
  /** A single target it covers instead (sync --target). */
  target?: Triple;
  /** Unique per tick or manual request, so a retried tick reuses its run. */
  trigger: string;
}

export interface Run {
  id: number;
  startedAt: string;
  planned: number;
  /** Listings of discovery scopes it opened, to be queued (listings.id). */
  listings: number[];
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
    const [run] = await tx<{ id: number; inserted: boolean }[]>`
      INSERT INTO sync_runs (kind, schedule_key, target_project_id, target_region_id, target_image_id, trigger, started_at, planned)
      VALUES (${start.kind}, ${start.scheduleKey}, ${t?.projectId ?? null}, ${t?.regionId ?? null}, ${t?.imageId ?? null},
        ${start.trigger}, now(), 0)
      ON CONFLICT (trigger) DO UPDATE SET trigger = EXCLUDED.trigger
      RETURNING id, xmax = 0 AS inserted`;
    if (run!.inserted) {
      // A run of one target lists nothing.
      if (!t) {
        await tx`
          INSERT INTO listings (run_id, scope_key, started_at)
          SELECT ${run!.id}, key, now() FROM scopes WHERE ${start.scheduleKey}::text IS NULL OR schedule_key = ${start.scheduleKey}`;
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
    const listings = await tx<{ id: number }[]>`SELECT id FROM listings WHERE run_id = ${run!.id} AND status = 'expanding' ORDER BY id`;
    return {
      id: run!.id,
      startedAt: row!.started_at,
      planned: row!.planned,
      listings: listings.map((l) => l.id),
      superseded: superseded.map((r) => r.id),
    };
  });
}
