// The first hour at a terminal: under a real pseudo-terminal (util-linux
// `script`), `sync --wait` prints readable lines, never JSON, never glued to
// its progress line, and a dead base URL is one line naming GCORE_BASE_URL;
// a scope is shown by its name; a fixed base URL is used at once by `start`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli } from './support/cli.js';
import { createTestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));

// Two images named by id, three found by the scope's listing.
const named: Triple[] = [1, 2].map((n) => ({ projectId: 4, regionId: 9, imageId: sampleImageId(n) }));
const listed: Triple[] = [3, 4, 5].map((n) => ({ projectId: 3, regionId: 9, imageId: sampleImageId(n) }));
const targetsYaml = `schedule: { every: 1h }
targets:
  - { project_id: 4, region_id: 9, image_ids: [${named.map((t) => t.imageId).join(', ')}] }
  - { name: prod-web, project_id: 3, region_id: 9, discover: {} }
`;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setUp() {
  const testEnv = await createTestEnv();
  cleanups.push(() => testEnv.cleanup());
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  for (const triple of [...named, ...listed]) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  cleanups.push(() => fake.stop());
  const sql = postgres(testEnv.databaseUrl, { max: 1, onnotice: () => {} });
  cleanups.push(() => sql.end());
  const env = { ...testEnv.env, TARGETS_FILE: await writeTargetsFile(targetsYaml) };
  // Nothing listens there: every request is refused.
  const deadUrl = `http://127.0.0.1:${await sparePort()}`;
  return { fake, sql, env, deadUrl };
}

/** Runs the CLI with a pseudo-terminal as its stdout and stderr, as a person at a terminal does; what the terminal received. */
function underTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { PATH: process.env.PATH!, ...env } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

const lines = (output: string) => output.split(/\r?\n/);
const jsonLines = (output: string) => lines(output).filter((line) => /\{"level":/.test(line));

describe('at a terminal', () => {
  it('a dead base URL is one line per cause per account naming GCORE_BASE_URL, and no JSON', async () => {
    const { env, deadUrl } = await setUp();
    const { code, output } = await underTerminal(['sync', '--wait'], { ...env, GCORE_BASE_URL: deadUrl });
    expect(code).not.toBe(0);
    expect(output).toContain('2/2 refreshed: 0 changed, 0 unchanged, 0 deleted, 2 failed; 1 scope listing');
    expect(jsonLines(output)).toEqual([]);
    expect(lines(output).filter((line) => line.includes('GCORE_BASE_URL'))).toEqual([
      expect.stringMatching(
        new RegExp(
          `ERROR.*: cannot reach the API at ${deadUrl} \\(connection failed: .*\\): check GCORE_BASE_URL and the network; \\d+ requests? failed this way`,
        ),
      ),
    ]);
  }, 120_000);

  it('with a working base URL prints no JSON and never glues a log line to the progress line; status names the scope', async () => {
    const { env, fake } = await setUp();
    const { code, output } = await underTerminal(['sync', '--wait'], { ...env, GCORE_BASE_URL: fake.url });
    expect(code).toBe(0);
    expect(jsonLines(output)).toEqual([]);
    expect(output).toMatch(/\] .*INFO.*: run finished /);
    expect(output).toMatch(/run \d+: queued 2 refreshes and 1 scope listing \(prod-web\)\r?\n/);
    // What the terminal shows on one line runs from a line break or a carriage return to the next.
    expect(output.split(/[\r\n]/).filter((shown) => /refreshed, .*ETA .*(\[\d\d:\d\d|\{)/.test(shown))).toEqual([]);

    const status = await runCli(['status'], { ...env, GCORE_BASE_URL: fake.url });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/\n {2}prod-web {2}3 targets; last listing complete \(started \S+\): 3 listed\b/);
    expect(status.stdout).not.toMatch(/scope-[0-9a-f]{16}/);
  }, 120_000);
});

describe('a fixed mistake', () => {
  it('start with a dead base URL fails its images; started again with the right one on an hourly schedule, it stores every image at once', async () => {
    const { env, fake, sql, deadUrl } = await setUp();
    const broken = startCli(['start'], { ...env, GCORE_BASE_URL: deadUrl });
    await waitFor(
      'the failures of the first start',
      async () => {
        const [row] = await sql<{ failed: number; incomplete: number }[]>`
          SELECT (SELECT count(*)::int FROM targets WHERE explicit AND last_outcome = 'failed') AS failed,
            (SELECT count(*)::int FROM listings WHERE status = 'incomplete') AS incomplete`;
        return row!.failed === named.length && row!.incomplete === 1;
      },
      60_000,
    );
    expect((await broken.stop()).code).toBe(0);
    expect(await sql`SELECT count(*)::int AS n FROM images`).toEqual([{ n: 0 }]);
    const failing = await runCli(['status'], env);
    expect(failing.stdout).toContain('to retry now: `gcore-image-sync sync --wait`');

    const fixed = startCli(['start'], { ...env, GCORE_BASE_URL: fake.url });
    cleanups.push(() => fixed.stop());
    // Within a minute, while its hourly scheduler would tick an hour from now.
    await waitFor('every image stored', async () => (await sql`SELECT 1 FROM images`).length === named.length + listed.length, 60_000);
    await waitFor('the line that says why', () => fixed.stdout().includes('trying again now'), 60_000);
    const stopped = await fixed.stop();
    expect(stopped.code).toBe(0);
    const said = stopped.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(said.filter((line) => String(line.msg).startsWith('schedule:'))).toEqual([
      expect.objectContaining({ schedule: 'every 1h', due_now: false, last_failed: true }),
    ]);
  }, 180_000);
});
