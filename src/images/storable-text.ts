// Postgres text and jsonb cannot hold a NUL character or a lone UTF-16
// surrogate, and refuse the whole statement when one arrives. JSON allows both
// (as \u0000 and \ud800), so an answer may carry them. They are replaced by
// U+FFFD wherever the image is stored (columns, tags, history, raw), and the
// replacement is reported so that nothing changes in silence. Nor can jsonb
// hold a number beyond Postgres' numeric, which JSON allows too: such an answer
// cannot be stored at all (isStorableNumber).
import { decimalValue, type RawJson } from './json-text.js';

/** Whether Postgres can store this string as text. */
export function isStorable(text: string): boolean {
  return text.isWellFormed() && !text.includes('\0');
}

/** The string with each NUL and lone surrogate replaced by U+FFFD. */
export function storableString(text: string): string {
  return isStorable(text) ? text : text.toWellFormed().replaceAll('\0', '\uFFFD');
}

function byNameNullsFirst([a, x]: [string, unknown], [b, y]: [string, unknown]): number {
  if ((x === null) !== (y === null)) return x === null ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A JSON value whose strings (keys included) Postgres can store; `replaced`
 * collects the paths where something had to be replaced. Only the contents of
 * strings change, so the value keeps its type.
 */
export function storableJson<T>(value: T, path: string, replaced: string[]): T {
  return needsReplacing(value) ? (storable(value, path, replaced) as T) : value;
}

/** Whether any string (or key) in the value is one Postgres cannot store: the common answer, no, allocates nothing. */
function needsReplacing(value: unknown): boolean {
  if (typeof value === 'string') return !isStorable(value);
  if (Array.isArray(value)) return value.some(needsReplacing);
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return false;
  return Object.entries(value).some(([key, item]) => !isStorable(key) || needsReplacing(item));
}

function storable(value: unknown, path: string, replaced: string[]): unknown {
  if (typeof value === 'string') {
    if (isStorable(value)) return value;
    replaced.push(path);
    return storableString(value);
  }
  if (Array.isArray(value)) return value.map((item: unknown, n) => storable(item, `${path}[${n}]`, replaced));
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  const entries = Object.entries(value);
  // Names that differ only in what is replaced become one. The member kept is the one whose name sorts
  // last, a null member (the same as an absent one) losing to any other, so that the result, and so the
  // content hash, depends neither on the order the members came in nor on null members.
  if (entries.some(([key]) => !isStorable(key))) entries.sort(byNameNullsFirst);
  // Object.fromEntries defines own properties, so keys such as __proto__ stay data.
  return Object.fromEntries(
    entries.map(([key, item]) => {
      const childPath = path ? `${path}.${key}` : key;
      if (!isStorable(key)) replaced.push(`${childPath} (key)`);
      return [storableString(key), storable(item, childPath, replaced)];
    }),
  );
}

/**
 * What a parsed answer holds that needs care before it is stored, in one walk
 * that allocates nothing: text Postgres cannot store, and numbers kept as
 * their source text (which may be beyond numeric). Most answers hold neither.
 */
export function inspectJson(value: unknown, found = { unstorableText: false, exactNumbers: false }): typeof found {
  if (typeof value === 'string') {
    if (!isStorable(value)) found.unstorableText = true;
  } else if (Array.isArray(value)) {
    for (const item of value) inspectJson(item, found);
  } else if (value !== null && typeof value === 'object') {
    if (JSON.isRawJSON(value)) {
      found.exactNumbers = true;
    } else {
      for (const key of Object.keys(value)) {
        if (!isStorable(key)) found.unstorableText = true;
        inspectJson((value as Record<string, unknown>)[key], found);
      }
    }
  }
  return found;
}

/** Postgres' numeric, which jsonb numbers are, holds this many digits before the decimal point and after it. */
const NUMERIC_DIGITS = { before: 131_072, after: 16_383 };

/** Whether Postgres can store a number kept as its source text (json-text.ts); every double fits. */
function isStorableNumber(number: RawJson): boolean {
  const [, digits = '', exponent = '0'] = /^-?(\d+)e(-?\d+)$/.exec(decimalValue(number.rawJSON)) ?? [];
  return digits.length + Number(exponent) <= NUMERIC_DIGITS.before && -Number(exponent) <= NUMERIC_DIGITS.after;
}

/** The paths of the numbers in `value` that Postgres cannot store, with their text. */
export function unstorableNumbers(value: unknown, path: string, found: string[]): string[] {
  if (JSON.isRawJSON(value)) {
    if (!isStorableNumber(value)) found.push(`${path || '(top level)'}: ${value.rawJSON.slice(0, 40)}`);
  } else if (Array.isArray(value)) {
    value.forEach((item, n) => unstorableNumbers(item, `${path}[${n}]`, found));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) unstorableNumbers(item, path ? `${path}.${key}` : key, found);
  }
  return found;
}
