// Validation of one image as the API answers it, tolerant of how the API really
// behaves (see ../shared/reference): `tags` or `tags_v2`, enum values we have
// not seen, extra fields, absent nullable fields, dates with or without a zone.
import { z } from 'zod';
import { excerpt } from './gcore-errors.js';
import type { ImageSnapshot, TagValue, Triple } from './interfaces.js';
import { formatPath, issueMessage } from './validation.js';

/** The answer could not be validated; nothing from it may be stored. */
export class InvalidPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPayloadError';
  }
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Canonical UTC form of an API date: a missing zone means UTC (the API omits
 * it), the fraction is kept to the digit (Postgres stores microseconds) without
 * trailing zeros, so equal instants always compare equal.
 */
export function normalizeTimestamp(text: string): string | null {
  const match = TIMESTAMP.exec(text.trim());
  if (!match) return null;
  const [, date, time, fraction = '', zone = 'Z'] = match;
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone.replace(/^([+-]\d{2}):?(\d{2})$/, '$1:$2');
  const whole = new Date(`${date}T${time}${offset}`);
  if (Number.isNaN(whole.getTime())) return null;
  const digits = fraction.replace(/0+$/, '');
  return `${whole.toISOString().slice(0, 19)}${digits ? `.${digits}` : ''}Z`;
}

const timestamp = z.string().transform((text, ctx) => {
  const normalized = normalizeTimestamp(text);
  if (normalized === null) {
    ctx.addIssue({ code: 'custom', message: `not an ISO 8601 date-time: ${JSON.stringify(text.slice(0, 40))}` });
    return z.NEVER;
  }
  return normalized;
});

const nullableString = z.string().nullable().default(null);
const tag = z.object({ key: z.string().max(255), value: z.string().max(255), read_only: z.boolean() });

const imageSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  region: z.string(),
  status: z.string(),
  visibility: z.string(),
  os_distro: z.string(),
  os_version: z.string(),
  os_type: z.string(),
  disk_format: z.string(),
  min_disk: z.int(),
  min_ram: z.int(),
  project_id: z.int(),
  region_id: z.int(),
  created_at: timestamp,
  updated_at: timestamp,
  size: z.int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable().default(null),
  architecture: nullableString,
  is_baremetal: z.boolean().nullable().default(null),
  creator_task_id: nullableString,
  task_id: nullableString,
  description: nullableString,
  display_order: z.int().nullable().default(null),
  gpu_driver: nullableString,
  gpu_driver_type: nullableString,
  gpu_driver_version: nullableString,
  hw_firmware_type: nullableString,
  hw_machine_type: nullableString,
  ssh_key: nullableString,
  currency_code: nullableString,
  price_per_hour: z.number().nullable().default(null),
  price_per_month: z.number().nullable().default(null),
  price_status: nullableString,
  tags: z.array(tag).max(10_000).optional(),
  tags_v2: z.array(tag).max(10_000).optional(),
});

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`)
    .join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '');
}

function tagMap(list: z.infer<typeof tag>[]): Record<string, TagValue> {
  const map: Record<string, TagValue> = {};
  list.forEach((entry, index) => {
    if (entry.key in map) throw new InvalidPayloadError(`tags[${index}].key: "${entry.key.slice(0, 40)}" appears twice`);
    map[entry.key] = { value: entry.value, read_only: entry.read_only };
  });
  return map;
}

/** Validates an API answer for `triple` into the snapshot to store; errors quote the start of the body. */
export function validateImage(body: unknown, triple: Triple): ImageSnapshot {
  try {
    return toSnapshot(body, triple);
  } catch (error) {
    if (!(error instanceof InvalidPayloadError)) throw error;
    throw new InvalidPayloadError(`${error.message}; body: ${excerpt(JSON.stringify(body) ?? '')}`);
  }
}

function toSnapshot(body: unknown, triple: Triple): ImageSnapshot {
  const parsed = imageSchema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw new InvalidPayloadError(`answer does not fit the image schema: ${describeIssues(parsed.error.issues)}`);
  const { tags, tags_v2, ...fields } = parsed.data;
  if (fields.id !== triple.imageId) {
    throw new InvalidPayloadError(`answer is for image ${JSON.stringify(fields.id.slice(0, 80))}, not the requested ${triple.imageId}`);
  }
  if (tags === undefined && tags_v2 === undefined) throw new InvalidPayloadError('tags: required (as tags or tags_v2)');
  if (tags !== undefined && tags_v2 !== undefined) throw new InvalidPayloadError('tags and tags_v2: both present, expected one');
  return { ...fields, tags: tagMap(tags ?? tags_v2 ?? []) };
}
