import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

/** The targets each of these jobs holds claims on, by job. */
export async function claimedTriples(sql: Sql, jobIds: string[]): Promise<Map<string, Triple[]>> {
  const rows = await sql<{ queued_job: string; project_id: number; region_id: number; image_id: string }[]>`
    SELECT queued_job, project_id, region_id, image_id FROM targets WHERE queued_job = ANY(${jobIds}::text[])
    ORDER BY queued_job, project_id, region_id, image_id`;
  const byJob = new Map<string, Triple[]>();
  for (const row of rows) {
    byJob.set(row.queued_job, [
      ...(byJob.get(row.queued_job) ?? []),
      { projectId: row.project_id, regionId: row.region_id, imageId: row.image_id },
    ]);
  }
  return byJob;
}
