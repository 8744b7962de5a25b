// Postgres text and jsonb cannot hold a NUL character or a lone UTF-16
// surrogate, and refuse the whole statement when one arrives. JSON allows both
// (as \u0000 and \ud800), so an answer may carry them. They are replaced by
// U+FFFD wherever the image is stored (columns, tags, history, raw), and the
// replacement is reported so that nothing changes in silence.

/** Whether Postgres can store this string as text. */
export function isStorable(text: string): boolean {
  return text.isWellFormed() && !text.includes('\0');
}

/** The string with each NUL and lone surrogate replaced by U+FFFD. */
export function storableString(text: string): string {
  return isStorable(text) ? text : text.toWellFormed().replaceAll('\0', '\uFFFD');
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
  // Object.fromEntries defines own properties, so keys such as __proto__ stay data.
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => {
      const childPath = path ? `${path}.${key}` : key;
      if (!isStorable(key)) replaced.push(`${childPath} (key)`);
      return [storableString(key), storable(item, childPath, replaced)];
    }),
  );
}
