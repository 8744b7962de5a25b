// What a run counts, through the built CLI against the real Postgres and queue
// store: a discovery scope's listing is counted in the summary `sync --wait`
// prints, the worker's "run finished" line, `status` and sync_runs alike
// (listed, created, changed, deleted, marked left), from the rows it stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, writeTargetsFile } from './support/pipeline.js';
import postgres from 'postgres';

let env: TestEnv;
let fake: FakeGcore;
let settings: Record<string, string>;
let sql: postgres.Sql;

const triple = (n: number): Triple => ({ projectId: 1, regionId: 7, imageId: sampleImageId(n) });

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (let n = 1; n <= 37; n++) fake.putImage(triple(n), sampleImage(triple(n)));
  await fake.start();
  const file = await writeTargetsFile(
    `${QUIET_SCHEDULE}\ntargets:\n  - project_id: 1\n    region_id: 7\n    discover: { visibility: [private], baremetal: false }\n`,
  );
  settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
  sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await fake?.stop();
  await env?.cleanup();
});

/** The run's frozen counts as sync_runs keeps them. */
async function storedRun(id: number) {
  const [row] = await sql`
    SELECT status, planned, discovered, listed::int AS listed, changed, created, unchanged, deleted, failed, marked_left, listings_failed,
      unattempted, listings_unfinished, error, finished_at IS NOT NULL AS closed
    FROM sync_runs WHERE id = ${id}`;
  return row;
}

/** The fields of the worker's "run finished" line (JSON on stdout). */
function runFinished(stdout: string): Record<string, unknown> {
  const lines = stdout
    .split('\n')
    .filter((line) => line.includes('"msg":"run finished"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('run counts', () => {
  it('a discovery sync that stores 37 images says 37 in its summary, its log line, status and sync_runs', async () => {
    const result = await runCli(['sync', '--wait'], settings);
    expect(result.code).toBe(0);
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      'run 1: 37/37 refreshed: 37 changed (37 created), 0 unchanged, 0 deleted, 0 failed; scope listings: 37 listed, 37 newly discovered, 0 marked left',
    );
    expect(await storedRun(1)).toEqual({
      status: 'finished',
      planned: 0,
      discovered: 37,
      listed: 37,
      changed: 37,
      created: 37,
      unchanged: 0,
      deleted: 0,
      failed: 0,
      marked_left: 0,
      listings_failed: 0,
      unattempted: 0,
      listings_unfinished: 0,
      error: null,
      closed: true,
    });
    expect(runFinished(result.stdout)).toMatchObject({
      run_id: 1,
      status: 'finished',
      planned: 0,
      discovered: 37,
      listed: 37,
      changed: 37,
      created: 37,
      unchanged: 0,
      deleted: 0,
      failed: 0,
      marked_left: 0,
    });
    const status = await runCli(['status'], settings);
    expect(status.stdout.split('\n').find((line) => line.startsWith('last run:'))).toMatch(
      /^last run: #1 finished \(manual\), started \S+, finished \S+: 0 planned, 37 changed \(37 created\), 0 unchanged, 0 deleted, 0 failed; scope listings: 37 listed, 37 newly discovered, 0 marked left$/,
    );
    const json = JSON.parse((await runCli(['status', '--json'], settings)).stdout);
    expect(json.last_run).toMatchObject({ status: 'finished', planned: 0, discovered: 37, listed: 37, changed: 37, created: 37 });
  }, 240_000);

  it('the next sync counts a new image, a deleted one and one that left the scope, each once', async () => {
    fake.putImage(triple(38), sampleImage(triple(38)));
    fake.deleteImage(triple(3));
    fake.updateImage(triple(5), { visibility: 'shared' });
    const result = await runCli(['sync', '--wait'], settings);
    expect(result.code).toBe(0);
    // 37 planned: 35 listed as they were, 3 deleted (confirmed by a GET's 404), 5 changed and out of the filter (a GET's 200);
    // the 38th is new to the scope: discovered, and its history created.
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      'run 2: 38/38 refreshed: 2 changed (1 created), 35 unchanged, 1 deleted, 0 failed; scope listings: 36 listed, 1 newly discovered, 1 marked left',
    );
    expect(await storedRun(2)).toMatchObject({
      status: 'finished',
      planned: 37,
      discovered: 1,
      listed: 36,
      changed: 2,
      created: 1,
      unchanged: 35,
      deleted: 1,
      failed: 0,
      marked_left: 1,
    });
    expect(runFinished(result.stdout)).toMatchObject({ run_id: 2, discovered: 1, listed: 36, created: 1, deleted: 1, marked_left: 1 });
    expect(await sql`SELECT change_type, count(*)::int AS n FROM image_changes GROUP BY 1 ORDER BY 1`).toEqual([
      { change_type: 'created', n: 38 },
      { change_type: 'deleted', n: 1 },
      { change_type: 'updated', n: 1 },
    ]);
  }, 240_000);
});
