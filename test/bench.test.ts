// The benchmark harness at a small scale, so it cannot rot. Its timings are
// not asserted (speed is measured by `npm run bench`, not by tests); that it
// runs every scenario against real services and reports each one is. Without
// a Redis for the suite it runs with the queues on Postgres alone, and the
// rows that need Redis say so.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const BENCH = fileURLToPath(new URL('../dist/bench/main.js', import.meta.url));

describe('npm run bench', () => {
  // About 90 s alone on a quiet machine; minutes beside other files on busy cores.
  it('runs every scenario at a small scale and writes a row for each', { timeout: 600_000 }, async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'gis-bench-')), 'results.json');
    const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--quick', '--out', out], {
      env: { PATH: process.env.PATH!, DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl') },
      timeout: 590_000,
    });
    const results = JSON.parse(await readFile(out, 'utf8'));
    expect(results.quick).toBe(true);
    expect(results.rows.map((row: { scenario: string }) => row.scenario.replace(/\d[\d,.]*/g, 'N'))).toEqual([
      'baseline: hand-written pipeline, N images (second pass)',
      'steady state: N images, nothing changed, no latency, no limit, queues on Redis',
      'steady state: N images, nothing changed, no latency, no limit, queues on Postgres',
      'every image changed (new version + change rows), queues on Redis',
      'every image changed (new version + change rows), queues on Postgres',
      'API latency N ms, no limit',
      'limit N req/s, three worker processes, N images, queues on Redis',
      'limit N req/s, three worker processes, N images, queues on Postgres',
      'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: prod, queues on Redis',
      'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: staging, queues on Redis',
      'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: prod, queues on Postgres',
      'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: staging, queues on Postgres',
      'N triples: reconcile from cold / again with nothing changed, queues on Redis',
      'N triples: reconcile from cold / again with nothing changed, queues on Postgres',
      'N triples: Redis memory held by the schedule',
      'N triples: size of the queue schema "bullmq" held by the schedule',
      'worker RSS during a N refresh; across N refreshes',
      'images_as_of over N images x N versions',
      'discovery: first sync, N images in N region scopes, N req/s',
      'discovery: refresh with no change, N images in N region scopes, N req/s',
      'discovery: refresh confirming N deletions (N %), N images in N region scopes, N req/s',
      'discovery: worker RSS, two processes, through all three',
      'unchanged: first sync, N images in N region scopes of N one worker, no limit',
      'unchanged: refresh with no change, N images in N region scopes of N one worker, no limit, after a vacuum and a checkpoint',
      'usage: first sync, N images and N volumes in N region scopes, one worker, N req/s',
      'usage: refresh with no change (images and usage), N images and N volumes in N region scopes, one worker, N req/s',
      'usage: worker RSS through both',
      'audit log: N entries about N tracked images, ingested and refreshed, queues on Redis',
      'audit log: N entries about N tracked images, ingested and refreshed, queues on Postgres',
      'audit push: rename to attributed change row, N renames, one worker, hourly schedule, pushed (polls every N s), over N s',
      'audit push: rename to attributed change row, N renames, one worker, hourly schedule, polled every N s (no push), over N polls',
      'start-up: node -e N',
      'start-up: gcore-image-sync --help',
      `start-up: gcore-image-sync status (database running, queues on ${inject('redisUrl') ? 'Redis' : 'Postgres'})`,
      'start-up: idle worker RSS once started',
      'million: first sync, N images in N region scopes, one worker, N req/s',
      'million: refresh with no change, N images in N region scopes, one worker, N req/s',
      'million: refresh with no change, N images in N region scopes, one worker, no limit, after a vacuum and a checkpoint',
      'million: worker RSS through all three',
      'million: database size after the three syncs',
      'million: images_as_of over N images x N versions',
      'million: one hour of image_change_log over N images x N versions',
      'ui: seeding N images and one of N versions by SQL, VACUUM ANALYZE included',
      'ui: inventory: first page, by name',
      'ui: inventory: pages N to N by next, by name',
      'ui: inventory: a page from the middle of the alphabet (after "m")',
      'ui: inventory: first page, by last change',
      'ui: inventory: pages N to N by next, by last change',
      'ui: inventory: project=N',
      'ui: inventory: region=N',
      'ui: inventory: account=dev',
      'ui: inventory: kind=gpu_baremetal (N in N)',
      'ui: inventory: owned=own',
      'ui: inventory: owned=other',
      'ui: inventory: os=debian',
      'ui: inventory: tag=team=ml (N in N)',
      'ui: inventory: tag=cost-center=cc-N (N in N)',
      'ui: inventory: tag=env (key only)',
      'ui: inventory: q=ubuntu (common)',
      'ui: inventory: q=web (N in N; its first match N names in)',
      'ui: inventory: q=fipsN (N in N)',
      'ui: inventory: q with no match',
      'ui: inventory: q=an exact id',
      'ui: inventory: unused=N',
      'ui: inventory: deleted=N',
      'ui: inventory: project=N region=N by last change',
      'ui: inventory: account=prod, os=ubuntu, owned=own',
      'ui: inventory: tag=team=ml, q=web',
      'ui: inventory: deleted=N account=staging, by last change',
      'ui: image: timeline, newest versions',
      'ui: image: timeline, older versions (before= the middle)',
      'ui: image: diff of the first and last versions',
      'ui: image: a version',
      'ui: image: raw document',
      'ui: changes: first page',
      'ui: changes: pages N to N by next',
      'ui: changes: account=partner',
      'ui: changes: kind=gpu_baremetal',
      'ui: changes: type=deleted (N in N)',
      'ui: changes: field=description',
      'ui: changes: actor (who changed the image of N versions)',
      'ui: changes: a day ten days ago',
      'ui: runs: recent runs, failures and lag',
      'ui: N-minute load average while the pages were timed',
    ]);
    const notRun = results.rows.filter((row: { measured: string }) => row.measured === 'not run: REDIS_URL is unset');
    expect(notRun.map((row: { scenario: string }) => row.scenario.replace(/\d[\d,.]*/g, 'N'))).toEqual(
      inject('redisUrl')
        ? []
        : [
            'baseline: hand-written pipeline, N images (second pass)',
            'steady state: N images, nothing changed, no latency, no limit, queues on Redis',
            'every image changed (new version + change rows), queues on Redis',
            'limit N req/s, three worker processes, N images, queues on Redis',
            'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: prod, queues on Redis',
            'two accounts (prod N req/s, staging N req/s), three worker processes, N images each: staging, queues on Redis',
            'N triples: reconcile from cold / again with nothing changed, queues on Redis',
            'N triples: Redis memory held by the schedule',
            'audit log: N entries about N tracked images, ingested and refreshed, queues on Redis',
          ],
    );
    for (const row of results.rows) {
      expect(
        Object.values(row.values).every((v) => typeof v === 'number' && Number.isFinite(v)),
        row.scenario,
      ).toBe(true);
    }
    expect(stdout).toContain('| scenario');
    expect(stdout).toContain('quick scale (not a measurement)');
  });
});
