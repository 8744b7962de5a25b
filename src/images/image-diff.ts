// Pure comparison of image states: canonical form, content hash, field diff.
// Absent and null are the same value: an API release that starts sending a
// field as null, or a release of ours that adds a field, changes nothing.
import { createHash } from 'node:crypto';
import type { FieldChange, ImageState } from '../interfaces.js';
import { decimalValue } from './json-text.js';

/**
 * JSON with object keys sorted at every depth and null or absent members left
 * out, so equal states serialize equally. Numbers kept as text (json-text.ts)
 * are written by value, as Postgres' jsonb gives them back (1e3 as 1000).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    if (JSON.isRawJSON(value)) return decimalValue(value.rawJSON);
    // Own keys only; an own key named __proto__ shadows the inherited accessor, so it reads as data.
    const members: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined && item !== null) members.push(`${JSON.stringify(key)}:${canonicalJson(item)}`);
    }
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function contentHash(snapshot: ImageState): string {
  return createHash('sha256').update(canonicalJson(snapshot)).digest('hex');
}

/** A member as own data: keys such as constructor or __proto__ are never inherited names. */
function member(object: Record<string, unknown> | null | undefined, key: string): unknown {
  return object && Object.hasOwn(object, key) ? (object[key] ?? null) : null;
}

function diffMembers(before: Record<string, unknown>, after: Record<string, unknown>, prefix: string, skip?: string): FieldChange[] {
  const changes: FieldChange[] = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => key !== skip).sort();
  for (const key of keys) {
    const oldValue = member(before, key);
    const newValue = member(after, key);
    if (canonicalJson(oldValue) !== canonicalJson(newValue)) changes.push({ field: `${prefix}${key}`, oldValue, newValue });
  }
  return changes;
}

/**
 * One entry per changed field between two states; tags compare per key as
 * `tags.<key>`. A field absent on one side compares as null, so a diff is
 * empty exactly when the canonical forms are equal.
 */
export function diffSnapshots(before: ImageState, after: ImageState): FieldChange[] {
  return [
    ...diffMembers(before, after, '', 'tags'),
    ...diffMembers(
      (member(before, 'tags') ?? {}) as Record<string, unknown>,
      (member(after, 'tags') ?? {}) as Record<string, unknown>,
      'tags.',
    ),
  ];
}
