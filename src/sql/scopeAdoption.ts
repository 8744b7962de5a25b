import type { Sql } from '../db/db.js';
import type { Triple } from '../interfaces.js';
import type { ScopeDefinition } from '../config/scope.js';
import { TARGETS_LOCK } from './replaceTargets.js';

/** The account's discovery scopes as configured, in key order. */
export async function accountScopes(sql: Sql, account: string): Promise<Array<{ key: string; definition: ScopeDefinition }>> {
  return sql<Array<{ key: string; definition: ScopeDefinition }>>`
    SELECT key, definition FROM scopes WHERE account = ${account} ORDER BY key`;
}

/**
 * Makes `triple` a target of the scope, on its schedule, as its listing would
 * (recordListed); false when it is a target already, or the scope is gone.
 */
export async function adoptIntoScope(sql: Sql, scopeKey: string, triple: Triple): Promise<boolean> {
  return sql.begin(async (tx) => {
    // A reconcile that removes or reschedules the scope waits for this, or this for it.
    await tx`SELECT pg_advisory_xact_lock_shared(${TARGETS_LOCK})`;
    const added = await tx`
      INSERT INTO targets (project_id, region_id, image_id, account, schedule_key, interval_seconds, explicit, scope_key)
      SELECT ${triple.projectId}, ${triple.regionId}, ${triple.imageId}, s.account, s.schedule_key, s.interval_seconds, false, s.key
      FROM scopes s WHERE s.key = ${scopeKey}
      ON CONFLICT (project_id, region_id, image_id) DO NOTHING`;
    return added.count > 0;
  });
}
