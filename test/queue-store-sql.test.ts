// What the queue store keeps beside BullMQ's tables on Postgres (REDIS_URL
// unset; migration 0014): the request timeline (take_api_slot), whose slots
// follow each other one width apart, which a pause pushes back and which
// refuses a value that would stop it or move it back; and the rejected-key
// records, which must read back as the objects written (`status` prints their
// fields and orders them by `at`).
import { expect, it } from 'vitest';
import type { Sql } from '../src/db.js';
import { deleteKeyRejection, liveKeyRejections, putKeyRejection } from '../src/sql/keyRejections.js';
import { takeApiSlot } from '../src/sql/takeApiSlot.js';
import { withDatabase } from './support/env.js';

let sql: Sql;

withDatabase((connection) => (sql = connection));

it('hands out slots one width apart, and a pause holds them all back', async () => {
  // Ten takes of 10 s slots: however long each took, the last waits about 90 s from when it was taken.
  const waits: number[] = [];
  for (let n = 0; n < 10; n++) waits.push(await takeApiSlot(sql, 'a', 10_000, 0));
  expect(waits[0]).toBe(0);
  expect(waits[9]).toBeGreaterThan(89_000);
  expect(waits[9]).toBeLessThanOrEqual(90_000);
  await takeApiSlot(sql, 'b', 0, 60_000);
  const ahead = await takeApiSlot(sql, 'b', 0, 0);
  expect(ahead).toBeGreaterThan(59_000);
  expect(await takeApiSlot(sql, 'b', 1000, 0)).toBeGreaterThan(59_000);
});

it('refuses a width or pause that is not a finite, non-negative number', async () => {
  for (const [slot, pause] of [
    [Number.NaN, 0],
    [0, Number.POSITIVE_INFINITY],
    [-5, 0],
    [0, -1],
  ]) {
    await expect(takeApiSlot(sql, 'c', slot!, pause!), `${slot}, ${pause}`).rejects.toThrow(/must be finite and not negative/);
  }
  expect(await takeApiSlot(sql, 'c', 0, 0)).toBe(0);
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
