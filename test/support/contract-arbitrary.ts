// fast-check arbitraries for JSON documents valid under a schema of Gcore's
// contract. The converter knows the keywords the contract uses (type, anyOf,
// $ref, enum, required, format date-time, items) and refuses any other, so a
// constraint added to the contract cannot be ignored by a generator that would
// then produce documents the contract forbids. Numbers that a double would
// change are JSON.rawJSON values: JSON.stringify writes them as they are.
import fc from 'fast-check';
import { resolve, type Schema, type Schemas } from './contract.js';

/** Keywords that say nothing about validity. */
const ANNOTATIONS = new Set(['title', 'description', 'example', 'examples']);
const KEYWORDS = new Set(['type', 'anyOf', '$ref', 'enum', 'format', 'properties', 'required', 'items']);

/** What the converter puts where the schema names a JSON type, and the members objects carry beyond their own. */
export interface Leaves {
  string: fc.Arbitrary<string>;
  dateTime: fc.Arbitrary<string>;
  integer: fc.Arbitrary<unknown>;
  number: fc.Arbitrary<unknown>;
  /** Additional members: the contract's objects do not forbid them. */
  extraKey: fc.Arbitrary<string>;
  extraValue: fc.Arbitrary<unknown>;
}

/**
 * Documents valid under `schema`. `overrides` replaces the arbitrary of a
 * top-level property whose valid values the product narrows further (an
 * answer's id must be the requested one).
 */
export function contractArbitrary(
  schema: Schema,
  schemas: Schemas,
  leaves: Leaves,
  overrides: Record<string, fc.Arbitrary<unknown>> = {},
): fc.Arbitrary<unknown> {
  const convert = (node: Schema, top = false): fc.Arbitrary<unknown> => {
    const unknown = Object.keys(node).filter((keyword) => !KEYWORDS.has(keyword) && !ANNOTATIONS.has(keyword));
    if (unknown.length > 0) throw new Error(`contract-arbitrary: unsupported keyword ${unknown.join(', ')}`);
    const validation = Object.keys(node).filter((keyword) => KEYWORDS.has(keyword));
    if ((node.$ref !== undefined || node.anyOf) && validation.length > 1)
      throw new Error(`contract-arbitrary: unsupported ${validation.join(' beside ')}`);
    if (node.$ref !== undefined) return convert(resolve(node, schemas));
    if (node.anyOf) return fc.oneof(...node.anyOf.map((branch) => convert(branch)));
    if (node.enum) return fc.constantFrom(...node.enum);
    const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type];
    // A schema without a type admits any JSON value.
    if (types.length === 0) return leaves.extraValue;
    if (node.format !== undefined && !(node.format === 'date-time' && types.length === 1 && types[0] === 'string')) {
      throw new Error(`contract-arbitrary: unsupported format ${node.format}`);
    }
    return fc.oneof(...types.map((type) => typed(type, node, top)));
  };

  const typed = (type: string, node: Schema, top: boolean): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
        return leaves.integer;
      case 'number':
        return leaves.number;
      case 'string':
        return node.format === 'date-time' ? leaves.dateTime : leaves.string;
      case 'array':
        return fc.array(node.items ? convert(node.items) : leaves.extraValue, { maxLength: 6 });
      case 'object':
        return object(node, top);
      default:
        throw new Error(`contract-arbitrary: unknown type ${type}`);
    }
  };

  const object = (node: Schema, top: boolean): fc.Arbitrary<unknown> => {
    const properties = node.properties ?? {};
    const required = new Set(node.required ?? []);
    for (const name of required)
      if (!Object.hasOwn(properties, name)) throw new Error(`contract-arbitrary: required ${name} has no schema`);
    const members = Object.entries(properties).map(([name, property]) => {
      const value = top && Object.hasOwn(overrides, name) ? overrides[name]! : convert(property);
      return required.has(name)
        ? value.map((v) => [[name, v]])
        : fc.option(
            value.map((v) => [[name, v]]),
            { nil: [] },
          );
    });
    const extras = fc.uniqueArray(
      fc.tuple(
        leaves.extraKey.filter((key) => !Object.hasOwn(properties, key)),
        leaves.extraValue,
      ),
      {
        selector: ([key]) => key,
        maxLength: 4,
      },
    );
    // Object.fromEntries defines own properties, so a member named __proto__ stays a member.
    return fc.tuple(fc.tuple(...members), extras).map(([known, extra]) => Object.fromEntries([...known.flat(), ...extra]));
  };

  return convert(schema, true);
}

