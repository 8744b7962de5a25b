import type { Sql } from '../db.js';
import type { Target } from '../interfaces.js';
import { intervalSeconds, scheduleKey } from '../schedule.js';

const TARGETS_LOCK = 727_002;

export interface TargetChanges {
  added: number;
  rescheduled: number;
  removed: number;
}

/**
 * Makes the targets table equal to the configured set in one transaction.
 * Reconciles from several processes serialize on an advisory lock.
 */
export async function replaceTargets(sql: Sql, targets: Target[]): Promise<TargetChanges> {
  const projectIds = targets.map((t) => t.projectId);
  const regionIds = targets.map((t) => t.regionId);
  const imageIds = targets.map((t) => t.imageId);
  const keys = targets.map((t) => scheduleKey(t.schedule));
  // Parsing a cron pattern is slow next to everything else here: once per schedule group.
  const intervalOf = new Map<string, number>();
  const intervals = targets.map((t, n) => {
    const key = keys[n]!;
    if (!intervalOf.has(key)) intervalOf.set(key, intervalSeconds(t.schedule));
    return intervalOf.get(key)!;
  });
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${TARGETS_LOCK})`;
    await tx`
      CREATE TEMP TABLE configured ON COMMIT DROP AS
      SELECT * FROM unnest(${projectIds}::int[], ${regionIds}::int[], ${imageIds}::text[], ${keys}::text[], ${intervals}::int[])
        AS c(project_id, region_id, image_id, schedule_key, interval_seconds)`;
    const [removed] = await tx`
      WITH gone AS (
        DELETE FROM targets t
        WHERE NOT EXISTS (SELECT 1 FROM configured c
          WHERE (c.project_id, c.region_id, c.image_id) = (t.project_id, t.region_id, t.image_id))
        RETURNING 1)
      SELECT count(*)::int AS n FROM gone`;
    const [upserted] = await tx`
      WITH written AS (
        INSERT INTO targets (project_id, region_id, image_id, schedule_key, interval_seconds)
        SELECT project_id, region_id, image_id, schedule_key, interval_seconds FROM configured
        ON CONFLICT (project_id, region_id, image_id) DO UPDATE
          SET schedule_key = EXCLUDED.schedule_key, interval_seconds = EXCLUDED.interval_seconds
        WHERE targets.schedule_key IS DISTINCT FROM EXCLUDED.schedule_key
        RETURNING (xmax = 0) AS inserted)
      SELECT count(*) FILTER (WHERE inserted)::int AS added, count(*) FILTER (WHERE NOT inserted)::int AS rescheduled FROM written`;
    return { added: upserted!.added, rescheduled: upserted!.rescheduled, removed: removed!.n };
  });
}
