// Types shared by several modules of the data path.

/** One tracked image, named as the operator configured it. */
export interface Triple {
  projectId: number;
  regionId: number;
  imageId: string;
}

/** When a group of triples is refreshed: a fixed interval or a cron pattern. */
export type Schedule = { every: number } | { cron: string; tz: string };

export interface Target extends Triple {
  schedule: Schedule;
}

export interface TagValue {
  value: string;
  read_only: boolean;
}

/**
 * The normalized state of one image as the API described it: every field of
 * the payload (unknown ones included), dates in UTC, tags as a map by key.
 * Two snapshots with equal canonical JSON are the same state.
 */
export interface ImageSnapshot {
  id: string;
  name: string;
  region: string;
  status: string;
  visibility: string;
  os_distro: string;
  os_version: string;
  os_type: string;
  disk_format: string;
  min_disk: number;
  min_ram: number;
  project_id: number;
  region_id: number;
  created_at: string;
  updated_at: string;
  size: number | null;
  architecture: string | null;
  is_baremetal: boolean | null;
  creator_task_id: string | null;
  task_id: string | null;
  description: string | null;
  display_order: number | null;
  gpu_driver: string | null;
  gpu_driver_type: string | null;
  gpu_driver_version: string | null;
  hw_firmware_type: string | null;
  hw_machine_type: string | null;
  ssh_key: string | null;
  currency_code: string | null;
  price_per_hour: number | null;
  price_per_month: number | null;
  price_status: string | null;
  tags: Record<string, TagValue>;
  [extra: string]: unknown;
}

/** A validated answer, ready to store. */
export interface Observation {
  triple: Triple;
  snapshot: ImageSnapshot;
  contentHash: string;
  raw: unknown;
  /** When the request that produced this answer was sent. */
  observedAt: Date;
}

export type ChangeType = 'created' | 'updated' | 'deleted' | 'restored';

export interface FieldChange {
  field: string | null;
  oldValue: unknown;
  newValue: unknown;
}

/** What one refresh did to the stored state. */
export type RefreshOutcome = 'unchanged' | 'changed' | 'deleted' | 'failed';
