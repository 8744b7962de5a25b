// Property-based: answers generated from the contract's ImageSerializer (every
// shape it allows, see support/contract-arbitrary.ts) are accepted, keep what
// they say, hash the same however they are spelled, and come back from
// Postgres as they went in: typed columns, tags, raw document and history.
// Expected values come from the documents themselves (dates by an independent
// calendar computation), not from the code under test.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Sql } from '../src/db/db.js';
import { canonicalJson, contentHash } from '../src/images/image-diff.js';
import { IMAGE_COLUMNS, IMAGE_FIELDS } from '../src/images/image-fields.js';
import { ORDINARY } from '../src/images/image-kinds.js';
import { imageIdProblem } from '../src/images/image-id.js';
import { InvalidPayloadError, validateImage, type ValidatedImage } from '../src/images/image-payload.js';
import type { Observation, Triple } from '../src/interfaces.js';
import { decimalValue, parseJsonExactly } from '../src/images/json-text.js';
import { recordChanges } from '../src/sql/recordChanges.js';
import { recordUnchanged } from '../src/sql/recordUnchanged.js';
import { anyDouble, anyInteger, anyJson, anyString, contractArbitrary, rfc3339, type Leaves } from './support/contract-arbitrary.js';
import { contractSchemas } from './support/contract.js';
import { withDatabase } from './support/env.js';

const LEAVES: Leaves = {
  string: anyString,
  dateTime: rfc3339,
  integer: anyInteger,
  number: anyDouble,
  // Older answers name the tag list `tags`; the contract does not reserve the name, so it may come as any member.
  extraKey: fc.oneof({ weight: 9, arbitrary: anyString }, { weight: 1, arbitrary: fc.constant('tags') }),
  extraValue: anyJson,
};

/** An answer's id is the one requested, and a requested id is one that imageIdProblem lets into a URL. */
const imageId = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 36 }).filter((id) => imageIdProblem(id) === null);

interface Document {
  /** The answer's text, as the API sends it. */
  text: string;
  /** The text parsed as the client parses it. */
  body: Record<string, unknown>;
}

const schemas = contractSchemas();
const documents: fc.Arbitrary<Document> = contractArbitrary(schemas.ImageSerializer!, schemas, LEAVES, { id: imageId }).map((value) => {
  const text = JSON.stringify(value);
  return { text, body: parseJsonExactly(text) as Record<string, unknown> };
});

/** A batch as a worker stores one; printed by count, since each failure quotes its own document. */
class Batch {
  constructor(readonly documents: Document[]) {}
  [fc.toStringMethod]() {
    return `a batch of ${this.documents.length} documents`;
  }
}
const BATCH_SIZE = 100;
const batches = fc
  .uniqueArray(documents, { selector: (d) => d.body.id, minLength: BATCH_SIZE, maxLength: BATCH_SIZE })
  .map((docs) => new Batch(docs));

const tripleOf = (body: Record<string, unknown>): Triple => ({ projectId: 1, regionId: 1, imageId: body.id as string });
const validate = (body: unknown): ValidatedImage => validateImage(body, tripleOf(body as Record<string, unknown>));

/**
 * The validated document, or null when it is refused, as documented, for a
 * number beyond Postgres' numeric (JSON sets no bound); the store test checks
 * that Postgres indeed refuses each such document.
 */
function accepted(document: Document): ValidatedImage | null {
  try {
    return validate(document.body);
  } catch (error) {
    if (error instanceof InvalidPayloadError && error.message.includes(" is beyond what Postgres' numeric holds; body: ")) return null;
    throw error;
  }
}
const quote = (document: Document) => `in ${JSON.stringify(document.text)}`;

// The documented replacement (storable-text.ts), for expected values: NUL and lone surrogates become U+FFFD,
// in names too; of names that become one, the non-null member whose name sorts last is kept.
const storable = (text: string) => text.toWellFormed().replaceAll('\u0000', '\uFFFD');
function storableCopy(value: unknown): unknown {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.map(storableCopy);
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  const kept = new Map<string, [name: string, item: unknown]>();
  const beats = ([name, item]: [string, unknown], [rivalName, rivalItem]: [string, unknown]) =>
    (item === null) === (rivalItem === null) ? name > rivalName : rivalItem === null;
  for (const member of Object.entries(value)) {
    const rival = kept.get(storable(member[0]));
    if (!rival || beats(member, rival)) kept.set(storable(member[0]), member);
  }
  return Object.fromEntries([...kept].map(([key, [, item]]) => [key, storableCopy(item)]));
}

