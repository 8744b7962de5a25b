import type { TransactionSql } from 'postgres';
import type { Triple } from '../interfaces.js';
import { parseJsonExactly } from '../images/json-text.js';

export interface ImageDetail {
  project_id: number;
  region_id: number;
  image_id: string;
  name: string;
  kind: string;
  account: string;
  region: string | null;
  status: string;
  visibility: string;
  owned: boolean;
  os_distro: string | null;
  os_version: string | null;
  os_type: string | null;
  disk_format: string;
  min_disk: number;
  min_ram: number;
  size: number | null;
  architecture: string | null;
  description: string | null;
  created_at: Date;
  updated_at: Date;
  first_seen_at: Date;
  last_seen_at: Date;
  last_changed_at: Date;
  deleted_at: Date | null;
}

const is = (tx: TransactionSql, t: Triple) => tx`(project_id, region_id, image_id) = (${t.projectId}, ${t.regionId}, ${t.imageId})`;

/** The image as stored now, live or deleted; undefined when it was never stored. */
export async function imageDetail(tx: TransactionSql, t: Triple): Promise<ImageDetail | undefined> {
  const [row] = await tx<ImageDetail[]>`
    SELECT project_id, region_id, image_id, name, kind, account, region, status, visibility, owned, os_distro, os_version, os_type,
      disk_format, min_disk, min_ram, size, architecture, description, created_at, updated_at, first_seen_at, last_seen_at,
      last_changed_at, deleted_at
    FROM images WHERE ${is(tx, t)}`;
  return row;
}

export interface TagRow {
  key: string;
  value: string;
  read_only: boolean;
}

export function imageTags(tx: TransactionSql, t: Triple): Promise<TagRow[]> {
  return tx<TagRow[]>`SELECT key, value, read_only FROM image_tags WHERE ${is(tx, t)} ORDER BY key`;
}

export interface UsageState {
  usage_status: string | null;
  usage_unknown_because: string | null;
  unused_since: Date | null;
  consumers: Array<{ consumer_kind: string; consumer_id: string; consumer_name: string | null; valid_from: string }>;
}

/** Who uses it, as the last usage listing saw (image_usage), and whether that is known (image_usage_status). */
export async function imageUsage(tx: TransactionSql, t: Triple): Promise<UsageState> {
  const [status] = await tx<Array<Omit<UsageState, 'consumers'>>>`
    SELECT usage_status, usage_unknown_because, unused_since FROM image_usage_status WHERE ${is(tx, t)}`;
  const consumers = await tx<UsageState['consumers']>`
    SELECT consumer_kind, consumer_id, consumer_name, valid_from FROM image_usage WHERE ${is(tx, t)} ORDER BY consumer_kind, consumer_id`;
  return { usage_status: null, usage_unknown_because: null, unused_since: null, ...status, consumers };
}

export interface VersionRow {
  id: number;
  valid_from: Date;
  valid_to: Date | null;
}

/** Every version of the image, newest first (ids and times only: a thousand are a few kilobytes). */
export function imageVersions(tx: TransactionSql, t: Triple): Promise<VersionRow[]> {
  return tx<VersionRow[]>`SELECT id, valid_from, valid_to FROM image_versions WHERE ${is(tx, t)} ORDER BY valid_from DESC, id DESC`;
}

export interface ChangeRow {
  id: number;
  version_id: number;
  changed_at: Date;
  change_type: string;
  field: string | null;
  old_value: unknown;
  new_value: unknown;
  actor_email: string | null;
  actor_user_id: string | null;
  action_type: string | null;
  action_id: string | null;
  actor_candidates: number;
}

/** The changes that made these versions, with who made each (image_change_log's rule). */
export function versionChanges(tx: TransactionSql, t: Triple, versionIds: number[]): Promise<ChangeRow[]> {
  return tx<ChangeRow[]>`
    SELECT id, version_id, changed_at, change_type, field, old_value, new_value, actor_email, actor_user_id, action_type, action_id,
      actor_candidates
    FROM image_change_log WHERE ${is(tx, t)} AND version_id = ANY(${versionIds}::bigint[])
    ORDER BY changed_at DESC, id`;
}

export interface StoredState {
  /** Numbers a double cannot hold kept exact (json-text.ts), for comparing. */
  state: Record<string, unknown>;
  /** Laid out by Postgres (jsonb_pretty), every number as stored. */
  text: string;
}

/** The stored states of these versions of the image (a version of another image is not found). */
export async function versionStates(tx: TransactionSql, t: Triple, ids: number[]): Promise<Map<number, StoredState>> {
  const rows = await tx<Array<{ id: number; state: string; text: string }>>`
    SELECT id, state::text AS state, jsonb_pretty(state) AS text FROM image_versions WHERE ${is(tx, t)} AND id = ANY(${ids}::bigint[])`;
  return new Map(rows.map((row) => [row.id, { state: parseJsonExactly(row.state) as Record<string, unknown>, text: row.text }]));
}

/** The document the API answered last, as stored (the only raw one kept), laid out by Postgres with every number as stored. */
export async function rawDocument(tx: TransactionSql, t: Triple): Promise<string | undefined> {
  const [row] = await tx<Array<{ raw: string }>>`SELECT jsonb_pretty(raw) AS raw FROM images WHERE ${is(tx, t)}`;
  return row?.raw;
}

export interface ActionRow {
  action_id: string;
  acted_at: Date;
  api_group: string | null;
  action_type: string | null;
  email: string | null;
  user_id: string | null;
  source_user_ip: string | null;
  is_complete: boolean | null;
}

/** The audit log's latest entries about the image, newest first. */
export function imageActions(tx: TransactionSql, t: Triple, limit: number): Promise<ActionRow[]> {
  return tx<ActionRow[]>`
    SELECT action_id, acted_at, api_group, action_type, email, user_id, source_user_ip, is_complete
    FROM image_actions WHERE ${is(tx, t)} ORDER BY acted_at DESC, action_id DESC LIMIT ${limit}`;
}
