import type { Sql } from '../db/db.js';
import { ORDINARY, type ImageKind } from '../images/image-kinds.js';
import type { Triple } from '../interfaces.js';
import { lockTriple, markAttempt } from './tripleLock.js';

export type DeletionResult = 'deleted' | 'unchanged';

/**
 * The API says the image does not exist (404 NotFoundError): close its current
 * version, mark it deleted and write a `deleted` change, in one transaction.
 * An image already deleted, or seen after this answer was requested, is left
 * as it is. An image never seen has nothing to close: its target records
 * that the API says it does not exist. Only the GET of the kind the image is
 * stored as speaks for it (image-kinds.ts): another kind's 404 leaves it alone.
 */
export async function recordDeletion(sql: Sql, triple: Triple, observedAt: Date, kind: ImageKind = ORDINARY): Promise<DeletionResult> {
  const { projectId: p, regionId: r, imageId: i } = triple;
  const at = observedAt.toISOString();
  return sql.begin(async (tx) => {
    await lockTriple(tx, triple);
    const [closed] = await tx<{ id: number; last_seen_at: string }[]>`
      WITH live AS (
        UPDATE images SET deleted_at = ${at}, last_changed_at = ${at}
        WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i}) AND deleted_at IS NULL AND last_seen_at <= ${at}
          AND kind = ${kind.name}
        RETURNING last_seen_at)
      UPDATE image_versions SET valid_to = ${at}
      WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i}) AND valid_to IS NULL AND EXISTS (SELECT 1 FROM live)
      RETURNING id, (SELECT last_seen_at FROM live)`;
    if (!closed) {
      const [known] = await tx`SELECT 1 FROM images WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i})`;
      const outcome = known ? 'unchanged' : 'deleted';
      await markAttempt(tx, triple, outcome, 404, known ? null : 'the API says this image does not exist (404 NotFoundError)');
      return outcome;
    }
    await tx`
      INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at,
        observed_before)
      SELECT ${p}, ${r}, ${i}, id, 'deleted', NULL, state, NULL, ${at}, ${closed.last_seen_at} FROM image_versions WHERE id = ${closed.id}`;
    await tx`DELETE FROM image_tags WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i})`;
    await markAttempt(tx, triple, 'deleted', 404);
    return 'deleted';
  });
}
