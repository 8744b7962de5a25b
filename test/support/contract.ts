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

/** The contract's components.schemas, read from the copy kept in the repository (`file` under contract/). */
export function contractSchemas(file = 'gcore-cloud-api-subset.yaml'): Schemas {
  const text = readFileSync(new URL(`../../contract/${file}`, import.meta.url), 'utf8');
  return (parse(text) as { components: { schemas: Schemas } }).components.schemas;
}

/** The schema itself, or the component its $ref names (followed until it is not a reference). */
export function resolve(schema: Schema, schemas: Schemas): Schema {
  if (schema.$ref === undefined) return schema;
  const name = /^#\/components\/schemas\/([^/]+)$/.exec(schema.$ref)?.[1];
  const target = name === undefined ? undefined : schemas[name];
  if (target === undefined) throw new Error(`contract: cannot resolve ${schema.$ref}`);
  return resolve(target, schemas);
}
