// API dates: ISO 8601 / RFC 3339 date-times, with or without a fraction and a
// zone. Parsed by hand rather than by Date, which rolls impossible dates over
// (Feb 30 becomes Mar 2) and cannot print years outside 0000-9999 as ISO text.

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

const isLeap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const daysIn = (year: number, month: number) => (month === 2 && isLeap(year) ? 29 : DAYS[month - 1]!);

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * Canonical UTC form of an API date, or null when it is not a real calendar
 * date-time: a missing zone means UTC (the API omits it), the fraction is kept
 * to the digit without trailing zeros, so equal instants compare equal. A
 * leap second (:60) becomes the next minute, as Postgres reads it.
 */
export function normalizeTimestamp(text: string): string | null {
  const match = TIMESTAMP.exec(text.trim());
  if (!match) return null;
  const [, y, mo, d, h, mi, s, fraction = '', zone = 'Z'] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 60) return null;
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const [, sign, oh, om = '00'] = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    if (Number(oh) > 23 || Number(om) > 59) return null;
    offsetMinutes = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  }
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute - offsetMinutes, second);
  const digits = fraction.replace(/0+$/, '');
  const utcYear = utc.getUTCFullYear();
  // An offset can carry year 0000 into year -1 and 9999 into 10000.
  const date = `${utcYear < 0 ? '-' : ''}${pad(Math.abs(utcYear), 4)}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())}`;
  const time = `${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}`;
  return `${date}T${time}${digits ? `.${digits}` : ''}Z`;
}

/**
 * A canonical date as Postgres reads it into timestamptz: ISO year 0000 is
 * 1 BC and -0001 is 2 BC, which Postgres only accepts written so. Postgres keeps microseconds;
 * the full fraction stays in the image's history and raw document.
 */
export function postgresTimestamp(canonical: string): string {
  const [, year, rest] = /^(-?\d+)(-.*)Z$/.exec(canonical)!;
  const value = Number(year);
  return value > 0 ? canonical : `${pad(1 - value, 4)}${rest}+00 BC`;
}

/** A canonical date (normalizeTimestamp) as microseconds since the epoch, for ordering instants the API names. */
export function epochMicros(canonical: string): bigint {
  const [, whole, fraction = ''] = /^(.*?)(?:\.(\d+))?Z$/.exec(canonical)!;
  return BigInt(Date.parse(`${whole}Z`)) * 1000n + BigInt(fraction.slice(0, 6).padEnd(6, '0'));
}

/** Microseconds since the epoch as an ISO date-time with all six digits of the fraction. */
export function isoMicros(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const rest = micros - ms * 1000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 23)}${String(rest).padStart(3, '0')}Z`;
}
