// A structural check of a JSON value against one of the contract's schemas:
// required members present, types as declared (an anyOf such as "string or
// null" is met by any branch), enum values. Enough to tell whether an answer
// is shaped as Gcore publishes it; formats and patterns are not checked.
import { resolve, type Schema, type Schemas } from './contract.js';

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  if (type === 'integer') return Number.isInteger(value);
  return typeOf(value) === type;
}

/** Where `value` departs from `schema`, one line each, named by a JSON path from `$`; empty when it conforms. */
export function contractProblems(value: unknown, schema: Schema, schemas: Schemas, path = '$'): string[] {
  const node = resolve(schema, schemas);
  if (node.anyOf) {
    const branches = node.anyOf.map((branch) => contractProblems(value, branch, schemas, path));
    if (branches.some((problems) => problems.length === 0)) return [];
    return [`${path}: matches no branch of anyOf (${branches.map((problems) => problems.join('; ')).join(' | ')})`];
  }
  const types = node.type === undefined ? [] : [node.type].flat();
  if (types.length > 0 && !types.some((type) => hasType(value, type))) return [`${path}: ${typeOf(value)}, not ${types.join(' or ')}`];
  if (node.enum && !node.enum.includes(value)) return [`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(node.enum)}`];
  if (Array.isArray(value) && node.items) {
    return value.flatMap((item, index) => contractProblems(item, node.items!, schemas, `${path}[${index}]`));
  }
  if (typeOf(value) !== 'object') return [];
  const object = value as Record<string, unknown>;
  const missing = (node.required ?? []).filter((name) => !Object.hasOwn(object, name)).map((name) => `${path}.${name}: missing`);
  const members = Object.entries(node.properties ?? {})
    .filter(([name]) => Object.hasOwn(object, name))
    .flatMap(([name, member]) => contractProblems(object[name], member, schemas, `${path}.${name}`));
  return [...missing, ...members];
}
