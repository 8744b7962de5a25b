// The audit-log cursor, decided in one place: where a follower reads an
// account's log next, from what a page held and the database server's clock.
//
// A poll reads one window, from the cursor up to the database's clock when
// the poll began (the bound, sent as `to_timestamp`), oldest first, page by
// page. Within the window the cursor moves to the last instant a page held
// (re-read from its start, so an entry that joins that instant later is not
// skipped), or counts through an instant that holds more than a page. It
// never moves past the bound, whatever a page holds: an entry dated ahead of
// the database's clock is stored when it is seen, and read again in order
// once its time has come. When a poll has read its window to the end, the
// next one begins OVERLAP_MS before its bound: an entry that reaches the log
// late, or out of order, is still read. Entries are kept by id, so reading
// one again stores nothing new and queues nothing; one that comes back
// changed is stored again and its images refreshed again.
//
// An entry Gcore logs with is_complete false (not yet filled with all it
// should hold) may come back completed at any time, later than the overlap:
// so the next window begins no later than the oldest such entry of the
// account dated within INCOMPLETE_MS of the bound (rereadIncomplete). Past
// that it is given up: it stays stored as incomplete, is named once in the
// log (the window end at which it passed the bound names it, incompleteRange),
// and windows begin an overlap before their bound again.
//
// Entries ahead of the bound are looked for apart (lookAheadDue): one request
// at most every LOOK_AHEAD_MS, newest first, so that they are stored, acted on
// and shown in `status` and /readyz, without being returned to every poll.
import { epochMicros, isoMicros } from '../gcore/api-date.js';
import { formatDuration } from '../schedule/schedule.js';

/** Where an account's audit log is read next. */
export interface AuditCursor {
  /** ISO date-time with microseconds: the `from_timestamp` of the next request. */
  from: string;
  /** Entries of the instant `from` already counted past (only while more than a page share it). */
  offset: number;
}

/** How far before the end of the last window each poll begins: an entry that reaches the log up to this late is still read. */
export const OVERLAP_MS = 10 * 60_000;
/** How often the entries dated ahead of the database's clock are looked for (one request each time). */
export const LOOK_AHEAD_MS = 10 * 60_000;
/**
 * How long after its timestamp an entry stored incomplete is read again, waiting for Gcore to
 * complete it: an hour of re-reading costs one request per 1,000 entries of that hour, each poll.
 */
export const INCOMPLETE_MS = 60 * 60_000;

const MICROS_PER_MS = 1000n;

/** One page's request: the cursor, bounded by the database's clock when the poll began. */
export interface PageRequest extends AuditCursor {
  /** The `to_timestamp` of the request: the bound. */
  to: string;
}

/**
 * The request a page is read with. A cursor ahead of the bound (the
 * database's clock moved back, or an earlier release let the cursor run ahead
 * of it) is brought back to one overlap before the bound.
 */
export function pageRequest(cursor: AuditCursor, bound: bigint): PageRequest {
  const to = isoMicros(bound);
  if (epochMicros(cursor.from) > bound) return { from: isoMicros(bound - BigInt(OVERLAP_MS) * MICROS_PER_MS), offset: 0, to };
  return { ...cursor, to };
}

/** What a page held, as the cursor needs it. */
export interface PageSeen {
  /** The instants (microseconds since the epoch) of the entries that could be read, in the order answered. */
  instants: bigint[];
  /** How many entries the page held, readable or not: what an offset counts. */
  size: number;
  /** The page was as long as asked for: more may follow. */
  full: boolean;
  /** The page holds the very entries of the page before it, though asked for further on (repeatsPrevious). */
  repeated: boolean;
}

export interface CursorStep {
  next: AuditCursor;
  /** The window is read to its end: the poll is over, and the next begins an overlap before the bound. */
  ended: boolean;
  /** The rest of a crowded instant was passed over: the server does not honour offset. */
  passedOver: boolean;
}

/** Where the cursor goes after a page read with `request`, in a poll bounded by `bound`. */
export function afterPage(request: PageRequest, page: PageSeen, bound: bigint): CursorStep {
  const anchor = epochMicros(request.from);
  const within = page.instants.filter((t) => t <= bound);
  // An entry past the bound means the server answered past to_timestamp: everything in the window came before it (oldest first).
  if (!page.full || within.length < page.instants.length) {
    return { next: { from: isoMicros(bound - BigInt(OVERLAP_MS) * MICROS_PER_MS), offset: 0 }, ended: true, passedOver: false };
  }
  const last = within.reduce((max, t) => (t > max ? t : max), anchor);
  // Entries of the last instant are read again from its start: one that joins them later is not skipped.
  if (last > anchor) return { next: { from: isoMicros(last), offset: 0 }, ended: false, passedOver: false };
  // A full page of one instant that repeats the one before: counting on would go round in circles.
  if (page.repeated) return { next: { from: isoMicros(anchor + 1n), offset: 0 }, ended: false, passedOver: true };
  return { next: { from: request.from, offset: request.offset + page.size }, ended: false, passedOver: false };
}

