// Living with the main job as an operator does: the README's own command
// started and signalled the way a supervisor would, restarts that catch up on
// what fell due, and a worker that says what it is doing.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { startCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const triples: Triple[] = [1, 2, 3].map((n) => ({ projectId: 4, regionId: 2, imageId: sampleImageId(n) }));

let env: TestEnv;
let fake: FakeGcore;
let settings: Record<string, string>;

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const file = await writeTargetsFile(`schedule: { every: 1h }
targets:
  - { project_id: 4, region_id: 2, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`);
  settings = { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
});

afterAll(async () => {
  await fake?.stop();
  await env?.cleanup();
});

/** The main job's command as the README's quick start gives it, without the install before it and the key set in the environment. */
function readmeMainCommand(): string[] {
  const line = readFileSync(`${ROOT}/README.md`, 'utf8')
    .split('\n')
    .find((l) => l.includes('# the main job'));
  const command = /^npm ci && GCORE_API_KEY='<your key>' (.+?)\s+#/.exec(line ?? '')?.[1];
  expect(command, 'the README names the main command').toBeDefined();
  return command!.split(' ');
}

/** Pids of live processes whose environment carries this test's queue prefix: what a stop must leave none of. */
function processesOfThisTest(): number[] {
  const marker = `QUEUE_PREFIX=${env.queuePrefix}`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Runs a command until its log says `until`, then sends `signal` to the pid it started, as a supervisor does. */
function runUntil(command: string[], until: string, signal: NodeJS.Signals, extra: Record<string, string> = {}) {
  const child = spawn(command[0]!, command.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH!, ...settings, ...extra } });
  // Not left running if the test times out before its signal.
  const orphaned = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', orphaned);
  child.once('exit', () => process.off('exit', orphaned));
  let stdout = '';
  let signalled = false;
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (!signalled && stdout.includes(until)) {
      signalled = true;
      child.kill(signal);
    }
  });
  child.stderr.resume();
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: Array<Record<string, unknown>> }>((resolve) =>
    child.on('close', (code, killedBy) =>
      resolve({
        code,
        signal: killedBy,
        lines: stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      }),
    ),
  );
}

const said = (lines: Array<Record<string, unknown>>, msg: string) => lines.filter((line) => line.msg === msg);

describe('the main job as an operator runs it', () => {
  it("the README's main command, signalled by pid with SIGTERM and with SIGINT, exits 0 and leaves no process", async () => {
    const command = readmeMainCommand();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const result = await runUntil(command, '"msg":"worker started"', signal);
      expect({ signal, code: result.code, killedBy: result.signal }).toEqual({ signal, code: 0, killedBy: null });
      expect(said(result.lines, 'stopping: finishing jobs in flight')).toMatchObject([{ signal }]);
      expect(said(result.lines, 'stopped')).toHaveLength(1);
      expect(processesOfThisTest()).toEqual([]);
    }
  });

  it('a start refreshes what fell due while none ran, and nothing that is not due', async () => {
    // Whatever the starts above left undone is done now: nothing is due.
    const synced = startCli(['sync', '--wait'], settings);
    expect((await synced.exited).code).toBe(0);
    const quiet = await runUntil(['node', 'dist/src/cli.js', 'start'], '"msg":"worker started"', 'SIGTERM');
    expect(said(quiet.lines, 'schedule: nothing due before its next tick')).toMatchObject([{ schedule: 'every 1h', due_now: false }]);
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      expect(await sql`SELECT count(*)::int AS n FROM targets WHERE last_attempt_at IS NOT NULL`).toEqual([{ n: 3 }]);
      // Two hours without a process: every target's last refresh, and the last run, older than the hourly schedule.
      await sql`UPDATE targets SET last_attempt_at = last_attempt_at - interval '2 hours'`;
      await sql`UPDATE sync_runs SET started_at = started_at - interval '2 hours', finished_at = finished_at - interval '2 hours'`;
      const requests = fake.requestCount;
      const caughtUp = await runUntil(['node', 'dist/src/cli.js', 'start'], '"msg":"run finished"', 'SIGTERM');
      expect(caughtUp.code).toBe(0);
      expect(said(caughtUp.lines, 'schedule: work is due, ticking now')).toMatchObject([{ schedule: 'every 1h', due_now: true }]);
      expect(said(caughtUp.lines, 'run finished')).toMatchObject([{ planned: 3, unchanged: 3, failed: 0 }]);
      expect(fake.requestCount - requests).toBe(3);
      expect(await sql`SELECT count(*)::int AS n FROM targets WHERE last_attempt_at > now() - interval '1 minute'`).toEqual([{ n: 3 }]);
      // A scheduled run that started within the interval is doing (or did) the group's work: a restart
      // in the middle of a long run lets it go on rather than start it over, however old its targets.
      await sql`UPDATE targets SET last_attempt_at = last_attempt_at - interval '2 hours'`;
      const midRun = await runUntil(['node', 'dist/src/cli.js', 'start'], '"msg":"worker started"', 'SIGTERM');
      expect(said(midRun.lines, 'schedule: nothing due before its next tick')).toMatchObject([{ due_now: false }]);
      expect(await sql`SELECT count(*)::int AS n FROM sync_runs WHERE status = 'superseded'`).toEqual([{ n: 0 }]);
    } finally {
      await sql.end();
    }
  });

  it('while a run is open, a worker logs its progress at the set interval; the images themselves only at debug', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    fake.latencyMs = 700;
    const worker = startCli(['worker'], { ...settings, LOG_PROGRESS_SECONDS: '1', SYNC_CONCURRENCY: '1', SYNC_BATCH_SIZE: '1' });
    try {
      await waitFor('the worker', () => worker.stdout().includes('"msg":"worker started"'));
      const sync = startCli(['sync'], settings);
      expect((await sync.exited).code).toBe(0);
      await waitFor('the run to finish', () => worker.stdout().includes('"msg":"run finished"'), 30_000);
      const { code, stdout } = await worker.stop();
      expect(code).toBe(0);
      const lines = stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const progress = said(lines, 'run progress');
      expect(progress.length).toBeGreaterThan(0);
      for (const line of progress) {
        expect(line).toMatchObject({ kind: 'manual', schedule: null, planned: 3, failed: 0, per_second: expect.any(Number) });
        expect(line.done).toBeLessThanOrEqual(3);
      }
      expect(said(lines, 'run finished')).toMatchObject([{ kind: 'manual', planned: 3, unchanged: 3, failed: 0 }]);
      expect(said(lines, 'refresh')).toEqual([]);
      expect(await sql`SELECT count(*)::int AS n FROM sync_runs WHERE finished_at IS NULL`).toEqual([{ n: 0 }]);
    } finally {
      fake.latencyMs = 0;
      await worker.stop();
      await sql.end();
    }
  });
});
