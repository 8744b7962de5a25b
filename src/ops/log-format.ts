// How log lines look: JSON for machines, one readable line per event for a
// person at a terminal. Pure rules, no dependencies: the config check and the
// logger both read them, and loading them costs nothing at start-up.

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * LOG_FORMAT when given; else LOG_PRETTY=1 (the setting of older releases)
 * asks for pretty; else pretty on a terminal, JSON when output goes to a
 * file, a pipe or a log collector. An unknown LOG_FORMAT is reported by
 * loadConfig; until then the terminal decides.
 */
export function logFormat(env: Record<string, string | undefined>, isTTY: boolean): LogFormat {
  const given = env.LOG_FORMAT?.trim();
  if (given === 'pretty' || given === 'json') return given;
  if (env.LOG_PRETTY === '1') return 'pretty';
  return isTTY ? 'pretty' : 'json';
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

/**
 * Fields every line carries that tell processes apart in a log store, not
 * events apart on a screen; and a scope's key, which its name stands for.
 */
const HIDDEN = new Set(['level', 'time', 'msg', 'service', 'hostname', 'pid', 'scope_key']);

// C0 and C1 controls (ESC starts a terminal escape), DEL, the line and paragraph
// separators and the bidirectional overrides, which reorder what a terminal shows.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Text from the API (names, error bodies) as inert characters: a control character is shown as its \u escape. */
export function inert(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The first character of `text` a terminal would act on rather than show (see UNSAFE), or undefined. */
export function firstUnsafe(text: string): string | undefined {
  return new RegExp(UNSAFE.source).exec(text)?.[0];
}

/** A field's value: bare when it is one plain word, else quoted JSON (every control character escaped). */
function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? inert(value) : inert(JSON.stringify(value));
  return inert(JSON.stringify(value) ?? String(value));
}

function clock(time: number): string {
  const d = new Date(time);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/**
 * One of pino's JSON lines as one line for a person:
 * `[12:00:00.000] WARN: message key=value key="two words"`.
 */
export function prettyLine(json: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${inert(json.trimEnd())}\n`;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const name = LEVELS[level] ?? `LEVEL${level}`;
  const shown = color ? `\u001b[${COLORS[level] ?? '0'}m${name}\u001b[39m` : name;
  const time = typeof entry.time === 'number' ? entry.time : Date.now();
  const fields = Object.entries(entry)
    .filter(([key]) => !HIDDEN.has(key))
    .map(([key, value]) => ` ${inert(key)}=${fieldValue(value)}`)
    .join('');
  const message = typeof entry.msg === 'string' ? ` ${inert(entry.msg)}` : '';
  return `[${clock(time)}] ${shown}:${message}${fields}\n`;
}
