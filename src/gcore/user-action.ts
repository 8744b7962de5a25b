// validate, for the audit log: one entry of GET /cloud/v1/user_actions
// (UserActionSerializer) as the follower stores it. An entry without a usable
// id or time cannot be stored or placed in the log, and is refused; any other
// field that does not match the contract is stored as null and named, while
// the entry as received is kept whole in `raw`.
import { epochMicros, normalizeTimestamp } from './api-date.js';
import { imageIdProblem } from '../images/image-id.js';
import { isStorable, storableJson, storableString, unstorableNumbers } from '../images/storable-text.js';

export interface UserAction {
  id: string;
  /** Canonical UTC (api-date.ts). */
  timestamp: string;
  /** The same instant in microseconds since the epoch, to order entries by (Postgres keeps microseconds too). */
  micros: bigint;
  apiGroup: string | null;
  actionType: string | null;
  email: string | null;
  userId: number | null;
  tokenId: number | null;
  issuedByUserId: number | null;
  sourceUserIp: string | null;
  userAgent: string | null;
  projectId: number | null;
  regionId: number | null;
  /** Every image the entry names (resources of type image or shared_image), in its order. */
  imageIds: string[];
  /** Gcore's is_complete: false while Gcore has not filled the entry with all it should hold (read again for a while); null when not a boolean. */
  isComplete: boolean | null;
  /** Fields that did not match the contract (stored as null). */
  invalidFields: string[];
  raw: unknown;
}

/** The resource types that are images. */
const IMAGE_RESOURCES = new Set(['image', 'shared_image']);
/** The contract bounds no id; this keeps one within what a Postgres index entry holds. */
const MAX_ID_LENGTH = 1000;

/** An entry the follower cannot store or place in the log: it is named in the log and passed over. */
export class InvalidActionError extends Error {
  override name = 'InvalidActionError';
}

type Entry = Record<string, unknown>;

function text(entry: Entry, field: string, invalid: string[]): string | null {
  const value = entry[field];
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' && isStorable(value)) return value;
  invalid.push(field);
  return null;
}

function integer(entry: Entry, field: string, invalid: string[]): number | null {
  const value = entry[field];
  if (value === null || value === undefined) return null;
  if (Number.isSafeInteger(value)) return value as number;
  invalid.push(field);
  return null;
}

function flag(entry: Entry, field: string, invalid: string[]): boolean | null {
  const value = entry[field];
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value;
  invalid.push(field);
  return null;
}

function imagesOf(entry: Entry, invalid: string[]): string[] {
  const resources = entry.resources;
  if (!Array.isArray(resources)) {
    invalid.push('resources');
    return [];
  }
  const ids: string[] = [];
  for (const resource of resources as unknown[]) {
    const { resource_id: id, resource_type: type } = (resource ?? {}) as Entry;
    if (typeof type !== 'string' || !IMAGE_RESOURCES.has(type)) continue;
    if (typeof id === 'string' && imageIdProblem(id) === null) {
      if (!ids.includes(id)) ids.push(id);
    } else if (!invalid.includes('resources')) invalid.push('resources');
  }
  return ids;
}

/** Reads one entry; throws InvalidActionError when it has no id or time that can be stored. */
export function readUserAction(value: unknown): UserAction {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidActionError('an entry that is not an object');
  const entry = value as Entry;
  const { id, timestamp } = entry;
  if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH || !isStorable(id)) {
    throw new InvalidActionError(
      `an entry whose id is not a string of 1 to ${MAX_ID_LENGTH} characters: ${JSON.stringify(id)?.slice(0, 80)}`,
    );
  }
  const canonical = typeof timestamp === 'string' ? normalizeTimestamp(timestamp) : null;
  // A zone can carry year 0000 back to -0001, or 9999 on to 10000: no time an audit log holds, and none Date reads.
  if (canonical === null || !/^\d{4}-/.test(canonical))
    throw new InvalidActionError(`entry ${id}: timestamp is not a date-time: ${JSON.stringify(timestamp)?.slice(0, 80)}`);
  const tooLarge = unstorableNumbers(entry, '', []);
  if (tooLarge.length > 0) throw new InvalidActionError(`entry ${id}: numbers beyond what Postgres can store: ${tooLarge.join(', ')}`);
  const invalid: string[] = [];
  const replaced: string[] = [];
  const action: UserAction = {
    id,
    timestamp: canonical,
    micros: epochMicros(canonical),
    apiGroup: text(entry, 'api_group', invalid),
    actionType: text(entry, 'action_type', invalid),
    email: text(entry, 'email', invalid),
    userId: integer(entry, 'user_id', invalid),
    tokenId: integer(entry, 'token_id', invalid),
    issuedByUserId: integer(entry, 'issued_by_user_id', invalid),
    sourceUserIp: text(entry, 'source_user_ip', invalid),
    userAgent: text(entry, 'user_agent', invalid),
    projectId: integer(entry, 'project_id', invalid),
    regionId: integer(entry, 'region_id', invalid),
    imageIds: imagesOf(entry, invalid),
    isComplete: flag(entry, 'is_complete', invalid),
    invalidFields: invalid,
    raw: storableJson(entry, '', replaced),
  };
  // A path names the key it is at, which may itself hold what Postgres cannot store.
  if (replaced.length > 0) invalid.push(...replaced.map((path) => `${storableString(path)} (text Postgres cannot store, replaced)`));
  return action;
}
