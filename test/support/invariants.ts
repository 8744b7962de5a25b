// What must hold of the stored history after any fault: checked in SQL, so a
// test can assert that the list of violations is empty. Since migration 0023 Postgres
// itself refuses overlapping versions, a change without a version of its own image and
// a negative count (docs/database.md, "The invariants Postgres holds"): those checks stay
// here as the witness that nothing got round them (a trigger dropped, a key deferred).
import type { Sql } from '../../src/db/db.js';
import { missingJobs, type Queues } from '../../src/queues/queue.js';

/** Every broken invariant, as a line naming it and an example; empty when the history is sound. */
export async function invariantViolations(sql: Sql, queues: Queues): Promise<string[]> {
  const checks: Record<string, Promise<Array<{ example: string }>>> = {
    'a live image without exactly one current version': sql`
      SELECT i.project_id || '/' || i.region_id || '/' || i.image_id AS example FROM images i
      WHERE i.deleted_at IS NULL AND (SELECT count(*) FROM image_versions v
        WHERE (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL) <> 1`,
    'a deleted image with a current version': sql`
      SELECT v.image_id AS example FROM images i JOIN image_versions v USING (project_id, region_id, image_id)
      WHERE i.deleted_at IS NOT NULL AND v.valid_to IS NULL`,
    'versions of a triple that overlap or leave a gap while live': sql`
      SELECT image_id AS example FROM (
        SELECT image_id, valid_to, lead(valid_from) OVER w AS next_from, lead(id) OVER w AS next_id
        FROM image_versions WINDOW w AS (PARTITION BY project_id, region_id, image_id ORDER BY valid_from, id)) s
      WHERE next_id IS NOT NULL AND (valid_to IS NULL OR valid_to > next_from)`,
    'a change without its version': sql`
      SELECT c.id::text AS example FROM image_changes c LEFT JOIN image_versions v ON v.id = c.version_id
      WHERE v.id IS NULL OR (v.project_id, v.region_id, v.image_id) <> (c.project_id, c.region_id, c.image_id)`,
    'a version without a change': sql`
      SELECT v.id::text AS example FROM image_versions v
      WHERE NOT EXISTS (SELECT 1 FROM image_changes c WHERE c.version_id = v.id AND c.change_type <> 'deleted')`,
    'created changes that do not match the tracked images': sql`
      SELECT coalesce(i.image_id, c.image_id) AS example
      FROM images i FULL JOIN (SELECT project_id, region_id, image_id, count(*) AS n FROM image_changes
        WHERE change_type = 'created' GROUP BY 1, 2, 3) c USING (project_id, region_id, image_id)
      WHERE c.n IS DISTINCT FROM 1 OR i.image_id IS NULL`,
    "an image's hash other than its current version's": sql`
      SELECT i.image_id AS example FROM images i JOIN image_versions v USING (project_id, region_id, image_id)
      WHERE v.valid_to IS NULL AND v.content_hash <> i.content_hash`,
    'a finished listing that left ids or waiting pages behind': sql`
      SELECT l.id::text AS example FROM listings l
      WHERE l.finished_at IS NOT NULL AND (EXISTS (SELECT 1 FROM listing_ids x WHERE x.listing_id = l.id)
        OR EXISTS (SELECT 1 FROM listing_ids_intact x WHERE x.listing_id = l.id)
        OR EXISTS (SELECT 1 FROM listing_pages p WHERE p.listing_id = l.id AND p.status = 'queued'))`,
    'a finished run with a listing still open': sql`
      SELECT r.id::text AS example FROM sync_runs r JOIN listings l ON l.run_id = r.id
      WHERE r.status = 'finished' AND l.finished_at IS NULL`,
  };
  const violations: string[] = [];
  for (const [name, query] of Object.entries(checks)) {
    const rows = await query;
    if (rows.length > 0) violations.push(`${name}: ${rows.length}, e.g. ${rows[0]!.example}`);
  }
  // Each claim's job is on its target's account's queue.
  const claims = await sql<{ queued_job: string; account: string }[]>`
    SELECT DISTINCT queued_job, account FROM targets WHERE queued_job IS NOT NULL`;
  const lost = (
    await Promise.all(
      [...new Set(claims.map((c) => c.account))].map((account) =>
        missingJobs(
          queues.forAccount(account).refresh,
          claims.filter((c) => c.account === account).map((c) => c.queued_job),
        ),
      ),
    )
  ).flat();
  if (lost.length > 0) violations.push(`targets claimed by a job that no longer exists: ${lost.length}, e.g. ${lost[0]}`);
  return violations;
}
