// Validation of one image as the API answers it. The rule is Gcore's contract
// (ImageSerializer, see contract/): an answer is refused only for what cannot be
// stored faithfully (a wrong JSON type, a missing or other `id`, a date that is
// not a date, a number beyond what a double holds exactly in a typed field or
// beyond what Postgres' numeric holds anywhere, more tags than we store).
// Anything stricter is a warning that travels with the stored image.
import { z } from 'zod';
import { normalizeTimestamp } from '../gcore/api-date.js';
import { canonicalJson } from './image-diff.js';
import type { FieldDefinition } from './image-fields.js';
import { ORDINARY, type ImageKind } from './image-kinds.js';
import type { ImageSnapshot, TagValue, Triple } from '../interfaces.js';
import { excerpt } from '../gcore/gcore-errors.js';
import { inspectJson, storableJson, storableString, unstorableNumbers } from './storable-text.js';
import { formatPath, issueMessage } from '../config/validation.js';

/** The answer could not be validated; nothing from it may be stored. */
export class InvalidPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPayloadError';
  }
}

/** A validated answer: the state to compare and store, the document to keep, and what was odd about it. */
export interface ValidatedImage {
  snapshot: ImageSnapshot;
  /** The answer as received, made storable (see storable-text.ts). */
  raw: unknown;
  /** Values kept although they break a sanity rule stricter than the contract. */
  warnings: string[];
}

/** Longest tag key or value the API documents; longer ones are kept with a warning. */
const TAG_TEXT_LIMIT = 255;
/** More tags than this in one answer is refused: a size limit, not a contract rule. */
const MAX_TAGS = 10_000;

const timestamp = z.string().transform((text, ctx) => {
  const normalized = normalizeTimestamp(text);
  if (normalized === null) {
    ctx.addIssue({ code: 'custom', message: `not a real ISO 8601 date-time: ${JSON.stringify(text.slice(0, 40))}` });
    return z.NEVER;
  }
  return normalized;
});

/** A number the parser kept as text (json-text.ts) cannot be a typed column's value. */
const exact = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value, ctx) => {
    if (!JSON.isRawJSON(value)) return value;
    ctx.addIssue({ code: 'custom', message: `${value.rawJSON.slice(0, 40)} is beyond what a double holds exactly` });
    return z.NEVER;
  }, schema);

const KINDS = {
  string: () => z.string(),
  integer: () => exact(z.int()),
  number: () => exact(z.number()),
  boolean: () => z.boolean(),
  datetime: () => timestamp,
};

function fieldSchema(definition: FieldDefinition): z.ZodType {
  const base: z.ZodType = KINDS[definition.kind]();
  return definition.nullable ? base.nullable().default(null) : base;
}

/** The typed fields of a validated answer of some kind; `id` is always there. */
type KindFields = { id: string } & Record<string, unknown>;

/** One schema per kind, built from its field table the first time an answer of that kind is validated. */
const fieldSchemas = new WeakMap<ImageKind, z.ZodType<KindFields>>();

function fieldsSchemaOf(kind: ImageKind): z.ZodType<KindFields> {
  let schema = fieldSchemas.get(kind);
  if (!schema) {
    const shape = Object.fromEntries(Object.entries(kind.fields).map(([name, definition]) => [name, fieldSchema(definition)]));
    schema = z.object(shape) as unknown as z.ZodType<KindFields>;
    fieldSchemas.set(kind, schema);
  }
  return schema;
}

const tagList = z.array(z.looseObject({ key: z.string(), value: z.string(), read_only: z.boolean() })).max(MAX_TAGS);
type TagList = z.infer<typeof tagList>;

