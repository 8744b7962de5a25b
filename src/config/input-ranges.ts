// The ranges every number and time an operator gives us must fall in, checked
// where it enters (environment, targets file, flags) so that no value can
// overflow a Postgres column, a BullMQ option, a timer or a Date further in.

/** Largest Postgres `integer`: project and region ids are int4 columns. */
export const INT4_MAX = 2_147_483_647;

/**
 * Longest `every` interval: a yearly refresh, with a day to spare. Anything
 * near it is already no schedule in practice, and the bound keeps intervals
 * far inside the int4 interval_seconds column (99999999999d overflowed it).
 */
export const MAX_EVERY_MS = 366 * 86_400_000;

/** Times handed to Postgres: JS Dates beyond year 9999 print as "+010000-..." which Postgres refuses. */
const EARLIEST_TIME = Date.UTC(1970, 0, 1);
const LATEST_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A whole number written in decimal digits within [min, max], or undefined.
 * Signs, exponents, hex, fractions and blanks are refused rather than guessed
 * at: `Number()` would read "1e21", "0x10" and " " as numbers.
 */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  const trimmed = text.trim();
  const value = /^\d{1,16}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  return value >= min && value <= max ? value : undefined;
}

/** wholeNumber, or a problem naming `name` (a variable or flag) and what was given. */
export function readWholeNumber(name: string, text: string, min: number, max: number, problems: string[]): number | undefined {
  const value = wholeNumber(text, min, max);
  if (value === undefined) problems.push(`${name}: must be a whole number from ${min} to ${max} (got "${text}")`);
  return value;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO 8601 date or time (a date alone is midnight UTC), or null. Dates
 * that do not exist (2026-02-30), which `new Date` would roll over into
 * March, are refused.
 */
export function parseIsoTime(text: string): Date | null {
  const match = ISO_TIME.exec(text.trim());
  if (!match) return null;
  const [, year, month, day, hour = '0', minute = '0', second = '0'] = match;
  const calendar = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (calendar.getUTCMonth() !== Number(month) - 1 || calendar.getUTCDate() !== Number(day)) return null;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return null;
  const at = new Date(text.trim());
  return Number.isNaN(at.getTime()) ? null : at;
}

/** Why a time cannot be stored or compared in Postgres, or null when it can. */
export function timeProblem(at: Date): string | null {
  const ms = at.getTime();
  if (ms >= EARLIEST_TIME && ms <= LATEST_TIME) return null;
  return 'must fall between 1970-01-01 and 9999-12-31 (UTC)';
}
