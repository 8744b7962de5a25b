// Types shared by several modules of the data path.
import type { ImageFields } from './images/image-fields.js';
import type { ImageKind } from './images/image-kinds.js';

/** One tracked image, named as the operator configured it. */
export interface Triple {
  projectId: number;
  regionId: number;
  imageId: string;
}

/** When a group of triples is refreshed: a fixed interval or a cron pattern. */
export type Schedule = { every: number } | { cron: string; tz: string };

export interface Target extends Triple {
  /** The account whose key fetches it (accounts.ts). */
  account: string;
  schedule: Schedule;
  /** The kind of image it is (image-kinds.ts), so its first GET is its kind's; absent: ordinary. */
  kind?: string;
}

export interface TagValue {
  value: string;
  read_only: boolean;
}

/**
 * The normalized state of one image as the API described it: the typed fields
 * of its kind (image-kinds.ts; the ordinary kind's are typed here, another
 * kind's may lack them), unknown fields as received, dates in UTC, tags as a
 * map by key. Two snapshots with equal canonical JSON are the same state.
 */
export type ImageSnapshot = Partial<ImageFields> & {
  id: string;
  tags: Record<string, TagValue>;
  [extra: string]: unknown;
};

export type { ImageState } from './images/image-fields.js';

/** A validated answer, ready to store. */
export interface Observation {
  triple: Triple;
  /** The account whose key fetched it. */
  account: string;
  /** The kind whose endpoint answered: the fields it speaks for (image-kinds.ts). */
  kind: ImageKind;
  /** The answer's own state; stored merged with what other kinds' endpoints said (mergedState). */
  snapshot: ImageSnapshot;
  contentHash: string;
  raw: unknown;
  /** Sanity rules stricter than the contract that the answer broke (it is stored all the same). */
  warnings: string[];
  /** When the request that produced this answer was sent. */
  observedAt: Date;
}

/** What a change row records (image_changes.change_type, whose CHECK names the same four). */
export const CHANGE_TYPES = ['created', 'updated', 'deleted', 'restored'] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export interface FieldChange {
  field: string | null;
  oldValue: unknown;
  newValue: unknown;
}

/** What one refresh did to the stored state. */
export type RefreshOutcome = 'unchanged' | 'changed' | 'deleted' | 'failed';
