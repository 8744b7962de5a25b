// Pure comparison of image states: canonical form, content hash, field diff.
import { createHash } from 'node:crypto';
import type { FieldChange, ImageSnapshot, TagValue } from './interfaces.js';

/** JSON with object keys sorted at every depth, so equal states serialize equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

export function contentHash(snapshot: ImageSnapshot): string {
  return createHash('sha256').update(canonicalJson(snapshot)).digest('hex');
}

function differs(a: unknown, b: unknown): boolean {
  return canonicalJson(a) !== canonicalJson(b);
}

/**
 * One entry per changed field between two states; tags compare per key as
 * `tags.<key>`. Fields absent on one side compare as null.
 */
export function diffSnapshots(before: ImageSnapshot, after: ImageSnapshot): FieldChange[] {
  const changes: FieldChange[] = [];
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]);
  fields.delete('tags');
  for (const field of [...fields].sort()) {
    const oldValue = before[field] ?? null;
    const newValue = after[field] ?? null;
    if (differs(oldValue, newValue)) changes.push({ field, oldValue, newValue });
  }
  const oldTags: Record<string, TagValue> = before.tags ?? {};
  const newTags: Record<string, TagValue> = after.tags ?? {};
  for (const key of [...new Set([...Object.keys(oldTags), ...Object.keys(newTags)])].sort()) {
    const oldValue = oldTags[key] ?? null;
    const newValue = newTags[key] ?? null;
    if (differs(oldValue, newValue)) changes.push({ field: `tags.${key}`, oldValue, newValue });
  }
  return changes;
}
