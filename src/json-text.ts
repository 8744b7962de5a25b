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
 * Where a double may differ from the text: 16 or more significant digits, or
 * an exponent of three digits. Any shorter decimal reads back as itself, so a
 * text without these parses exactly without the (several times slower) reviver.
 */
const MAYBE_INEXACT = /(?:\d\.?){16}|[eE][+-]?\d{3}/;

/** Parses JSON, keeping numbers that a double would change as their source text; undefined when not JSON. */
export function parseJsonExactly(text: string): unknown {
  try {
    if (!MAYBE_INEXACT.test(text)) return JSON.parse(text);
    return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
      typeof value === 'number' && context?.source !== undefined && !isExact(context.source, value) ? JSON.rawJSON(context.source) : value,
    );
  } catch {
    return undefined;
  }
}