// The leaves: every value the contract's types admit, biased towards the ones
// that trouble a store.

/** Strings a map or a JavaScript object treats specially, or that collide once NUL and lone surrogates become U+FFFD. */
const AWKWARD_STRINGS = ['', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'k', 'k\u0000', 'k\ud800', 'k\uFFFD'];

const character = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 5, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constant('\u0000') },
  { weight: 2, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)) },
);

/** Any string: every code point, NUL, lone (and paired) surrogates, and awkward names often enough to repeat. */
export const anyString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: character, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom(...AWKWARD_STRINGS) },
);

const isLeap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
const daysIn = (year: number, month: number) => (month === 2 ? (isLeap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31);
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

const offset = fc
  .record({ sign: fc.constantFrom('+', '-'), hours: fc.integer({ min: 0, max: 23 }), minutes: fc.integer({ min: 0, max: 59 }) })
  .map(({ sign, hours, minutes }) => `${sign}${pad(hours)}:${pad(minutes)}`);

/**
 * RFC 3339 date-times, years 0000-9999, with 0-9 fraction digits, T or t, and a
 * zone of Z, z, an offset, or none (the contract's own example has none). A leap
 * second falls at 23:59:60 UTC, the only place RFC 3339 allows it.
 */
export const rfc3339 = fc
  .record({
    year: fc.integer({ min: 0, max: 9999 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 31 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 0, max: 59 }) }, { weight: 1, arbitrary: fc.constant(60) }),
    fraction: fc.option(
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 9 }).map((digits) => `.${digits.join('')}`),
      { nil: '' },
    ),
    separator: fc.constantFrom('T', 't'),
    zone: fc.oneof(fc.constantFrom('', 'Z', 'z'), offset),
  })
  .map(({ year, month, day, hour, minute, second, fraction, separator, zone }) => {
    const leap = second === 60;
    const date = `${pad(year, 4)}-${pad(month)}-${pad(((day - 1) % daysIn(year, month)) + 1)}`;
    const time = leap ? `23:59:60${fraction}` : `${pad(hour)}:${pad(minute)}:${pad(second)}${fraction}`;
    return `${date}${separator}${time}${leap && zone !== '' ? 'Z' : zone}`;
  });

/** How an integral value may be written: 1000, 1000.0, 1e3, 1E+3. */
function integerText(n: number, form: number): unknown {
  if (form === 0) return n;
  if (form === 1) return JSON.rawJSON(`${n}.0`);
  const [, digits, zeros] = /^(-?\d+?)(0*)$/.exec(String(n))!;
  return JSON.rawJSON(`${digits}${['e', 'E', 'e+'][form - 2]}${zeros!.length}`);
}

/** Integers of any safe size and sign, in every JSON spelling of an integral number. */
export const anyInteger = fc
  .tuple(fc.oneof(fc.integer(), fc.maxSafeInteger()), fc.integer({ min: 0, max: 4 }))
  .map(([n, form]) => integerText(n, form));

/** Finite doubles (-0, subnormals and the largest included), as JavaScript or in exponent form. */
export const anyDouble = fc
  .tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean())
  .map(([x, exponent]) => (exponent ? JSON.rawJSON(x.toExponential()) : x));

/**
 * Numbers beyond a double: long integers, long fractions and exponents far
 * past what a double holds. JSON sets no bound; Postgres' numeric holds 131072
 * digits before the decimal point and 16383 after, and the rare large exponent
 * here crosses that line.
 */
const bigNumber = fc
  .record({
    negative: fc.boolean(),
    whole: fc.bigInt({ min: 0n, max: 10n ** 40n }),
    fraction: fc.option(
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 30 }).map((digits) => `.${digits.join('')}`),
      { nil: '' },
    ),
    exponent: fc.option(
      fc
        .oneof(
          { weight: 20, arbitrary: fc.integer({ min: -400, max: 400 }) },
          { weight: 1, arbitrary: fc.integer({ min: -20_000, max: 140_000 }) },
        )
        .map((e) => `e${e}`),
      { nil: '' },
    ),
  })
  .map(({ negative, whole, fraction, exponent }) => JSON.rawJSON(`${negative ? '-' : ''}${whole}${fraction}${exponent}`));

/** Any JSON value, nested a few levels, with every kind of number and string. */
export const anyJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: unknown[]; object: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    fc.constant(null),
    fc.boolean(),
    anyInteger,
    anyDouble,
    bigNumber,
    anyString,
    tie('array'),
    tie('object'),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.array(fc.tuple(anyString, tie('value')), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
})).value;
