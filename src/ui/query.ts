// A page's query string read into typed values. A value that is not what the
// page takes is refused with the parameter's name and what it must be (a 400
// page), never quietly ignored or passed on to SQL as given.
import { UiInputError } from './page-errors.js';

const MAX_TEXT = 500;
const PG_INT_MAX = 2_147_483_647;

export class QueryReader {
  constructor(private readonly params: URLSearchParams) {}

  /** A value given at most once and not blank; undefined when absent or blank. */
  text(name: string): string | undefined {
    const all = this.params.getAll(name);
    if (all.length > 1) throw new UiInputError(`${name}: given ${all.length} times; give it once`);
    const value = all[0]?.trim();
    if (value === undefined || value === '') return undefined;
    if (value.length > MAX_TEXT) throw new UiInputError(`${name}: at most ${MAX_TEXT} characters (got ${value.length})`);
    if (value.includes('\0') || /[\ud800-\udfff]/u.test(value))
      throw new UiInputError(`${name}: holds a character Postgres cannot compare (NUL or a lone surrogate)`);
    return value;
  }

  /** A whole number in [min, max]. */
  integer(name: string, min = 0, max = PG_INT_MAX): number | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const value = /^-?\d{1,10}$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max))
      throw new UiInputError(`${name}: must be a whole number from ${min} to ${max} (got "${text.slice(0, 40)}")`);
    return value;
  }

  /** One of the values listed. */
  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    if (!(values as readonly string[]).includes(text))
      throw new UiInputError(`${name}: must be one of ${values.join(', ')} (got "${text.slice(0, 40)}")`);
    return text as T;
  }

  /** A date (2026-12-06) or date-time with a zone (2026-12-06T18:00:00Z); a bare date is that day's start in UTC. */
  time(name: string): Date | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const match = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/.exec(text);
    const [year, month, day] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [0, 0, 0];
    // A real calendar day (not 2026-02-30, which Date would roll over) in years Postgres and Date both hold.
    const calendar = new Date(Date.UTC(year, month - 1, day));
    const parsed = match ? new Date(match[4] ? text : `${text}T00:00:00Z`) : undefined;
    if (!parsed || Number.isNaN(parsed.getTime()) || year < 1 || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day)
      throw new UiInputError(
        `${name}: must be a date (2026-12-06) or a date-time with a zone (2026-12-06T18:00:00Z) (got "${text.slice(0, 40)}")`,
      );
    return parsed;
  }

  /** A cursor a page wrote (base64url of a JSON array); checked by `valid`. */
  cursor<T>(name: string, valid: (value: unknown) => value is T): T | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    } catch {
      value = undefined;
    }
    if (!valid(value)) throw new UiInputError(`${name}: not a position this page wrote; start again from the first page`);
    return value;
  }
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
