// The request timeline on Postgres (take_api_slot): slots follow each other
// one width apart, a pause pushes the next one past it, and a value that would
// stop the timeline or move it back is refused.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectPostgres, type Sql } from '../src/db.js';
import { takeApiSlot } from '../src/sql/takeApiSlot.js';
import { createTestEnv, type TestEnv } from './support/env.js';

let env: TestEnv;
let sql: Sql;

beforeAll(async () => {
  env = await createTestEnv();
  sql = await connectPostgres(env.databaseUrl);
});

afterAll(async () => {
  await sql?.end();
  await env?.cleanup();
});

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
