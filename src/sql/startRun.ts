import type { Sql } from '../db.js';
import type { Triple } from '../interfaces.js';

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
}

/**
 * Opens a run planning every target in its scope (finished at once when empty). A scheduled run closes the
 * earlier open runs of its group as superseded: their refreshes were lost or
 * are still queued, and this run's refreshes now stand for them.
 */
export async function startRun(sql: Sql, start: RunStart): Promise<Run> {
  const t = start.target;
  return sql.begin(async (tx) => {
    const [run] = await tx<{ id: number; started_at: string; planned: number }[]>`
      INSERT INTO sync_runs (kind, schedule_key, target_project_id, target_region_id, target_image_id, trigger, started_at,
        planned, finished_at, status)
      SELECT ${start.kind}, ${start.scheduleKey}, ${t?.projectId ?? null}, ${t?.regionId ?? null}, ${t?.imageId ?? null},
        ${start.trigger}, now(), count(*),
        CASE WHEN count(*) = 0 THEN now() END, CASE WHEN count(*) = 0 THEN 'finished' ELSE 'running' END
      FROM targets WHERE (${start.scheduleKey}::text IS NULL OR schedule_key = ${start.scheduleKey})
        AND (${t?.imageId ?? null}::text IS NULL OR (project_id, region_id, image_id) = (${t?.projectId ?? null}::int, ${t?.regionId ?? null}::int, ${t?.imageId ?? null}::text))
      ON CONFLICT (trigger) DO UPDATE SET trigger = EXCLUDED.trigger
      RETURNING id, started_at, planned`;
    if (start.kind === 'scheduled') {
      await tx`
        UPDATE sync_runs SET finished_at = now(), status = 'superseded'
        WHERE finished_at IS NULL AND kind = 'scheduled' AND schedule_key = ${start.scheduleKey} AND id < ${run!.id}`;
    }
    return { id: run!.id, startedAt: run!.started_at, planned: run!.planned };
  });
}
