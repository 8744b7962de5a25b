// Runs and failures are kept for SYNC_RETENTION_DAYS; history is never pruned.
import { describe, expect, it } from 'vitest';
import type { Sql } from '../src/db/db.js';
import { pruneRuns } from '../src/sql/pruneRuns.js';
import { withDatabase } from './support/env.js';

let sql: Sql;

withDatabase((connection) => (sql = connection));

describe('retention', () => {
  it('drops finished runs and failures older than the retention, and nothing else', async () => {
    await sql`
      INSERT INTO sync_runs (kind, trigger, started_at, finished_at, planned, status) VALUES
        ('manual', 'old-finished', now() - interval '31 days', now() - interval '31 days', 1, 'finished'),
        ('manual', 'old-open', now() - interval '31 days', NULL, 1, 'running'),
        ('manual', 'recent', now() - interval '29 days', now() - interval '29 days', 1, 'finished')`;
    await sql`
      INSERT INTO sync_failures (project_id, region_id, image_id, status, error_class, message, attempts, failed_at) VALUES
        (1, 1, 'old', 500, 'TransientApiError', 'x', 3, now() - interval '31 days'),
        (1, 1, 'recent', 500, 'TransientApiError', 'x', 3, now() - interval '29 days')`;
    await sql`
      INSERT INTO image_rows (project_id, region_id, image_id, kind, name, region, status, visibility, os_distro, os_version, os_type,
        disk_format, min_disk, min_ram, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
        first_seen_at, seen_at, last_changed_at)
      VALUES (1, 1, 'old', 'ordinary', 'old', 'r', 'active', 'public', 'd', 'v', 'linux', 'qcow2', 0, 0, 1, 1, now() - interval '400 days',
        now() - interval '400 days', '{}', 'h', now() - interval '400 days', now(), now() - interval '400 days')`;
    await sql`
      INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state)
      VALUES (1, 1, 'old', now() - interval '400 days', 'h', '{}')`;
    expect(await pruneRuns(sql, 30)).toEqual({ runs: 1, failures: 1 });
    expect((await sql`SELECT trigger FROM sync_runs ORDER BY trigger`).map((r) => r.trigger)).toEqual(['old-open', 'recent']);
    expect((await sql`SELECT image_id FROM sync_failures`).map((r) => r.image_id)).toEqual(['recent']);
    expect(await sql`SELECT count(*)::int AS n FROM image_versions`).toEqual([{ n: 1 }]);
  });
});
