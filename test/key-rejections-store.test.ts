// The rejected-key records on Postgres (REDIS_URL unset) must read back as the
// objects written: `status` prints their fields and orders them by `at`.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectPostgres, type Sql } from '../src/db.js';
import { deleteKeyRejection, liveKeyRejections, putKeyRejection } from '../src/sql/keyRejections.js';
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

it('stores each record as a JSON object and lists them oldest rejection first', async () => {
  const later = { at: '2026-01-02T00:00:00.000Z', worker: 'w2', hostname: 'h', pid: 2 };
  const earlier = { at: '2026-01-01T00:00:00.000Z', worker: 'w1', hostname: 'h', pid: 1 };
  await putKeyRejection(sql, 'h:2:w2', later, 30_000);
  await putKeyRejection(sql, 'h:1:w1', earlier, 30_000);
  expect(await liveKeyRejections(sql)).toEqual([earlier, later]);
  const [row] = await sql<{ kind: string }[]>`SELECT DISTINCT jsonb_typeof(rejection) AS kind FROM key_rejections`;
  expect(row!.kind).toBe('object');
  await deleteKeyRejection(sql, 'h:1:w1');
  expect(await liveKeyRejections(sql)).toEqual([later]);
});
