// The audit-log cursor's rules (src/audit-log/audit-cursor.ts), as a hostile or careless log would test them.
import { describe, expect, it } from 'vitest';
import { epochMicros } from '../src/gcore/api-date.js';
import {
  afterPage,
  aheadOf,
  describeAhead,
  INCOMPLETE_MS,
  incompleteRange,
  LOOK_AHEAD_MS,
  lookAheadDue,
  OVERLAP_MS,
  pageRequest,
  repeatsPrevious,
  rereadIncomplete,
  type PageSeen,
} from '../src/audit-log/audit-cursor.js';

const at = (iso: string) => epochMicros(iso);
const BOUND = at('2026-12-06T02:00:00Z');
const REREAD_FROM = '2026-12-06T01:50:00.000000Z';
const page = (instants: string[], more: Partial<PageSeen> = {}): PageSeen => ({
  instants: instants.map(at),
  size: instants.length,
  full: false,
  repeated: false,
  ...more,
});

describe('the audit-log cursor', () => {
  it('asks for the window from the cursor up to the database clock', () => {
    expect(pageRequest({ from: '2026-12-06T01:00:00.000000Z', offset: 1000 }, BOUND)).toEqual({
      from: '2026-12-06T01:00:00.000000Z',
      offset: 1000,
      to: '2026-12-06T02:00:00.000000Z',
    });
  });

  it('brings a cursor left ahead of the database clock back to an overlap before it', () => {
    expect(pageRequest({ from: '2026-12-06T03:00:00.000000Z', offset: 7 }, BOUND)).toEqual({
      from: REREAD_FROM,
      offset: 0,
      to: '2026-12-06T02:00:00.000000Z',
    });
  });

  it('ends the poll at a page shorter than asked, and starts the next an overlap before the bound', () => {
    const request = pageRequest({ from: '2026-12-06T01:00:00Z', offset: 0 }, BOUND);
    expect(afterPage(request, page(['2026-12-06T01:30:00Z', '2026-12-06T01:59:59.999999Z']), BOUND)).toEqual({
      next: { from: REREAD_FROM, offset: 0 },
      ended: true,
      passedOver: false,
    });
    expect(OVERLAP_MS).toBe(600_000);
  });

  it('never moves past the database clock, whatever a full page holds: entries from 2099 and 30 minutes ahead end the window', () => {
    const request = pageRequest({ from: '2026-12-06T01:00:00Z', offset: 0 }, BOUND);
    const instants = [...Array<string>(998).fill('2026-12-06T01:10:00Z'), '2026-12-06T02:30:00Z', '2099-01-01T00:00:00Z'];
    expect(afterPage(request, page(instants, { full: true }), BOUND)).toEqual({
      next: { from: REREAD_FROM, offset: 0 },
      ended: true,
      passedOver: false,
    });
  });

  it('moves a full page to its last instant, to be read again from its start', () => {
    const request = pageRequest({ from: '2026-12-06T01:00:00Z', offset: 0 }, BOUND);
    const instants = [...Array<string>(999).fill('2026-12-06T01:10:00Z'), '2026-12-06T01:20:00.000001Z'];
    expect(afterPage(request, page(instants, { full: true }), BOUND)).toEqual({
      next: { from: '2026-12-06T01:20:00.000001Z', offset: 0 },
      ended: false,
      passedOver: false,
    });
  });

  it('counts through an instant that holds more than a page, unreadable entries included', () => {
    const request = pageRequest({ from: '2026-12-06T01:10:00.000000Z', offset: 1000 }, BOUND);
    const seen = { ...page(Array<string>(990).fill('2026-12-06T01:10:00Z'), { full: true }), size: 1000 };
    expect(afterPage(request, seen, BOUND)).toEqual({
      next: { from: '2026-12-06T01:10:00.000000Z', offset: 2000 },
      ended: false,
      passedOver: false,
    });
  });

  it('passes over the rest of a crowded instant when the server repeats its page instead of honouring offset', () => {
    const request = pageRequest({ from: '2026-12-06T01:10:00.000000Z', offset: 1000 }, BOUND);
    const seen = page(Array<string>(1000).fill('2026-12-06T01:10:00Z'), { full: true, repeated: true });
    expect(afterPage(request, seen, BOUND)).toEqual({
      next: { from: '2026-12-06T01:10:00.000001Z', offset: 0 },
      ended: false,
      passedOver: true,
    });
  });

  it('begins the next window at the oldest incomplete entry kept, from the start of its instant, when it is older than the overlap', () => {
    const next = { from: REREAD_FROM, offset: 0 };
    expect(rereadIncomplete(next, at('2026-12-06T01:20:00.000001Z'))).toEqual({ from: '2026-12-06T01:20:00.000001Z', offset: 0 });
    // Within the overlap, or none: the overlap reads it again anyway.
    expect(rereadIncomplete(next, at(REREAD_FROM))).toBe(next);
    expect(rereadIncomplete(next, at('2026-12-06T01:55:00Z'))).toBe(next);
    expect(rereadIncomplete(next, null)).toBe(next);
  });

  it('keeps incomplete entries for INCOMPLETE_MS after their time, and gives each up at the one window end that passes it', () => {
    expect(INCOMPLETE_MS).toBe(3_600_000);
    // The first window end gives up every older one (the first poll reads a day back).
    expect(incompleteRange(BOUND, null)).toEqual({ keepFrom: '2026-12-06T01:00:00.000000Z', giveUpFrom: null });
    // A minute later: the minute that passed the bound since.
    const previous = at('2026-12-06T01:59:00Z');
    expect(incompleteRange(BOUND, previous)).toEqual({
      keepFrom: '2026-12-06T01:00:00.000000Z',
      giveUpFrom: '2026-12-06T00:59:00.000000Z',
    });
    // Consecutive window ends give up adjoining ranges: none twice, none missed.
    const later = at('2026-12-06T02:01:00Z');
    expect(incompleteRange(later, BOUND).giveUpFrom).toBe(incompleteRange(BOUND, previous).keepFrom);
    // A database clock moved back gives up nothing.
    expect(incompleteRange(previous, BOUND)).toEqual({
      keepFrom: '2026-12-06T00:59:00.000000Z',
      giveUpFrom: '2026-12-06T00:59:00.000000Z',
    });
  });

  it('tells a repeated page by its ids, so an overlap read again (nothing new in it) is no repeat', () => {
    const ids = ['1', '2', '3'];
    expect(repeatsPrevious(ids, ['1', '2', '3'], 1000)).toBe(true);
    expect(repeatsPrevious(ids, ['4', '5', '6'], 1000)).toBe(false);
    expect(repeatsPrevious(ids, ['1', '2', '3'], 0)).toBe(false);
    expect(repeatsPrevious(undefined, ['1', '2', '3'], 1000)).toBe(false);
    expect(repeatsPrevious([], [], 1000)).toBe(false);
  });

  it('looks ahead of the clock at the first poll and then every LOOK_AHEAD_MS', () => {
    expect(lookAheadDue(null, BOUND)).toBe(true);
    const step = BigInt(LOOK_AHEAD_MS) * 1000n;
    expect(lookAheadDue(BOUND - step + 1n, BOUND)).toBe(false);
    expect(lookAheadDue(BOUND - step, BOUND)).toBe(true);
  });

  it('finds the furthest entry ahead, and trusts a count no lower than what came back', () => {
    expect(aheadOf([at('2099-01-01T00:00:00Z'), at('2026-12-06T02:30:00Z')], 2, BOUND)).toEqual({
      count: 2,
      furthest: at('2099-01-01T00:00:00Z'),
    });
    expect(aheadOf([at('2026-12-06T02:30:00Z')], 0, BOUND)).toEqual({ count: 1, furthest: at('2026-12-06T02:30:00Z') });
    expect(aheadOf([], 0, BOUND)).toEqual({ count: 0, furthest: null });
  });

  it('says how far ahead the furthest entry is, and nothing once its time has come', () => {
    const now = new Date('2026-12-06T02:00:00Z');
    const lookedAt = new Date('2026-12-06T01:59:00Z');
    expect(describeAhead({ count: 2, furthest: new Date('2026-12-06T02:30:00.5Z'), lookedAt }, now)).toBe(
      "holds 2 entries dated ahead of the database's clock (at the look of 2026-12-06T01:59:00.000Z), the furthest at " +
        '2026-12-06T02:30:00.500Z, 30m1s ahead: stored and acted on, but the cursor does not follow them; they are read in order ' +
        'once their time comes (a Gcore clock running fast, or a forged entry)',
    );
    expect(describeAhead({ count: 1, furthest: new Date('2099-01-01T00:00:00Z'), lookedAt }, now)).toMatch(
      /^holds 1 entry dated ahead .* the furthest at 2099-01-01T00:00:00.000Z, 26323d22h ahead: /,
    );
    expect(describeAhead({ count: 1, furthest: now, lookedAt }, now)).toBeNull();
    expect(describeAhead({ count: 0, furthest: null, lookedAt }, now)).toBeNull();
  });
});
