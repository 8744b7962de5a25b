import type { Sql } from '../db/db.js';

/** The role `reporting-role` makes unless told another. */
export const DEFAULT_REPORTING_ROLE = 'image_reporting';

/**
 * The role the web view of this database reads as: a reporting role of its own, named for the database
 * (a hash of its name). Roles belong to the whole cluster: a role shared by the deployments of one
 * cluster would let each one's worker read the others' data through it.
 */
export async function uiReadingRole(sql: Sql): Promise<string> {
  const [row] = await sql<[{ role: string }]>`SELECT ${DEFAULT_REPORTING_ROLE} || '_ui_' || left(md5(current_database()), 12) AS role`;
  return row.role;
}

/**
 * What a reporting role may read: the reporting views, the snapshot list, the audit log of user actions, and
 * what the web view's pages read (src/ui): images with their tags, versions and changes, runs, listings and
 * their scopes, failures, and where each account's audit log was read to. None holds a secret.
 */
export const REPORTING_RELATIONS = [
  'current_images',
  'image_change_log',
  'stale_images',
  'audit_snapshots',
  'image_actions',
  'image_history',
  'image_usage',
  'image_usage_history',
  'image_usage_status',
  'unused_images',
  'images',
  'image_tags',
  'image_versions',
  'image_changes',
  'sync_runs',
  'listings',
  'sync_failures',
  'audit_log_cursors',
  'scopes',
];
export const REPORTING_FUNCTIONS = [
  'images_as_of(timestamptz)',
  'snapshot_diff(bigint, bigint)',
  'image_usage_as_of(timestamptz)',
  'snapshot_usage(bigint)',
  'in_use_alert(integer, integer, text, text, text, timestamptz)',
];

const quoted = (role: string) => `"${role.replace(/"/g, '""')}"`;

/**
 * Creates `role` (without login, unless it exists) and lets it SELECT the
 * reporting relations and call the reporting functions, and nothing else. Grant
 * it to login roles: `GRANT <role> TO alice`. Processes that start together
 * take turns (a lock): concurrent GRANTs on one object fail in Postgres.
 */
export async function grantReporting(sql: Sql, role: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('gcore-image-sync grant reporting'))`;
    const [exists] = await tx`SELECT 1 FROM pg_roles WHERE rolname = ${role}`;
    if (!exists) await tx`CREATE ROLE ${tx(role)} NOLOGIN`;
    await tx`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${tx(role)}`;
    await tx`GRANT USAGE ON SCHEMA public TO ${tx(role)}`;
    for (const relation of REPORTING_RELATIONS) await tx`GRANT SELECT ON ${tx(relation)} TO ${tx(role)}`;
    for (const fn of REPORTING_FUNCTIONS) await tx.unsafe(`GRANT EXECUTE ON FUNCTION ${fn} TO ${quoted(role)}`);
  });
}

/** A role made, or a grant changed, by another database's process at the same moment: roles are the cluster's. */
const RACED = new Set(['42710', '23505', 'XX000']);

/**
 * Makes `role` one this connection's user may read as (SET ROLE): created and
 * granted as `reporting-role` does when it lacks a right (a role the operator
 * made and widened is left as it is), then granted to the current user when
 * not already a member. Throws Postgres's refusal when the user may not.
 */
export async function prepareReadingRole(sql: Sql, role: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const [state] = await sql<Array<{ complete: boolean; member: boolean }>>`
        SELECT coalesce(bool_and(has_table_privilege(r.oid, rel, 'SELECT')), false) AS complete,
          coalesce(bool_and(pg_has_role(current_user, r.oid, 'MEMBER')), false) AS member
        FROM pg_roles r, unnest(${REPORTING_RELATIONS}::text[]) rel WHERE r.rolname = ${role}`;
      if (!state!.complete) await grantReporting(sql, role);
      if (!state!.member) await sql.unsafe(`GRANT ${quoted(role)} TO CURRENT_USER`);
      return;
    } catch (error) {
      if (attempt === 3 || !RACED.has((error as { code?: string }).code ?? '')) throw error;
    }
  }
}
