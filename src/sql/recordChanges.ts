import type { Sql } from '../db.js';
import { diffSnapshots } from '../image-diff.js';
import type { ChangeType, FieldChange, ImageSnapshot, Observation, Triple } from '../interfaces.js';
import { tripleKey } from '../triple.js';
import type { Tx } from './tripleLock.js';

export type ObservationResult = 'unchanged' | 'changed';

interface Stored {
  key: string;
  content_hash: string;
  deleted_at: string | null;
  newest: string;
  version_id: number | null;
  current_state: ImageSnapshot | null;
  last_state: ImageSnapshot | null;
}

interface Change {
  observation: Observation;
  type: ChangeType;
  fields: FieldChange[];
  closeVersion: number | null;
}

const columns = (triples: Triple[]) => ({
  p: triples.map((t) => t.projectId),
  r: triples.map((t) => t.regionId),
  i: triples.map((t) => t.imageId),
});

/**
 * Stores a batch of validated answers that recordUnchanged did not take, in
 * one transaction of a dozen statements however large the batch. Writers of a
 * triple are serialized by an advisory lock (taken in key order, so batches
 * cannot deadlock on them); an answer older than what is stored (a slow
 * request overtaken by a newer one) does not roll the state back.
 */
export async function recordChanges(sql: Sql, observations: Observation[]): Promise<Map<string, ObservationResult>> {
  const newest = new Map<string, Observation>();
  for (const o of observations) {
    const seen = newest.get(tripleKey(o.triple));
    if (!seen || seen.observedAt < o.observedAt) newest.set(tripleKey(o.triple), o);
  }
  const results = new Map<string, ObservationResult>(observations.map((o) => [tripleKey(o.triple), 'unchanged']));
  if (newest.size === 0) return results;
  await sql.begin(async (tx) => {
    const keys = [...newest.keys()].sort();
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT k FROM unnest(${keys}::text[]) k ORDER BY k) s`;
    const triples = [...newest.values()].map((o) => o.triple);
    const { p, r, i } = columns(triples);
    const stored = await tx<Stored[]>`
      SELECT x.project_id || '/' || x.region_id || '/' || x.image_id AS key, im.content_hash, im.deleted_at,
        greatest(im.last_seen_at, im.deleted_at) AS newest, cur.id AS version_id, cur.state AS current_state, last.state AS last_state
      FROM unnest(${p}::int[], ${r}::int[], ${i}::text[]) AS x(project_id, region_id, image_id)
      JOIN images im USING (project_id, region_id, image_id)
      LEFT JOIN image_versions cur ON (cur.project_id, cur.region_id, cur.image_id) = (x.project_id, x.region_id, x.image_id)
        AND cur.valid_to IS NULL
      LEFT JOIN LATERAL (
        SELECT w.state FROM image_versions w
        WHERE (w.project_id, w.region_id, w.image_id) = (x.project_id, x.region_id, x.image_id)
        ORDER BY w.valid_from DESC LIMIT 1) last ON im.deleted_at IS NOT NULL`;
    const byKey = new Map(stored.map((row) => [row.key, row]));

    const seenAgain: Observation[] = [];
    const changes: Change[] = [];
    for (const [key, observation] of newest) {
      const row = byKey.get(key);
      if (row && new Date(row.newest) > observation.observedAt) continue;
      if (row && row.deleted_at === null && row.content_hash === observation.contentHash) {
        seenAgain.push(observation);
      } else if (!row) {
        changes.push({ observation, type: 'created', fields: [{ field: null, oldValue: null, newValue: observation.snapshot }], closeVersion: null });
      } else if (row.deleted_at !== null) {
        changes.push({ observation, type: 'restored', fields: [{ field: null, oldValue: row.last_state, newValue: observation.snapshot }], closeVersion: null });
      } else {
        changes.push({ observation, type: 'updated', fields: diffSnapshots(row.current_state!, observation.snapshot), closeVersion: row.version_id });
      }
    }
    await advanceLastSeen(tx, seenAgain);
    if (changes.length > 0) await writeChanges(tx, changes);
    for (const change of changes) results.set(tripleKey(change.observation.triple), 'changed');
    await markAttempts(tx, [...newest.values()].map((o) => ({ triple: o.triple, outcome: results.get(tripleKey(o.triple))! })));
  });
  return results;
}

async function advanceLastSeen(tx: Tx, observations: Observation[]): Promise<void> {
  if (observations.length === 0) return;
  const { p, r, i } = columns(observations.map((o) => o.triple));
  await tx`
    UPDATE images im SET last_seen_at = greatest(im.last_seen_at, x.at)
    FROM unnest(${p}::int[], ${r}::int[], ${i}::text[], ${observations.map((o) => o.observedAt.toISOString())}::timestamptz[])
      AS x(project_id, region_id, image_id, at)
    WHERE (im.project_id, im.region_id, im.image_id) = (x.project_id, x.region_id, x.image_id)`;
}

async function writeChanges(tx: Tx, changes: Change[]): Promise<void> {
  const closing = changes.filter((c) => c.closeVersion !== null);
  if (closing.length > 0) {
    await tx`
      UPDATE image_versions v SET valid_to = x.at
      FROM unnest(${closing.map((c) => c.closeVersion!)}::bigint[], ${closing.map((c) => c.observation.observedAt.toISOString())}::timestamptz[])
        AS x(id, at)
      WHERE v.id = x.id`;
  }
  const versions = await tx<{ id: number; key: string }[]>`
    INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state)
    SELECT x.project_id, x.region_id, x.image_id, x.valid_from, x.content_hash, x.state
    FROM jsonb_to_recordset(${tx.json(changes.map(({ observation: o }) => ({
      project_id: o.triple.projectId, region_id: o.triple.regionId, image_id: o.triple.imageId,
      valid_from: o.observedAt.toISOString(), content_hash: o.contentHash, state: o.snapshot,
    })) as never)}) AS x(project_id int, region_id int, image_id text, valid_from timestamptz, content_hash text, state jsonb)
    RETURNING id, project_id || '/' || region_id || '/' || image_id AS key`;
  const versionOf = new Map(versions.map((v) => [v.key, v.id]));
  await tx`
    INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at)
    SELECT x.project_id, x.region_id, x.image_id, x.version_id, x.change_type, x.field, x.old_value, x.new_value, x.changed_at
    FROM jsonb_to_recordset(${tx.json(changes.flatMap(({ observation: o, type, fields }) => fields.map((f) => ({ n: 0,
      project_id: o.triple.projectId, region_id: o.triple.regionId, image_id: o.triple.imageId,
      version_id: versionOf.get(tripleKey(o.triple)), change_type: type, field: f.field,
      old_value: f.oldValue, new_value: f.newValue, changed_at: o.observedAt.toISOString(),
    }))).map((row, n) => ({ ...row, n })) as never)}) AS x(project_id int, region_id int, image_id text, version_id bigint,
      change_type text, field text, old_value jsonb, new_value jsonb, changed_at timestamptz, n int)
    ORDER BY x.n`;
  await writeImageRows(tx, changes.map((c) => c.observation));
  await writeTags(tx, changes.map((c) => c.observation));
}

// API dates travel as text inside JSON, so Postgres keeps their microseconds.
async function writeImageRows(tx: Tx, observations: Observation[]): Promise<void> {
  const rows = observations.map(({ triple, snapshot: s, contentHash, raw, observedAt }) => ({
    ...s,
    tags: undefined,
    req_project_id: triple.projectId, req_region_id: triple.regionId, req_image_id: triple.imageId,
    raw, content_hash: contentHash, observed_at: observedAt.toISOString(),
  }));
  await tx`
    INSERT INTO images (
      project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
      disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, architecture, is_baremetal,
      creator_task_id, task_id, description, display_order, gpu_driver, gpu_driver_type, gpu_driver_version,
      hw_firmware_type, hw_machine_type, ssh_key, currency_code, price_per_hour, price_per_month, price_status,
      created_at, updated_at, raw, content_hash, first_seen_at, last_seen_at, last_changed_at, deleted_at)
    SELECT req_project_id, req_region_id, req_image_id, name, region, status, visibility, os_distro, os_version, os_type,
      disk_format, min_disk, min_ram, size, project_id, region_id, architecture, is_baremetal,
      creator_task_id, task_id, description, display_order, gpu_driver, gpu_driver_type, gpu_driver_version,
      hw_firmware_type, hw_machine_type, ssh_key, currency_code, price_per_hour, price_per_month, price_status,
      created_at, updated_at, raw, content_hash, observed_at, observed_at, observed_at, NULL
    FROM jsonb_to_recordset(${tx.json(rows as never)}) AS x(
      req_project_id int, req_region_id int, req_image_id text, name text, region text, status text, visibility text,
      os_distro text, os_version text, os_type text, disk_format text, min_disk int, min_ram int, size bigint,
      project_id int, region_id int, architecture text, is_baremetal boolean, creator_task_id text, task_id text,
      description text, display_order int, gpu_driver text, gpu_driver_type text, gpu_driver_version text,
      hw_firmware_type text, hw_machine_type text, ssh_key text, currency_code text, price_per_hour numeric,
      price_per_month numeric, price_status text, created_at timestamptz, updated_at timestamptz, raw jsonb,
      content_hash text, observed_at timestamptz)
    ON CONFLICT (project_id, region_id, image_id) DO UPDATE SET
      name = EXCLUDED.name, region = EXCLUDED.region, status = EXCLUDED.status, visibility = EXCLUDED.visibility,
      os_distro = EXCLUDED.os_distro, os_version = EXCLUDED.os_version, os_type = EXCLUDED.os_type,
      disk_format = EXCLUDED.disk_format, min_disk = EXCLUDED.min_disk, min_ram = EXCLUDED.min_ram,
      size = EXCLUDED.size, owner_project_id = EXCLUDED.owner_project_id, image_region_id = EXCLUDED.image_region_id,
      architecture = EXCLUDED.architecture, is_baremetal = EXCLUDED.is_baremetal,
      creator_task_id = EXCLUDED.creator_task_id, task_id = EXCLUDED.task_id, description = EXCLUDED.description,
      display_order = EXCLUDED.display_order, gpu_driver = EXCLUDED.gpu_driver,
      gpu_driver_type = EXCLUDED.gpu_driver_type, gpu_driver_version = EXCLUDED.gpu_driver_version,
      hw_firmware_type = EXCLUDED.hw_firmware_type, hw_machine_type = EXCLUDED.hw_machine_type,
      ssh_key = EXCLUDED.ssh_key, currency_code = EXCLUDED.currency_code, price_per_hour = EXCLUDED.price_per_hour,
      price_per_month = EXCLUDED.price_per_month, price_status = EXCLUDED.price_status,
      created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, raw = EXCLUDED.raw,
      content_hash = EXCLUDED.content_hash, last_seen_at = EXCLUDED.last_seen_at,
      last_changed_at = EXCLUDED.last_changed_at, deleted_at = NULL`;
}

async function writeTags(tx: Tx, observations: Observation[]): Promise<void> {
  const { p, r, i } = columns(observations.map((o) => o.triple));
  await tx`
    DELETE FROM image_tags t USING unnest(${p}::int[], ${r}::int[], ${i}::text[]) AS x(project_id, region_id, image_id)
    WHERE (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)`;
  const rows = observations.flatMap(({ triple, snapshot }) =>
    Object.entries(snapshot.tags).map(([key, tag]) => ({
      project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, key, value: tag.value, read_only: tag.read_only,
    })),
  );
  if (rows.length === 0) return;
  await tx`
    INSERT INTO image_tags (project_id, region_id, image_id, key, value, read_only)
    SELECT * FROM jsonb_to_recordset(${tx.json(rows)})
      AS x(project_id int, region_id int, image_id text, key text, value text, read_only boolean)`;
}

async function markAttempts(tx: Tx, attempts: Array<{ triple: Triple; outcome: ObservationResult }>): Promise<void> {
  const { p, r, i } = columns(attempts.map((a) => a.triple));
  await tx`
    UPDATE targets t SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = x.outcome, last_error = NULL, last_status = 200
    FROM unnest(${p}::int[], ${r}::int[], ${i}::text[], ${attempts.map((a) => a.outcome)}::text[])
      AS x(project_id, region_id, image_id, outcome)
    WHERE (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)`;
}
