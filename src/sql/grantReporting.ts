import type { Sql } from '../db/db.js';

/** What a reporting role may read: the reporting views, the snapshot list, the audit log of user actions, and the two functions. */
export const REPORTING_VIEWS = [
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
];
export const REPORTING_FUNCTIONS = [
  'images_as_of(timestamptz)',
  'snapshot_diff(bigint, bigint)',
  'image_usage_as_of(timestamptz)',
  'snapshot_usage(bigint)',
  'in_use_alert(integer, integer, text, text, text, timestamptz)',
];

/**
 * Creates `role` (without login, unless it exists) and lets it SELECT the
 * reporting views and call the reporting functions, and nothing else. Grant
 * it to login roles: `GRANT <role> TO alice`.
 */
export async function grantReporting(sql: Sql, role: string): Promise<void> {
  await sql.begin(async (tx) => {
    const [exists] = await tx`SELECT 1 FROM pg_roles WHERE rolname = ${role}`;
    if (!exists) await tx`CREATE ROLE ${tx(role)} NOLOGIN`;
    await tx`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${tx(role)}`;
    await tx`GRANT USAGE ON SCHEMA public TO ${tx(role)}`;
    for (const view of REPORTING_VIEWS) await tx`GRANT SELECT ON ${tx(view)} TO ${tx(role)}`;
    for (const fn of REPORTING_FUNCTIONS) await tx.unsafe(`GRANT EXECUTE ON FUNCTION ${fn} TO "${role.replace(/"/g, '""')}"`);
  });
}
