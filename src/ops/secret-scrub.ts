// The API key never leaves the process. A server may echo the request back
// (proxies and debug pages quote the Authorization header), so every text that
// comes from the network has the key taken out before anything reads it: before
// it is parsed, logged, quoted in an error or stored. Whatever field or content
// type carries it, the text is scrubbed as a whole, in every spelling that JSON
// (or a URL) can decode back to the key, so no parsed value can hold it either.

/** What a secret reads as once taken out: a field that held exactly one reads as this. */
export const REDACTED = '[redacted]';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A hex digit in either case: `\u00aB` and `%2f` decode like `\u00AB` and `%2F`. */
const anyCase = (hex: string) =>
  [...hex].map((digit) => (/[a-f]/i.test(digit) ? `[${digit.toLowerCase()}${digit.toUpperCase()}]` : digit)).join('');

/** JSON's two-character escapes, besides `\uXXXX`: the character after the backslash. */
const SHORT_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't' };

/**
 * Every way a text may spell one character of the key: as itself; as a JSON
 * escape (`\u0061`, or `\/` and the like), behind any number of backslashes,
 * since a JSON document quoted inside another doubles them; or URL-encoded
 * byte by byte. A character outside the Basic Multilingual Plane is escaped by
 * JSON as its two UTF-16 halves.
 */
function characterSpellings(character: string): string {
  const units = Array.from({ length: character.length }, (_, i) => character.charCodeAt(i));
  const unicode = units.map((unit) => `\\\\+u${anyCase(unit.toString(16).padStart(4, '0'))}`).join('');
  const bytes = [...Buffer.from(character, 'utf8')].map((byte) => `%${anyCase(byte.toString(16).padStart(2, '0'))}`).join('');
  const short = SHORT_ESCAPES[character];
  // The character itself last: of a key ending in "\\", written `\\\\`, the escape must take both backslashes.
  const forms = [unicode, bytes, ...(short === undefined ? [] : [`\\\\+${escapeRegExp(short)}`]), escapeRegExp(character)];
  return `(?:${forms.join('|')})`;
}

/** One pattern for the key in any mix of its characters' spellings. */
function secretPattern(secret: string): RegExp {
  return new RegExp([...secret].map(characterSpellings).join(''), 'g');
}

/** Replaces the key in a text from the network. */
export function secretScrubber(secret: string): (text: string) => string {
  const known = secretPattern(secret);
  return (text) => text.replace(known, REDACTED);
}
