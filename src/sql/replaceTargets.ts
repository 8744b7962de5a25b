import { IMPLIED_ACCOUNT, type Account } from '../config/accounts.js';
import type { Sql } from '../db/db.js';
import type { Target } from '../interfaces.js';
import { intervalSeconds, scheduleKey } from '../schedule/schedule.js';
import type { Scope } from '../config/scope.js';

/** Held while the targets and scopes are replaced; a listed page takes it shared (recordListed). */
export const TARGETS_LOCK = 727_002;

export interface TargetChanges {
  added: number;
  rescheduled: number;
  removed: number;
}

/**
 * Makes the accounts, targets and scopes tables equal to the configured set in one
 * transaction. An explicit target that a configured scope also lists stays
 * as that scope's when it leaves the file; a scope's discovered targets go
 * with the scope, and follow its schedule. Reconciles from several processes
 * serialize on an advisory lock.
 */
export async function replaceTargets(
  sql: Sql,
  targets: Target[],
  scopes: Scope[] = [],
  accounts: Account[] = [IMPLIED_ACCOUNT],
): Promise<TargetChanges> {
  // Parsing a cron pattern is slow next to everything else here: once per schedule group.
  const intervalOf = new Map<string, number>();
  const schedule = (s: Target['schedule'], account: string) => {
    const key = scheduleKey(s, account);
    if (!intervalOf.has(key)) intervalOf.set(key, intervalSeconds(s));
    return { key, interval: intervalOf.get(key)! };
  };
  const configured = targets.map((t) => schedule(t.schedule, t.account));
  const scoped = scopes.map((s) => schedule(s.schedule, s.account));
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${TARGETS_LOCK})`;
    await tx`DELETE FROM accounts WHERE name <> ALL(${accounts.map((a) => a.name)}::text[])`;
    await tx`
      INSERT INTO accounts (name, api_key_env, rate_limit_per_second, base_url, audit_push_amqp)
      SELECT name, key_env, rate, base_url, amqp::jsonb FROM unnest(${accounts.map((a) => a.name)}::text[],
        ${accounts.map((a) => a.apiKeyEnv)}::text[], ${accounts.map((a) => a.rateLimitPerSecond ?? null)}::int[],
        ${accounts.map((a) => a.baseUrl ?? null)}::text[], ${accounts.map((a) => (a.amqpPush ? JSON.stringify(a.amqpPush) : null))}::text[])
        AS given (name, key_env, rate, base_url, amqp)
      ON CONFLICT (name) DO UPDATE SET api_key_env = EXCLUDED.api_key_env, rate_limit_per_second = EXCLUDED.rate_limit_per_second,
        base_url = EXCLUDED.base_url, audit_push_amqp = EXCLUDED.audit_push_amqp`;
    await tx`DELETE FROM scopes WHERE key <> ALL(${scopes.map((s) => s.key)}::text[])`;
    await tx`
      INSERT INTO scopes (key, account, definition, schedule_key, interval_seconds, name)
      SELECT key, account, definition::jsonb, schedule_key, interval_seconds, name FROM unnest(${scopes.map((s) => s.key)}::text[],
        ${scopes.map((s) => s.account)}::text[],
        ${scopes.map((s) => JSON.stringify({ projects: s.projects, regions: s.regions, filters: s.filters }))}::text[],
        ${scoped.map((s) => s.key)}::text[], ${scoped.map((s) => s.interval)}::int[], ${scopes.map((s) => s.name)}::text[])
        AS s(key, account, definition, schedule_key, interval_seconds, name)
      ON CONFLICT (key) DO UPDATE SET account = EXCLUDED.account, definition = EXCLUDED.definition, schedule_key = EXCLUDED.schedule_key,
        interval_seconds = EXCLUDED.interval_seconds, name = EXCLUDED.name`;
    await tx`
      CREATE TEMP TABLE configured ON COMMIT DROP AS
      SELECT * FROM unnest(${targets.map((t) => t.projectId)}::int[], ${targets.map((t) => t.regionId)}::int[],
        ${targets.map((t) => t.imageId)}::text[], ${targets.map((t) => t.account)}::text[], ${configured.map((c) => c.key)}::text[],
        ${configured.map((c) => c.interval)}::int[], ${targets.map((t) => t.kind ?? 'ordinary')}::text[])
        AS c(project_id, region_id, image_id, account, schedule_key, interval_seconds, kind)`;
    const isConfigured = tx`EXISTS (SELECT 1 FROM configured c
      WHERE (c.project_id, c.region_id, c.image_id) = (t.project_id, t.region_id, t.image_id))`;
    const [removed] = await tx`
      WITH gone AS (
        DELETE FROM targets t
        WHERE NOT ${isConfigured} AND (t.scope_key IS NULL OR NOT EXISTS (SELECT 1 FROM scopes s WHERE s.key = t.scope_key))
        RETURNING 1)
      SELECT count(*)::int AS n FROM gone`;
    // Out of the file but still listed by its scope: from now on only the listing refreshes it.
    await tx`
      UPDATE targets t SET explicit = false
      WHERE t.explicit AND t.scope_key IS NOT NULL AND NOT ${isConfigured} AND EXISTS (SELECT 1 FROM scopes s WHERE s.key = t.scope_key)`;
    const [upserted] = await tx`
      WITH written AS (
        INSERT INTO targets (project_id, region_id, image_id, account, schedule_key, interval_seconds, kind)
        SELECT project_id, region_id, image_id, account, schedule_key, interval_seconds, kind FROM configured
        ON CONFLICT (project_id, region_id, image_id) DO UPDATE
          SET account = EXCLUDED.account, schedule_key = EXCLUDED.schedule_key, interval_seconds = EXCLUDED.interval_seconds,
            explicit = true, left_scope_at = NULL
        WHERE targets.schedule_key IS DISTINCT FROM EXCLUDED.schedule_key OR NOT targets.explicit OR targets.left_scope_at IS NOT NULL
        RETURNING (xmax = 0) AS inserted)
      SELECT count(*) FILTER (WHERE inserted)::int AS added, count(*) FILTER (WHERE NOT inserted)::int AS rescheduled FROM written`;
    // The file's kind, for an image not stored yet (once stored, images.kind says which GET refreshes it).
    await tx`
      UPDATE targets t SET kind = c.kind FROM configured c
      WHERE (t.project_id, t.region_id, t.image_id) = (c.project_id, c.region_id, c.image_id) AND t.kind <> c.kind`;
    await tx`
      UPDATE targets t SET scope_key = NULL
      WHERE t.explicit AND t.scope_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM scopes s WHERE s.key = t.scope_key)`;
    // Discovered targets follow their scope's schedule (which names its account).
    await tx`
      UPDATE targets t SET account = s.account, schedule_key = s.schedule_key, interval_seconds = s.interval_seconds
      FROM scopes s WHERE s.key = t.scope_key AND NOT t.explicit AND t.schedule_key <> s.schedule_key`;
    return { added: upserted!.added, rescheduled: upserted!.rescheduled, removed: removed!.n };
  });
}