/**
 * The incomplete entries the end of a window bounded by `bound` looks at: those dated from
 * `keepFrom` on are read again by the next window; those dated from `giveUpFrom` up to `keepFrom`
 * passed INCOMPLETE_MS since the last window ended (bounded by `previousBound`) and are given up now.
 * Null `giveUpFrom` (no window ended before): every earlier one is given up now.
 */
export interface IncompleteRange {
  keepFrom: string;
  giveUpFrom: string | null;
}

export function incompleteRange(bound: bigint, previousBound: bigint | null): IncompleteRange {
  const keepFrom = bound - BigInt(INCOMPLETE_MS) * MICROS_PER_MS;
  if (previousBound === null) return { keepFrom: isoMicros(keepFrom), giveUpFrom: null };
  const previousKeepFrom = previousBound - BigInt(INCOMPLETE_MS) * MICROS_PER_MS;
  // A clock moved back gives up nothing (an empty range), rather than the entries a later window kept.
  return { keepFrom: isoMicros(keepFrom), giveUpFrom: isoMicros(previousKeepFrom < keepFrom ? previousKeepFrom : keepFrom) };
}

/**
 * Where the next window begins once one has been read to its end: `next` (an overlap before its
 * bound), or earlier, at the oldest incomplete entry kept (incompleteRange), from the start of its
 * instant, so that the entry is read again.
 */
export function rereadIncomplete(next: AuditCursor, oldestIncomplete: bigint | null): AuditCursor {
  if (oldestIncomplete === null || oldestIncomplete >= epochMicros(next.from)) return next;
  return { from: isoMicros(oldestIncomplete), offset: 0 };
}

/** Whether a page asked for at `offset` > 0 holds exactly the entries (by id) of the page before it: the server ignored offset. */
export function repeatsPrevious(previousIds: readonly string[] | undefined, ids: readonly string[], offset: number): boolean {
  if (offset === 0 || previousIds === undefined || ids.length === 0 || ids.length !== previousIds.length) return false;
  return ids.every((id, n) => id === previousIds[n]);
}

/** Whether entries ahead of the database's clock are to be looked for now: never yet, or LOOK_AHEAD_MS since the last look. */
export function lookAheadDue(lookedAt: bigint | null, now: bigint): boolean {
  return lookedAt === null || now - lookedAt >= BigInt(LOOK_AHEAD_MS) * MICROS_PER_MS;
}

/** What a look ahead found: how many entries are dated past the bound, and the furthest one's instant (null when none). */
export interface Ahead {
  count: number;
  furthest: bigint | null;
}

/** The look ahead's answer: `count` is the server's count of entries past the bound (never fewer than it returned). */
export function aheadOf(instants: bigint[], count: number, bound: bigint): Ahead {
  const past = instants.filter((t) => t > bound);
  const furthest = past.reduce<bigint | null>((max, t) => (max === null || t > max ? t : max), null);
  return { count: Math.max(count, instants.length), furthest };
}

/**
 * How `status` and /readyz say that an account's log holds entries from the
 * future (null when it does not, or no longer: the furthest one's time has
 * come). `now` is the database's clock.
 */
export function describeAhead(ahead: { count: number; furthest: Date | null; lookedAt: Date | null }, now: Date): string | null {
  if (ahead.furthest === null || ahead.furthest <= now) return null;
  const by = formatDuration(Math.ceil((ahead.furthest.getTime() - now.getTime()) / 1000) * 1000);
  const entries = ahead.count === 1 ? '1 entry' : `${ahead.count} entries`;
  const seen = ahead.lookedAt ? ` (at the look of ${ahead.lookedAt.toISOString()})` : '';
  return (
    `holds ${entries} dated ahead of the database's clock${seen}, the furthest at ${ahead.furthest.toISOString()}, ${by} ahead: ` +
    'stored and acted on, but the cursor does not follow them; they are read in order once their time comes (a Gcore clock running fast, or a forged entry)'
  );
}
