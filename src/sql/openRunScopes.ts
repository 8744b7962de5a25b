import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';

export interface OpenRunScope {
  id: number;
  scheduleKey: string | null;
  /** Undefined: every account. */
  account: string | undefined;
  target: Triple | undefined;
  startedAt: string;
}

/** The runs not finished yet, with what they cover. */
export async function openRunScopes(sql: Sql): Promise<OpenRunScope[]> {
  const rows = await sql<
    {
      id: number;
      scheduleKey: string | null;
      account: string | null;
      startedAt: string;
      projectId: number | null;
      regionId: number | null;
      imageId: string | null;
    }[]
  >`
    SELECT id, schedule_key AS "scheduleKey", account, started_at::text AS "startedAt",
      target_project_id AS "projectId", target_region_id AS "regionId", target_image_id AS "imageId"
    FROM sync_runs WHERE finished_at IS NULL ORDER BY id`;
  return rows.map(({ projectId, regionId, imageId, account, ...run }) => ({
    ...run,
    account: account ?? undefined,
    target: imageId === null ? undefined : { projectId: projectId!, regionId: regionId!, imageId },
  }));
}