/** The contract names the list tags_v2; older answers name it tags. */
const TAG_LISTS = ['tags_v2', 'tags'] as const;

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return (
    issues
      .slice(0, 5)
      .map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`)
      .join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '')
  );
}

function parse<T>(schema: z.ZodType<T>, value: unknown, path: PropertyKey[] = []): T {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ ...issue, path: [...path, ...issue.path] }));
  throw new InvalidPayloadError(`answer does not fit the image schema: ${describeIssues(issues)}`);
}

function readTags(body: Record<string, unknown>, warnings: string[]): TagList {
  const [name, other] = TAG_LISTS.filter((key) => body[key] !== undefined);
  if (name === undefined) throw new InvalidPayloadError('tags_v2: required (older answers name it tags)');
  const list = parse(tagList, body[name], [name]);
  if (other !== undefined && canonicalJson(body[other]) !== canonicalJson(body[name])) {
    warnings.push(`${other}: differs from ${name}; stored ${name}`);
  }
  return list;
}

/**
 * Tags by key, as own properties so that keys such as __proto__ or constructor
 * stay data. Keys are compared as stored (storable-text.ts), so that of two keys
 * that become one the last tag is kept, as of any repeated key; `replaced`
 * collects the keys so changed.
 */
function tagMap(list: TagList, warnings: string[], replaced: string[]): Record<string, TagValue> {
  const entries = new Map<string, TagValue>();
  list.forEach((tag, n) => {
    const key = storableString(tag.key);
    if (key !== tag.key) replaced.push(`tags.${tag.key} (key)`);
    if (entries.has(key)) warnings.push(`tags[${n}].key: ${JSON.stringify(key.slice(0, 40))} appears twice; kept the last`);
    if (tag.key.length > TAG_TEXT_LIMIT || tag.value.length > TAG_TEXT_LIMIT) {
      warnings.push(`tags[${n}]: longer than the documented ${TAG_TEXT_LIMIT} characters`);
    }
    entries.set(key, { value: tag.value, read_only: tag.read_only });
  });
  return Object.fromEntries(entries);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !JSON.isRawJSON(value);
}

function toValidated(body: unknown, triple: Triple, kind: ImageKind): ValidatedImage {
  if (!isObject(body)) {
    throw new InvalidPayloadError(
      `answer does not fit the image schema: (top level): expected an object, received ${Array.isArray(body) ? 'array' : typeof body}`,
    );
  }
  const object = body;
  const fields = parse(fieldsSchemaOf(kind), object);
  if (fields.id !== triple.imageId) {
    throw new InvalidPayloadError(`answer is for image ${JSON.stringify(fields.id.slice(0, 80))}, not the requested ${triple.imageId}`);
  }
  const inspected = inspectJson(object);
  const raw = inspected.unstorableText ? storableJson(body, '', []) : body;
  // One such number anywhere in what is stored would make Postgres refuse the batch it is stored with.
  // Looked for in the stored form: of two members that become one name, only the one kept counts.
  const unstorable = inspected.exactNumbers ? unstorableNumbers(raw, '', []) : [];
  if (unstorable.length > 0) {
    const numbers = unstorable.slice(0, 5).map((number) => `${number} is beyond what Postgres' numeric holds`);
    throw new InvalidPayloadError(`answer does not fit the image schema: ${numbers.join('; ')}`);
  }
  const warnings: string[] = [];
  const tagKeysReplaced: string[] = [];
  const tags = tagMap(readTags(object, warnings), warnings, tagKeysReplaced);
  // Unknown fields are part of the state, taken from the body itself so that no key is lost to a prototype.
  const unknown = Object.entries(object).filter(
    ([key]) => !Object.hasOwn(kind.fields, key) && !(TAG_LISTS as readonly string[]).includes(key),
  );
  const replaced: string[] = [];
  // Spreading defines own properties, so an unknown field named __proto__ stays a field.
  const state: ImageSnapshot = { ...Object.fromEntries(unknown), ...fields, tags };
  // Every string of the state comes from the body (dates normalized to ASCII), so a storable body means a storable state.
  const snapshot = inspected.unstorableText ? storableJson(state, '', replaced) : state;
  replaced.push(...tagKeysReplaced);
  if (replaced.length > 0) {
    warnings.push(`${replaced.slice(0, 5).join(', ')}: NUL or lone surrogate characters stored as U+FFFD (Postgres cannot hold them)`);
  }
  return { snapshot, raw, warnings };
}

/** Validates an API answer for `triple` against `kind`'s field table; errors quote the start of the body. */
export function validateImage(body: unknown, triple: Triple, kind: ImageKind = ORDINARY): ValidatedImage {
  try {
    return toValidated(body, triple, kind);
  } catch (error) {
    if (!(error instanceof InvalidPayloadError)) throw error;
    throw new InvalidPayloadError(`${error.message}; body: ${excerpt(JSON.stringify(body) ?? '')}`);
  }
}