/** JSON with keys sorted that, unlike canonicalJson, keeps null members: documents compare exactly, numbers by value. */
function exactJson(value: unknown): string {
  if (typeof value === 'number') return decimalValue(String(value));
  if (Array.isArray(value)) return `[${value.map(exactJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (JSON.isRawJSON(value)) return decimalValue(value.rawJSON);
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${exactJson(item)}`).join(',')}}`;
}

// Dates, computed independently of src/gcore/api-date.ts: days from the civil calendar (proleptic Gregorian, year 0 = 1 BC).
const DATE_TIME = /^(-?\d{4,5})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;
/** How a validated date must look: UTC, no leap second, no trailing zero in the fraction. */
const CANONICAL_DATE = /^-?\d{4,5}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(\.\d*[1-9])?Z$/;

function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  return era * 146097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719468;
}

/** Whole seconds since 1970 (a missing zone is UTC, as the API means it) and the fraction's digits. */
function instant(text: string): { seconds: bigint; fraction: string } {
  const match = DATE_TIME.exec(text);
  if (!match) throw new Error(`not a generated or canonical date-time: ${text}`);
  const [, year, month, day, hour, minute, second, fraction = '', zone = 'Z'] = match;
  const [, sign, zoneHours = '0', zoneMinutes = '0'] = /^([+-])(\d{2}):(\d{2})$/.exec(zone) ?? [];
  const offset = (sign === '-' ? -1 : 1) * (Number(zoneHours) * 60 + Number(zoneMinutes));
  const days = daysFromCivil(Number(year), Number(month), Number(day));
  return { seconds: BigInt(days) * 86400n + BigInt(Number(hour) * 3600 + (Number(minute) - offset) * 60 + Number(second)), fraction };
}

const nanoseconds = (text: string) => {
  const { seconds, fraction } = instant(text);
  return seconds * 1_000_000_000n + BigInt(fraction.padEnd(9, '0'));
};

/** The instant as Postgres keeps it: the fraction read as a double, times 10^6, rounded half to even (its parser's rint). */
const microseconds = (text: string) => {
  const { seconds, fraction } = instant(text);
  const micros = Number(`0.${fraction}0`) * 1e6;
  const nearest = Math.round(micros);
  // Math.round takes a half up, rint to the even neighbour.
  return seconds * 1_000_000n + BigInt(nearest - micros === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest);
};

/** Tags by key as documented: keys and values made storable, the last of a repeated key kept. */
function expectedTags(list: unknown): Record<string, unknown> {
  const tags = new Map<string, unknown>();
  for (const tag of list as Array<{ key: string; value: string; read_only: boolean }>)
    tags.set(storable(tag.key), { value: storable(tag.value), read_only: tag.read_only });
  return Object.fromEntries(tags);
}

/** A member of no typed field and no tag list (a `tags` member is the tag list's older name, read only when tags_v2 is absent). */
const isUnknown = (key: string) => !Object.hasOwn(IMAGE_FIELDS, key) && key !== 'tags_v2' && key !== 'tags';

/** Where a snapshot differs from what its document says: typed fields, dates as instants, tags, unknown members. */
function snapshotProblems(body: Record<string, unknown>, snapshot: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, definition] of Object.entries(IMAGE_FIELDS)) {
    const sent = body[name] ?? null;
    const kept = snapshot[name];
    const same =
      definition.kind === 'datetime'
        ? typeof kept === 'string' && CANONICAL_DATE.test(kept) && nanoseconds(kept) === nanoseconds(sent as string)
        : canonicalJson(kept) === canonicalJson(storableCopy(sent));
    if (!same) problems.push(`${name}: sent ${exactJson(sent)}, kept ${exactJson(kept)}`);
  }
  if (canonicalJson(snapshot.tags) !== canonicalJson(expectedTags(body.tags_v2))) {
    problems.push(`tags: sent ${exactJson(body.tags_v2)}, kept ${exactJson(snapshot.tags)}`);
  }
  const sentUnknown = storableCopy(Object.fromEntries(Object.entries(body).filter(([key]) => isUnknown(key))));
  const keptUnknown = Object.fromEntries(Object.entries(snapshot).filter(([key]) => isUnknown(key)));
  if (canonicalJson(keptUnknown) !== canonicalJson(sentUnknown))
    problems.push(`unknown members: sent ${exactJson(sentUnknown)}, kept ${exactJson(keptUnknown)}`);
  return problems;
}

// Spellings of the same answer, which must hash alike.

/** The same members in another order, at every depth (arrays keep theirs: tag order decides repeated keys). */
function shuffled(value: unknown, g: fc.GeneratorValue): unknown {
  if (Array.isArray(value)) return value.map((item) => shuffled(item, g));
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  const entries = Object.entries(value);
  for (let n = entries.length - 1; n > 0; n--) {
    const other = g(fc.nat, { max: n });
    [entries[n], entries[other]] = [entries[other]!, entries[n]!];
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, shuffled(item, g)]));
}

/** Null members left out, at every depth: absent and null are the same value. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, item]) => item !== null)
      .map(([key, item]) => [key, withoutNulls(item)]),
  );
}

const reserialized = (value: unknown) => parseJsonExactly(JSON.stringify(value));

/** The typed dates written otherwise for the same instant: t for T, zeros after the fraction, another name for UTC. */
function datesRespelled(body: Record<string, unknown>, g: fc.GeneratorValue): Record<string, unknown> {
  const copy = { ...body };
  for (const [name, definition] of Object.entries(IMAGE_FIELDS)) {
    if (definition.kind !== 'datetime') continue;
    const [, date, time, fraction = '', zone = ''] = /^(.{10})[Tt]([\d:]{8})(\.\d+)?(.*)$/.exec(body[name] as string)!;
    const zones = /^([Zz]|[+-]00:00)?$/.test(zone) ? ['', 'Z', 'z', '+00:00', '-00:00'] : [zone];
    copy[name] = `${date}${g(fc.constantFrom, 'T', 't')}${time}${fraction || '.'}000${g(fc.constantFrom, ...zones)}`;
  }
  return copy;
}

/** Every spelling at once, for the second pass through the store. */
const respelled = (body: Record<string, unknown>, g: fc.GeneratorValue) => reserialized(withoutNulls(shuffled(datesRespelled(body, g), g)));

let sql: Sql;

const T0 = new Date('2025-01-01T00:00:00Z');
const T1 = new Date('2025-01-01T01:00:00Z');

function observe(body: unknown, observedAt: Date): Observation {
  const { snapshot, raw, warnings } = validate(body);
  return {
    triple: tripleOf(body as Record<string, unknown>),
    account: 'default',
    kind: ORDINARY,
    snapshot,
    contentHash: contentHash(snapshot),
    raw,
    warnings,
    observedAt,
  };
}

// Dates are read as microseconds since 1970 and numerics as text, so that nothing is rounded on the way back.
const COLUMN_READS = IMAGE_COLUMNS.map(({ column, kind }) =>
  kind === 'datetime'
    ? `(extract(epoch FROM i.${column}) * 1000000)::bigint::text AS ${column}`
    : kind === 'number'
      ? `i.${column}::text AS ${column}`
      : `i.${column}`,
).join(', ');

/** Where the stored images differ from the documents they were made from. */
async function storedProblems(batch: Document[], observations: Observation[]): Promise<string[]> {
  const rows = await sql.unsafe<Array<Record<string, unknown>>>(`
    SELECT i.image_id, ${COLUMN_READS}, i.raw::text AS raw, v.state::text AS state
    FROM images i JOIN image_versions v ON (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) AND v.valid_to IS NULL`);
  const tagRows = await sql<
    Array<{ image_id: string; key: string; value: string; read_only: boolean }>
  >`SELECT image_id, key, value, read_only FROM image_tags`;
  const stored = new Map(rows.map((row) => [row.image_id as string, row]));
  const problems: string[] = rows.length === batch.length ? [] : [`${rows.length} images stored for ${batch.length} documents`];
  for (const [n, document] of batch.entries()) {
    const { snapshot } = observations[n]!;
    const row = stored.get(snapshot.id);
    if (!row) {
      problems.push(`no image stored ${quote(document)}`);
      continue;
    }
    for (const { field, column, kind } of IMAGE_COLUMNS) {
      const sent = document.body[field] ?? null;
      const [have, want] =
        kind === 'datetime'
          ? [row[column], String(microseconds(sent as string))]
          : [
              canonicalJson(kind === 'number' && row[column] !== null ? Number(row[column]) : row[column]),
              canonicalJson(storableCopy(sent)),
            ];
      if (have !== want) problems.push(`images.${column} (field ${field}): stored ${String(have)}, expected ${want} ${quote(document)}`);
    }
    const tags = tagRows.filter((t) => t.image_id === snapshot.id).map((t) => [t.key, t.value, t.read_only]);
    const sentTags = Object.entries(snapshot.tags).map(([key, tag]) => [key, tag.value, tag.read_only]);
    const byKey = (a: unknown[], b: unknown[]) => ((a[0] as string) < (b[0] as string) ? -1 : 1);
    if (JSON.stringify(tags.sort(byKey)) !== JSON.stringify(sentTags.sort(byKey))) {
      problems.push(`image_tags: stored ${JSON.stringify(tags)}, expected ${JSON.stringify(sentTags)} ${quote(document)}`);
    }
    if (exactJson(parseJsonExactly(row.raw as string)) !== exactJson(storableCopy(document.body))) {
      problems.push(`images.raw: stored ${row.raw as string} ${quote(document)}`);
    }
    if (canonicalJson(parseJsonExactly(row.state as string)) !== canonicalJson(snapshot)) {
      problems.push(`image_versions.state: stored ${row.state as string}, expected ${canonicalJson(snapshot)} ${quote(document)}`);
    }
  }
  // The reporting views read the columns and the history respectively: they must agree on every image.
  const disagreeing = await sql<Array<{ image_id: string }>>`
    SELECT image_id FROM ((SELECT * FROM current_images EXCEPT ALL SELECT * FROM images_as_of(now()))
      UNION ALL (SELECT * FROM images_as_of(now()) EXCEPT ALL SELECT * FROM current_images)) d`;
  for (const { image_id } of disagreeing)
    problems.push(`current_images and images_as_of(now()) differ for image ${JSON.stringify(image_id)}`);
  return problems;
}

withDatabase((connection) => (sql = connection));

describe('documents the contract allows', () => {
  it('are accepted, keep what they say, and hash the same however they are spelled', () => {
    fc.assert(
      fc.property(documents, fc.gen(), (document, g) => {
        const validated = accepted(document);
        if (validated === null) return;
        const { snapshot, raw } = validated;
        expect(snapshotProblems(document.body, snapshot), quote(document)).toEqual([]);
        expect(exactJson(raw), quote(document)).toBe(exactJson(storableCopy(document.body)));
        const hash = contentHash(snapshot);
        const hashOf = (body: unknown) => contentHash(validate(body).snapshot);
        expect(
          {
            shuffled: hashOf(shuffled(document.body, g)),
            withoutNulls: hashOf(withoutNulls(document.body)),
            reserialized: hashOf(reserialized(document.body)),
            datesRespelled: hashOf(datesRespelled(document.body, g)),
          },
          quote(document),
        ).toEqual({ shuffled: hash, withoutNulls: hash, reserialized: hash, datesRespelled: hash });
      }),
      { numRuns: 1000 },
    );
  });

  it(`are stored and read back as they were, ${BATCH_SIZE} to a batch, and storing them again writes nothing`, async () => {
    await fc.assert(
      fc.asyncProperty(batches, fc.gen(), async ({ documents: batch }, g) => {
        await sql`DELETE FROM image_changes`;
        await sql`DELETE FROM image_tags`;
        await sql`DELETE FROM image_versions`;
        await sql`DELETE FROM images`;
        const stored = batch.filter((document) => accepted(document) !== null);
        for (const document of batch.filter((d) => !stored.includes(d))) {
          const error = await sql`SELECT ${JSON.stringify(storableCopy(document.body))}::text::jsonb`.catch((e: { code: string }) => e);
          expect((error as { code?: string }).code, `refused, yet Postgres stores it: ${quote(document)}`).toBe('22003');
        }
        const first = stored.map((document) => observe(document.body, T0));
        const results = await recordChanges(sql, first);
        expect([...results.values()].filter((result) => result !== 'changed')).toEqual([]);
        expect((await storedProblems(stored, first)).slice(0, 5)).toEqual([]);

        // The same answers an hour later, spelled otherwise: recordUnchanged takes them all, and recordChanges would write nothing either.
        const again = stored.map((document) => observe(respelled(document.body, g), T1));
        expect((await recordUnchanged(sql, again, 'answer')).length).toBe(stored.length);
        expect([...(await recordChanges(sql, again)).values()].filter((result) => result !== 'unchanged')).toEqual([]);
        const [counts] =
          await sql`SELECT (SELECT count(*) FROM image_versions)::int AS versions, (SELECT count(*) FROM image_changes)::int AS changes`;
        expect(counts).toEqual({ versions: stored.length, changes: stored.length });
      }),
      // Shrinking would rewrite whole batches; each failure quotes its document instead.
      { numRuns: 10, endOnFailure: true },
    );
  }, 120_000);
});
