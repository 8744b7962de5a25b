// The one definition of an image (src/images/image-fields.ts, and each kind's
// field table in src/images/image-kinds.ts) against everything that must agree
// with it: schema.ts, the migrated tables, the reporting views and Gcore's
// contract. Each check returns its disagreements, each naming the field
// and the place, so a failure reads as a list of what to fix; each check is also
// run on an altered copy of its input to show that it notices.
import { getTableConfig } from 'drizzle-orm/pg-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../src/db/db.js';
import { IMAGE_COLUMNS, IMAGE_FIELDS, PG_TYPES, type FieldDefinition, type FieldKind } from '../src/images/image-fields.js';
import { GPU_BAREMETAL, GPU_VIRTUAL, imageKinds, storedColumns } from '../src/images/image-kinds.js';
import { imageRows } from '../src/db/schema.js';
import { sampleGpuImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { contractAnswer, contractSchemas, resolve, type Schema, type Schemas } from './support/contract.js';
import { withDatabase } from './support/env.js';

/** A column as a table, view or function declares it; types as Postgres' format_type writes them. */
interface Column {
  name: string;
  type: string;
  notNull: boolean;
}

/** A column a table should have, and what asks for it (a field, or the bookkeeping). */
interface ExpectedColumn extends Column {
  source: string;
}

/** Columns of `image_rows` that hold no field of the answer: the triple and what the sync keeps about it. */
const BOOKKEEPING: ExpectedColumn[] = [
  { name: 'project_id', type: 'integer', notNull: true },
  { name: 'region_id', type: 'integer', notNull: true },
  { name: 'image_id', type: 'text', notNull: true },
  { name: 'raw', type: 'jsonb', notNull: true },
  { name: 'content_hash', type: 'text', notNull: true },
  { name: 'first_seen_at', type: 'timestamp with time zone', notNull: true },
  { name: 'seen_at', type: 'timestamp with time zone', notNull: true },
  { name: 'last_changed_at', type: 'timestamp with time zone', notNull: true },
  { name: 'deleted_at', type: 'timestamp with time zone', notNull: false },
  { name: 'account', type: 'text', notNull: true },
  { name: 'kind', type: 'text', notNull: true },
].map((column) => ({ ...column, source: 'bookkeeping' }));

/** The triple columns every per-image table starts with. */
const TRIPLE = BOOKKEEPING.slice(0, 3);

/** The contract's name of the tag list, which has a table of its own rather than a field (GpuImageSerializer still names it `tags`). */
const TAG_LIST = 'tags_v2';
const TAG_LISTS = new Set([TAG_LIST, 'tags']);

/** Every column a kind's field fills (image-kinds.ts), each once, with its Postgres type. */
const FIELD_COLUMNS = storedColumns().map((c) => ({ ...c, pgType: PG_TYPES[c.kind] }));

type FieldColumn = (typeof FIELD_COLUMNS)[number];

/** Disagreements between the columns `where` should have and those it has. */
function columnProblems(where: string, expected: ExpectedColumn[], actual: Column[]): string[] {
  const problems: string[] = [];
  const byName = new Map(actual.map((column) => [column.name, column]));
  for (const want of expected) {
    const have = byName.get(want.name);
    if (!have) {
      problems.push(`${where}: no column ${want.name} (${want.source})`);
      continue;
    }
    if (have.type !== want.type) problems.push(`${where}.${want.name} (${want.source}): ${have.type}, should be ${want.type}`);
    if (have.notNull !== want.notNull) {
      problems.push(
        `${where}.${want.name} (${want.source}): ${have.notNull ? 'NOT NULL' : 'nullable'}, should be ${want.notNull ? 'NOT NULL' : 'nullable'}`,
      );
    }
  }
  const known = new Set(expected.map((column) => column.name));
  for (const column of actual) {
    if (!known.has(column.name)) problems.push(`${where}.${column.name}: no field of src/images/image-fields.ts and not bookkeeping`);
  }
  return problems;
}

/** Disagreements between the reporting view's typed columns and the `images` columns they show. */
function viewProblems(fields: readonly FieldColumn[], table: Column[], view: Column[]): string[] {
  const problems: string[] = [];
  for (const { field, column } of fields) {
    const shown = view.find((c) => c.name === column);
    const stored = table.find((c) => c.name === column);
    if (!shown) problems.push(`current_images: no column ${column} (field ${field})`);
    else if (shown.type !== stored?.type)
      problems.push(`current_images.${column} (field ${field}): ${shown.type}, images.${column} is ${stored?.type}`);
  }
  return problems;
}

/** Disagreements, position by position, between images_as_of's result columns and current_images. */
function functionProblems(view: Column[], result: Column[]): string[] {
  const describe = (column: Column | undefined) => (column ? `${column.name} ${column.type}` : 'nothing');
  const problems: string[] = [];
  for (let n = 0; n < Math.max(view.length, result.length); n++) {
    if (view[n]?.name !== result[n]?.name || view[n]?.type !== result[n]?.type) {
      problems.push(`images_as_of column ${n + 1}: ${describe(result[n])}, current_images has ${describe(view[n])}`);
    }
  }
  return problems;
}

/** The JSON types a property admits ('date-time' for a string of that format), references and anyOf followed. */
function jsonTypes(property: Schema, schemas: Schemas): string[] {
  const schema = resolve(property, schemas);
  if (schema.anyOf) return [...new Set(schema.anyOf.flatMap((branch) => jsonTypes(branch, schemas)))];
  // No type at all admits any JSON value, which no single field kind holds.
  const types = schema.type === undefined ? ['any'] : Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.map((type) => (type === 'string' && schema.format === 'date-time' ? 'date-time' : type));
}

/** The field kind that holds exactly the non-null values the contract admits (a number may be integral). */
const KIND_OF_TYPES: Record<string, FieldKind> = {
  string: 'string',
  'date-time': 'datetime',
  integer: 'integer',
  number: 'number',
  'integer,number': 'number',
  boolean: 'boolean',
};

function contractKind(types: string[]): FieldKind | undefined {
  return KIND_OF_TYPES[
    types
      .filter((type) => type !== 'null')
      .sort()
      .join(',')
  ];
}

/**
 * Disagreements between a field table and its serializer's properties. A
 * field may be nullable where the contract says it is not (older answers omit
 * such fields), never the other way round: a contract-valid null would be refused.
 */
function contractProblems(
  fields: Record<string, FieldDefinition>,
  serializer: Schema,
  schemas: Schemas,
  name = 'ImageSerializer',
): string[] {
  const problems: string[] = [];
  const properties = serializer.properties ?? {};
  for (const [property, schema] of Object.entries(properties)) {
    if (TAG_LISTS.has(property)) continue;
    const field = Object.hasOwn(fields, property) ? fields[property] : undefined;
    if (!field) {
      problems.push(`${name}.${property}: not in the field table`);
      continue;
    }
    const types = jsonTypes(schema, schemas);
    if (contractKind(types) !== field.kind) problems.push(`field ${property}: ${field.kind}, ${name}.${property} is ${types.join(' or ')}`);
    if (types.includes('null') && !field.nullable) problems.push(`field ${property}: not nullable, ${name}.${property} may be null`);
  }
  for (const field of Object.keys(fields)) {
    if (!Object.hasOwn(properties, field)) problems.push(`field ${field}: not a property of ${name}`);
  }
  return problems;
}

/** The image_tags columns the contract's tag list asks for: the triple, then one per TagSerializer property. */
function tagColumns(serializer: Schema, schemas: Schemas): { columns: ExpectedColumn[]; problems: string[] } {
  const list = resolve(serializer.properties?.[TAG_LIST] ?? {}, schemas);
  const tag = list.type === 'array' && list.items ? resolve(list.items, schemas) : undefined;
  if (tag?.type !== 'object') return { columns: [], problems: [`ImageSerializer.${TAG_LIST}: not an array of objects`] };
  const problems: string[] = [];
  const columns = Object.entries(tag.properties ?? {}).flatMap(([name, property]) => {
    const types = jsonTypes(property, schemas);
    const kind = contractKind(types);
    if (kind === undefined) {
      problems.push(`${TAG_LIST}[].${name}: ${types.join(' or ')}, which no column type holds`);
      return [];
    }
    const notNull = (tag.required ?? []).includes(name) && !types.includes('null');
    return [{ name, type: typeName(PG_TYPES[kind]), notNull, source: `${TAG_LIST}[].${name}` }];
  });
  return { columns: [...TRIPLE, ...columns], problems };
}

let sql: Sql;
/** Postgres' own name of each PG_TYPES entry (timestamptz is "timestamp with time zone"). */
let typeName: (type: string) => string;

/** The columns of a table or view, in order, with their types as format_type writes them (typmods included). */
async function columnsOf(relation: string): Promise<Column[]> {
  return sql<Column[]>`
    SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS "notNull"
    FROM pg_attribute WHERE attrelid = ${relation}::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`;
}

/** Whether every kind has a field for `column` that is never null: a kind without one leaves it null. */
const requiredByEveryKind = (column: string) =>
  imageKinds().every((kind) => Object.values(kind.fields).some((field) => field.column === column && !field.nullable));

/** The columns `image_rows` should have: one per field with a column, NOT NULL where every kind requires it, then the bookkeeping. */
function expectedImageColumns(fields: readonly FieldColumn[]): ExpectedColumn[] {
  return [
    ...fields.map((c) => ({
      name: c.column,
      type: typeName(c.pgType),
      notNull: requiredByEveryKind(c.column),
      source: `field ${c.field}`,
    })),
    ...BOOKKEEPING,
  ];
}

/** image_rows as schema.ts declares it (drizzle writes types as Postgres does: "timestamp with time zone"). */
const schemaColumns = (): Column[] =>
  getTableConfig(imageRows).columns.map((c) => ({ name: c.name, type: c.getSQLType(), notNull: c.notNull }));

withDatabase((connection) => (sql = connection));
beforeAll(async () => {
  const names = await sql<{ type: string; name: string }[]>`
    SELECT type, format_type(type::regtype, NULL) AS name FROM unnest(${Object.values(PG_TYPES)}::text[]) type`;
  const byType = new Map(names.map((n) => [n.type, n.name]));
  typeName = (type) => byType.get(type)!;
});

describe('the image definition', () => {
  it("schema.ts's image_rows table has a column of the field's type for every field, NOT NULL exactly when every kind requires it, and no other typed column", () => {
    expect(columnProblems('schema.ts image_rows', expectedImageColumns(FIELD_COLUMNS), schemaColumns())).toEqual([]);
  });

  it('the migrated image_rows table agrees with the field table too, so migrations and schema.ts cannot drift apart', async () => {
    // pg_attribute rather than information_schema.columns: format_type keeps typmods such as numeric(10,2).
    expect(columnProblems('image_rows', expectedImageColumns(FIELD_COLUMNS), await columnsOf('image_rows'))).toEqual([]);
  });

  it('a column only some kinds require is NOT NULL for ordinary images by a CHECK that names each of them', async () => {
    const relaxed = IMAGE_COLUMNS.filter((c) => !c.nullable && !requiredByEveryKind(c.column)).map((c) => c.column);
    expect(relaxed).toEqual(['region', 'os_distro', 'os_version', 'os_type', 'owner_project_id', 'image_region_id']);
    const [check] = await sql<{ definition: string }[]>`
      SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = 'image_rows_ordinary_fields_check'`;
    expect(relaxed.filter((column) => !check!.definition.includes(`(${column} IS NOT NULL)`))).toEqual([]);
  });

  it('owned: the owner project the answer names against the project asked, else (GPU images name none) anything but public', async () => {
    const cases: Array<[number, number | null, string | null]> = [
      [1, 1, 'private'],
      [1, 1, 'public'],
      [1, 500, 'public'],
      [1, 500, 'shared'],
      [1, null, 'private'],
      [1, null, 'shared'],
      [1, null, 'public'],
    ];
    const answers = await Promise.all(
      cases.map(async ([project, owner, visibility]) => {
        const [row] = await sql<{ owned: boolean }[]>`SELECT image_owned(${project}, ${owner}::bigint, ${visibility}) AS owned`;
        return row!.owned;
      }),
    );
    expect(answers).toEqual([true, true, false, false, true, true, false]);
  });

  it('the view images shows the columns of image_rows in their order and types, last_seen_at where the table has seen_at, then owned', async () => {
    const shown = (await columnsOf('image_rows')).map(({ name, type }) => ({ name: name === 'seen_at' ? 'last_seen_at' : name, type }));
    expect((await columnsOf('images')).map(({ name, type }) => ({ name, type }))).toEqual([...shown, { name: 'owned', type: 'boolean' }]);
  });

  it('current_images shows every field column with its images type, and images_as_of returns the same columns in the same order', async () => {
    const view = await columnsOf('current_images');
    expect(viewProblems(FIELD_COLUMNS, await columnsOf('image_rows'), view)).toEqual([]);
    const result = await sql<Column[]>`
      SELECT a.name, format_type(a.type, NULL) AS type, true AS "notNull"
      FROM pg_proc p, unnest(p.proargnames, p.proallargtypes, p.proargmodes::text[]) WITH ORDINALITY AS a(name, type, mode, n)
      WHERE p.oid = 'images_as_of(timestamptz)'::regprocedure AND a.mode = 't' ORDER BY a.n`;
    expect(functionProblems(view, result)).toEqual([]);
  });

  it("every property of the contract's ImageSerializer is a field of a compatible kind or the tag list, and every field is in the contract", () => {
    const schemas = contractSchemas();
    expect(contractProblems(IMAGE_FIELDS, schemas.ImageSerializer!, schemas)).toEqual([]);
  });

  it("the GPU kinds' field tables are GpuImageSerializer's properties, and their endpoints are the contract's", () => {
    const schemas = contractSchemas();
    for (const kind of [GPU_VIRTUAL, GPU_BAREMETAL]) {
      expect(contractProblems(kind.fields, schemas.GpuImageSerializer!, schemas, 'GpuImageSerializer')).toEqual([]);
      expect(contractAnswer(kind.getPath)).toBe('#/components/schemas/GpuImageSerializer');
      expect(kind.lists.map((list) => contractAnswer(list.path))).toEqual(['#/components/schemas/ListGpuImageSerializer']);
    }
    // The fake's GPU answer has exactly the serializer's properties: no project_id, region_id or region.
    expect(Object.keys(sampleGpuImage(SAMPLE_TRIPLE)).sort()).toEqual(Object.keys(schemas.GpuImageSerializer!.properties!).sort());
  });

  it("image_tags has a column of the right type for every property of the contract's tags", async () => {
    const schemas = contractSchemas();
    const { columns, problems } = tagColumns(schemas.ImageSerializer!, schemas);
    expect([...problems, ...columnProblems('image_tags', columns, await columnsOf('image_tags'))]).toEqual([]);
  });
});

describe('the checks notice a disagreement', () => {
  it('in a table: a wrong type, a wrong NOT NULL, a missing column and a column no field defines', () => {
    const altered = schemaColumns()
      .filter((c) => c.name !== 'ssh_key')
      .map((c) => (c.name === 'min_disk' ? { ...c, type: 'integer' } : c.name === 'size' ? { ...c, notNull: true } : c));
    altered.push({ name: 'flavor', type: 'text', notNull: false });
    expect(columnProblems('images', expectedImageColumns(FIELD_COLUMNS), altered)).toEqual([
      'images.min_disk (field min_disk): integer, should be bigint',
      'images.size (field size): NOT NULL, should be nullable',
      'images: no column ssh_key (field ssh_key)',
      'images.flavor: no field of src/images/image-fields.ts and not bookkeeping',
    ]);
  });

  it('in the views: a column missing from current_images or of another type, and images_as_of out of step', async () => {
    const table = await columnsOf('image_rows');
    const view = (await columnsOf('current_images')).filter((c) => c.name !== 'ssh_key');
    view.find((c) => c.name === 'price_per_hour')!.type = 'double precision';
    expect(viewProblems(FIELD_COLUMNS, table, view)).toEqual([
      'current_images: no column ssh_key (field ssh_key)',
      'current_images.price_per_hour (field price_per_hour): double precision, images.price_per_hour is numeric',
    ]);
    const swapped = [view[1]!, view[0]!, ...view.slice(2, -1)];
    expect(functionProblems(view, swapped)).toEqual([
      'images_as_of column 1: region_id integer, current_images has project_id integer',
      'images_as_of column 2: project_id integer, current_images has region_id integer',
      `images_as_of column ${view.length}: nothing, current_images has cuda_toolkit_version text`,
    ]);
  });

  it('in the contract: a kind, a nullability, a property without a field and a field without a property', () => {
    const schemas = contractSchemas();
    const serializer = structuredClone(schemas.ImageSerializer!);
    const properties = serializer.properties!;
    properties.min_disk = { type: 'number' };
    properties.flavor = { type: 'string' };
    delete properties.display_order;
    const fields = { ...IMAGE_FIELDS, task_id: { kind: 'string', nullable: false, column: 'task_id' } } as Record<string, FieldDefinition>;
    expect(contractProblems(fields, serializer, schemas)).toEqual([
      'field min_disk: integer, ImageSerializer.min_disk is number',
      'field task_id: not nullable, ImageSerializer.task_id may be null',
      'ImageSerializer.flavor: not in the field table',
      'field display_order: not a property of ImageSerializer',
    ]);
    properties.tags_v2 = { type: 'array', items: { type: 'object', properties: { key: { type: 'integer' }, labels: { type: 'array' } } } };
    expect(tagColumns(serializer, schemas)).toEqual({
      columns: [...TRIPLE, { name: 'key', type: 'bigint', notNull: false, source: 'tags_v2[].key' }],
      problems: ['tags_v2[].labels: array, which no column type holds'],
    });
  });
});
