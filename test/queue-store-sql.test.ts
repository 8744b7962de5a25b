// What the queue store keeps beside BullMQ's tables on Postgres (REDIS_URL
// unset; migrations 0014 and 0020): the request timeline (take_api_slot), whose
// slots follow each other one width apart, which a pause pushes back and
// records with what the API asked, and which refuses a value that would stop
// it or move it back; and the rejected-key
// records, which must read back as the objects written (`status` prints their
// fields and orders them by `at`).
import { expect, it } from 'vitest';
import type { Sql } from '../src/db/db.js';
import { deleteKeyRejection, liveKeyRejections, putKeyRejection } from '../src/sql/keyRejections.js';
import { takeApiSlot } from '../src/sql/takeApiSlot.js';
import { withDatabase } from './support/env.js';
import { waitFor } from './support/throwaway.js';

let sql: Sql;

withDatabase((connection) => (sql = connection));

const take = async (key: string, slotMs: number, throughPause = false) => (await takeApiSlot(sql, key, { slotMs, throughPause })).waitMs;

it('hands out slots one width apart, and a pause holds them all back', async () => {
  // Ten takes of 10 s slots: however long each took, the last waits about 90 s from when it was taken.
  const waits: number[] = [];
  for (let n = 0; n < 10; n++) waits.push(await take('a', 10_000));
  expect(waits[0]).toBe(0);
  expect(waits[9]).toBeGreaterThan(89_000);
  expect(waits[9]).toBeLessThanOrEqual(90_000);
  await takeApiSlot(sql, 'b', { slotMs: 0, pauseMs: 60_000 });
  const ahead = await take('b', 0);
  expect(ahead).toBeGreaterThan(59_000);
  expect(await take('b', 1000, true)).toBeGreaterThan(59_000);
});

it('answers a pause in force with what the API asked, taking a slot behind it only through it', async () => {
  await takeApiSlot(sql, 'p', { slotMs: 0, pauseMs: 60_000, askedMs: Number.POSITIVE_INFINITY });
  const refused = await takeApiSlot(sql, 'p', { slotMs: 1000 });
  expect(refused.pause).toEqual({ remainingMs: expect.any(Number), askedMs: Number.POSITIVE_INFINITY });
  expect(refused.pause!.remainingMs).toBeGreaterThan(59_000);
  expect(refused.pause!.remainingMs).toBeLessThanOrEqual(60_000);
  // Refused takes took no slot: the next free one is still the pause's end, however many were refused.
  for (let n = 0; n < 5; n++) await takeApiSlot(sql, 'p', { slotMs: 1000 });
  const through = await takeApiSlot(sql, 'p', { slotMs: 1000, throughPause: true });
  expect(through.waitMs).toBeGreaterThan(59_000);
  expect(through.waitMs).toBeLessThanOrEqual(60_000);
  expect(through.pause?.askedMs).toBe(Number.POSITIVE_INFINITY);
  // A shorter pause does not replace the longer one in force; a longer one does.
  await takeApiSlot(sql, 'p', { slotMs: 0, pauseMs: 1000, askedMs: 1000 });
  expect((await takeApiSlot(sql, 'p', { slotMs: 0 })).pause?.askedMs).toBe(Number.POSITIVE_INFINITY);
  await takeApiSlot(sql, 'p', { slotMs: 0, pauseMs: 120_000, askedMs: 99_999_999_000 });
  expect((await takeApiSlot(sql, 'p', { slotMs: 0 })).pause).toEqual({ remainingMs: expect.any(Number), askedMs: 99_999_999_000 });
  // A pause that has ended is not answered, and a timeline never paused has none.
  await takeApiSlot(sql, 'q', { slotMs: 0, pauseMs: 1, askedMs: 5000 });
  await waitFor('the 1 ms pause to end', async () => (await takeApiSlot(sql, 'q', { slotMs: 0 })).pause === undefined);
  expect(await takeApiSlot(sql, 'q', { slotMs: 1000 })).toEqual({ waitMs: expect.any(Number), pause: undefined });
  expect(await takeApiSlot(sql, 'never', { slotMs: 0 })).toEqual({ waitMs: 0, pause: undefined });
});

it('refuses a width or pause that is not a finite, non-negative number, or an asked wait shorter than the pause', async () => {
  for (const [slotMs, pauseMs, askedMs] of [
    [Number.NaN, 0, 0],
    [0, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
    [-5, 0, 0],
    [0, -1, 0],
    [0, 1000, 10],
    [0, 1000, Number.NaN],
  ]) {
    await expect(takeApiSlot(sql, 'c', { slotMs: slotMs!, pauseMs, askedMs }), `${slotMs}, ${pauseMs}, ${askedMs}`).rejects.toThrow(
      /must be finite and not negative, and asked .* ms not less than the pause/,
    );
  }
  expect(await take('c', 0)).toBe(0);
});

it('stores each record as a JSON object and lists them oldest rejection first', async () => {
  const later = { account: 'default', at: '2026-01-02T00:00:00.000Z', worker: 'w2', hostname: 'h', pid: 2 };
  const earlier = { account: 'staging', at: '2026-01-01T00:00:00.000Z', worker: 'w1', hostname: 'h', pid: 1 };
  await putKeyRejection(sql, 'h:2:w2', later, 30_000);
  await putKeyRejection(sql, 'h:1:w1', earlier, 30_000);
  expect(await liveKeyRejections(sql)).toEqual([earlier, later]);
  const [row] = await sql<{ kind: string }[]>`SELECT DISTINCT jsonb_typeof(rejection) AS kind FROM key_rejections`;
  expect(row!.kind).toBe('object');
  await deleteKeyRejection(sql, 'h:1:w1');
  expect(await liveKeyRejections(sql)).toEqual([later]);
});
