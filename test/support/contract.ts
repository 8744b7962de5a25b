// Gcore's contract (contract/gcore-cloud-api-subset.yaml) as the tests read it:
// its component schemas, and a reference resolved to the schema it names.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** The JSON Schema keywords the contract's schemas use; the rest are annotations (description, examples...). */
export interface Schema {
  type?: string | string[];
  anyOf?: Schema[];
  $ref?: string;
  enum?: unknown[];
  format?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  [annotation: string]: unknown;
}

export type Schemas = Record<string, Schema>;

interface Contract {
  paths: Record<string, { get?: { responses?: Record<string, { content?: Record<string, { schema?: Schema }> }> } }>;
  components: { schemas: Schemas };
}

/** The contract, read from the copy kept in the repository (`file` under contract/). */
function contract(file = 'gcore-cloud-api-subset.yaml'): Contract {
  return parse(readFileSync(new URL(`../../contract/${file}`, import.meta.url), 'utf8')) as Contract;
}

/** The contract's components.schemas. */
export function contractSchemas(file?: string): Schemas {
  return contract(file).components.schemas;
}

/** The schema reference the contract's GET of `path` answers 200 with; undefined for a path it does not have. */
export function contractAnswer(path: string): string | undefined {
  return contract().paths[path]?.get?.responses?.['200']?.content?.['application/json']?.schema?.$ref;
}

/** The schema itself, or the component its $ref names (followed until it is not a reference). */
export function resolve(schema: Schema, schemas: Schemas): Schema {
  if (schema.$ref === undefined) return schema;
  const name = /^#\/components\/schemas\/([^/]+)$/.exec(schema.$ref)?.[1];
  const target = name === undefined ? undefined : schemas[name];
  if (target === undefined) throw new Error(`contract: cannot resolve ${schema.$ref}`);
  return resolve(target, schemas);
}
