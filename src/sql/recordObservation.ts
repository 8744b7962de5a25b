import type { Sql } from '../db.js';
import { diffSnapshots } from '../image-diff.js';
import type { ChangeType, FieldChange, ImageSnapshot, Observation } from '../interfaces.js';
import { recordUnchanged } from './recordUnchanged.js';
import { lockTriple, markAttempt, type Tx } from './tripleLock.js';

export type ObservationResult = 'unchanged' | 'changed';

/**
 * Stores one validated answer. Nothing changed: it only advances last_seen_at
 * (see recordUnchanged). A change writes images, image_tags, image_versions and
 * image_changes in one transaction, serialized per triple.
 */
export async function recordObservation(sql: Sql, observation: Observation): Promise<ObservationResult> {
  const [unchanged] = await recordUnchanged(sql, [observation]);
  if (unchanged) return 'unchanged';
  return recordNewState(sql, observation);
}

/** The change path alone, for an answer recordUnchanged did not take. */
export function recordNewState(sql: Sql, observation: Observation): Promise<ObservationResult> {
  return sql.begin((tx) => recordChange(tx, observation));
}

interface CurrentRow {
  content_hash: string;
  deleted_at: string | null;
  newest: string;
  version_id: number | null;
  state: ImageSnapshot | null;
}

async function recordChange(tx: Tx, observation: Observation): Promise<ObservationResult> {
  const { triple, snapshot, contentHash: hash, observedAt } = observation;
  const { projectId: p, regionId: r, imageId: i } = triple;
  const at = observedAt.toISOString();
  await lockTriple(tx, triple);
  const [current] = await tx<CurrentRow[]>`
    SELECT i.content_hash, i.deleted_at, greatest(i.last_seen_at, i.deleted_at) AS newest, v.id AS version_id, v.state
    FROM images i
    LEFT JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL
    WHERE (i.project_id, i.region_id, i.image_id) = (${p}, ${r}, ${i})`;

  // An answer older than what is stored (a slow request overtaken by a newer
  // one) must not roll the state back; it only counts as an attempt.
  const stale = current !== undefined && new Date(current.newest) > observedAt;
  const same = current !== undefined && current.deleted_at === null && current.content_hash === hash;
  if (stale || same) {
    if (same) await tx`UPDATE images SET last_seen_at = greatest(last_seen_at, ${at}) WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i})`;
    await markAttempt(tx, triple, 'unchanged');
    return 'unchanged';
  }

  let changeType: ChangeType;
  let changes: FieldChange[];
  if (current === undefined) {
    changeType = 'created';
    changes = [{ field: null, oldValue: null, newValue: snapshot }];
  } else if (current.deleted_at !== null) {
    changeType = 'restored';
    const [last] = await tx<{ state: ImageSnapshot }[]>`
      SELECT state FROM image_versions WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i})
      ORDER BY valid_from DESC LIMIT 1`;
    changes = [{ field: null, oldValue: last?.state ?? null, newValue: snapshot }];
  } else {
    changeType = 'updated';
    changes = diffSnapshots(current.state!, snapshot);
    await tx`UPDATE image_versions SET valid_to = ${at} WHERE id = ${current.version_id}`;
  }

  const [version] = await tx<{ id: number }[]>`
    INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state)
    VALUES (${p}, ${r}, ${i}, ${at}, ${hash}, ${tx.json(snapshot as never)})
    RETURNING id`;
  await tx`
    INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at)
    SELECT ${p}, ${r}, ${i}, ${version!.id}, ${changeType}, c.field, c.old_value, c.new_value, ${at}
    FROM jsonb_to_recordset(${tx.json(changes.map((c) => ({ field: c.field, old_value: c.oldValue, new_value: c.newValue })) as never)})
      AS c(field text, old_value jsonb, new_value jsonb)`;
  await writeImageRow(tx, observation);
  await writeTags(tx, observation);
  await markAttempt(tx, triple, 'changed');
  return 'changed';
}

// API dates pass as text: postgres.js would round a timestamptz parameter to milliseconds.
async function writeImageRow(tx: Tx, { triple, snapshot: s, contentHash, raw, observedAt }: Observation): Promise<void> {
  const at = observedAt.toISOString();
  await tx`
    INSERT INTO images (
      project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
      disk_format, min_disk, min_ram, size, owner_project_id, image_region_id, architecture, is_baremetal,
      creator_task_id, task_id, description, display_order, gpu_driver, gpu_driver_type, gpu_driver_version,
      hw_firmware_type, hw_machine_type, ssh_key, currency_code, price_per_hour, price_per_month, price_status,
      created_at, updated_at, raw, content_hash, first_seen_at, last_seen_at, last_changed_at, deleted_at)
    VALUES (
      ${triple.projectId}, ${triple.regionId}, ${triple.imageId}, ${s.name}, ${s.region}, ${s.status}, ${s.visibility},
      ${s.os_distro}, ${s.os_version}, ${s.os_type}, ${s.disk_format}, ${s.min_disk}, ${s.min_ram}, ${s.size},
      ${s.project_id}, ${s.region_id}, ${s.architecture}, ${s.is_baremetal}, ${s.creator_task_id}, ${s.task_id},
      ${s.description}, ${s.display_order}, ${s.gpu_driver}, ${s.gpu_driver_type}, ${s.gpu_driver_version},
      ${s.hw_firmware_type}, ${s.hw_machine_type}, ${s.ssh_key}, ${s.currency_code}, ${s.price_per_hour},
      ${s.price_per_month}, ${s.price_status}, ${s.created_at}::text::timestamptz, ${s.updated_at}::text::timestamptz,
      ${tx.json(raw as never)},
      ${contentHash}, ${at}, ${at}, ${at}, NULL)
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

async function writeTags(tx: Tx, { triple, snapshot }: Observation): Promise<void> {
  const { projectId: p, regionId: r, imageId: i } = triple;
  const rows = Object.entries(snapshot.tags).map(([key, tag]) => ({ key, value: tag.value, read_only: tag.read_only }));
  await tx`DELETE FROM image_tags WHERE (project_id, region_id, image_id) = (${p}, ${r}, ${i})`;
  if (rows.length === 0) return;
  await tx`
    INSERT INTO image_tags (project_id, region_id, image_id, key, value, read_only)
    SELECT ${p}, ${r}, ${i}, t.key, t.value, t.read_only
    FROM jsonb_to_recordset(${tx.json(rows)}) AS t(key text, value text, read_only boolean)`;
}
