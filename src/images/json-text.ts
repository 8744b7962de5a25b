// JSON as Gcore sent it. JSON.parse turns every number into a double, so an
// integer beyond 2^53 loses digits and 1e400 becomes Infinity (null once
// stringified). Numbers a double cannot hold exactly are kept as their source
// text (JSON.rawJSON, Node 22+), which JSON.stringify writes back unchanged and
// Postgres reads into jsonb exactly.

declare global {
  interface JSON {
    rawJSON(text: string): RawJson;
    isRawJSON(value: unknown): value is RawJson;
  }
}

/** A number kept as the text it was sent as. */
export interface RawJson {
  readonly rawJSON: string;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** A decimal literal as sign, significant digits and exponent, so equal values compare equal (1e3 and 1000 alike). */
export function decimalValue(text: string): string {
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = DECIMAL.exec(text) ?? [];
  let digits = `${whole}${fraction}`.replace(/^0+/, '');
  let power = Number(exponent) - fraction.length;
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    power++;
  }
  return digits === '' ? '0' : `${sign}${digits}e${power}`;
}

/** Whether the double `value` is exactly the decimal written as `source`. */
function isExact(source: string, value: number): boolean {
  return source === String(value) || (Number.isFinite(value) && decimalValue(source) === decimalValue(String(value)));
}

/**
 * A number a double may differ from: 16 or more significant digits, or an
 * exponent of three digits. Any shorter decimal reads back as itself, so a text
 * without these parses exactly without the (several times slower) reviver.
 * Only number tokens are looked at: in JSON one follows `[`, `:`, `,` or
 * nothing (and whitespace), so a string's text (a UUID's `e039`, say, on every
 * page of images) never sends a page to the reviver; a string that happens to
 * look like one only costs the slower parse.
 */
const MAYBE_INEXACT = /(?:^|[:,[])\s*-?(?:(?:\d\.?){16}|\d+(?:\.\d+)?[eE][+-]?\d{3})/;

/**
 * A string token and, when it names a member, the colon after it; or a `"`
 * that opens no string, which only a text that is not JSON has. Outside strings
 * JSON has no `"`, so tokens are found by scanning from the start.
 */
const STRING_TOKEN = /("(?:[^"\\]|\\[\s\S])*")(\s*:)?|"/g;

/**
 * V8 (Node 24 and 26 at least) can decode a member name written with escapes
 * wrongly once it has parsed a similar name: "\"" or "\u0002" read back as "\\"
 * (nodejs/node#63785). So names with escapes are parsed on their own, as
 * strings, and stand in the text as placeholders no name of the text can equal.
 */
function escapedNames(text: string): { text: string; marker: string; names: string[] } {
  let marker = '\uE000';
  while (text.includes(marker)) marker += '\uE000';
  const names: string[] = [];
  const replaced = text.replace(STRING_TOKEN, (token, string?: string, colon?: string) => {
    if (string === undefined) throw new SyntaxError('unterminated string');
    if (colon === undefined || !string.includes('\\')) return token;
    names.push(JSON.parse(string) as string);
    return `"${marker}${names.length - 1}"${colon}`;
  });
  return { text: replaced, marker, names };
}

/** `value` with the placeholders of escapedNames named again; own properties, so __proto__ stays a name. */
function renamed(value: unknown, marker: string, names: string[]): unknown {
  if (Array.isArray(value)) return value.map((item) => renamed(item, marker, names));
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key.startsWith(marker) ? names[Number(key.slice(marker.length))]! : key,
      renamed(item, marker, names),
    ]),
  );
}

/**
 * Parses JSON, keeping numbers that a double would change as their source text; undefined when not JSON.
 * With `exactNumbers` false, numbers are doubles: for a reader of no number (the usage lists), which then
 * skips the reviver that costs about eight times the parse on a page of ids.
 */
export function parseJsonExactly(text: string, exactNumbers = true): unknown {
  try {
    const escaped = text.includes('\\') ? escapedNames(text) : { text, marker: '', names: [] };
    const value: unknown =
      !exactNumbers || !MAYBE_INEXACT.test(escaped.text)
        ? JSON.parse(escaped.text)
        : JSON.parse(escaped.text, (_key, value: unknown, context?: { source?: string }) =>
            typeof value === 'number' && context?.source !== undefined && !isExact(context.source, value)
              ? JSON.rawJSON(context.source)
              : value,
          );
    return escaped.names.length === 0 ? value : renamed(value, escaped.marker, escaped.names);
  } catch {
    return undefined;
  }
}
