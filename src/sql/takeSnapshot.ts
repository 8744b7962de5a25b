import type { Sql } from '../db/db.js';

export interface Snapshot {
  id: number;
  takenAt: string;
  imageCount: number;
  digest: string;
}

/**
 * Records which version of every live image is in force now, and which
 * consumers use images (the usage intervals open now), in one statement (one
 * consistent view). A trigger already used returns the snapshot it took.
 */
export async function takeSnapshot(sql: Sql, trigger: string): Promise<Snapshot> {
  await sql`
    WITH live AS (
      SELECT i.project_id, i.region_id, i.image_id, v.id AS version_id, v.content_hash
      FROM images i
      JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
      WHERE i.deleted_at IS NULL),
    snapshot AS (
      INSERT INTO audit_snapshots (trigger, taken_at, image_count, digest)
      SELECT ${trigger}, now(), count(*),
        encode(sha256(convert_to(coalesce(string_agg(project_id || '/' || region_id || '/' || image_id || ' ' || content_hash, E'\n'
          ORDER BY project_id, region_id, image_id), ''), 'UTF8')), 'hex')
      FROM live
      ON CONFLICT (trigger) DO NOTHING
      RETURNING id),
    usage AS (
      INSERT INTO audit_snapshot_usage (snapshot_id, usage_id)
      SELECT snapshot.id, h.id FROM snapshot, image_usage_history h WHERE h.valid_to IS NULL)
    INSERT INTO audit_snapshot_items (snapshot_id, project_id, region_id, image_id, version_id)
    SELECT snapshot.id, live.project_id, live.region_id, live.image_id, live.version_id FROM snapshot, live`;
  const [row] = await sql<Snapshot[]>`
    SELECT id, taken_at AS "takenAt", image_count AS "imageCount", digest FROM audit_snapshots WHERE trigger = ${trigger}`;
  return row!;
}
