// The API key never leaves the process. A server may echo the request back
// (proxies and debug pages quote the Authorization header), so every text that
// comes from the network has the key taken out before anything reads it: before
// it is parsed, logged, quoted in an error or stored.

export const REDACTED = '[redacted]';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One pattern for the forms in which a server may write the key back: as
 * sent, JSON-escaped, and URL-encoded with its %XX in either case.
 */
function pattern(secret: string): RegExp {
  const encoded = escapeRegExp(encodeURIComponent(secret)).replace(
    /%([0-9A-F])([0-9A-F])/g,
    (_, a: string, b: string) => `%[${a}${a.toLowerCase()}][${b}${b.toLowerCase()}]`,
  );
  const forms = [...new Set([secret, JSON.stringify(secret).slice(1, -1)].map(escapeRegExp)), encoded].sort((a, b) => b.length - a.length);
  return new RegExp(forms.join('|'), 'g');
}

/** Replaces the key in a text from the network. */
export function secretScrubber(secret: string): (text: string) => string {
  const known = pattern(secret);
  return (text) => text.replace(known, REDACTED);
}

/**
 * The key taken out of every string of a parsed document. Only needed when its
 * text had escapes (\u0074, or \/ for a key with a slash), which can spell the key in a form the text scrub misses.
 */
export function scrubDocument(value: unknown, secret: string): unknown {
  if (typeof value === 'string') return value.replaceAll(secret, REDACTED);
  if (Array.isArray(value)) return value.map((item) => scrubDocument(item, secret));
  if (value === null || typeof value !== 'object' || JSON.isRawJSON(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key.replaceAll(secret, REDACTED), scrubDocument(item, secret)]));
}
