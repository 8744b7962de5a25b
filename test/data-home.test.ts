// One place for the data, said aloud: the home's rule, read-only commands
// that never make a database, a legacy home used and said, and no new empty
// database where the data was deleted under a running process. Every home
// here is under os.tmpdir(): HOME and XDG_DATA_HOME point there too.
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyNotice } from '../src/db/database.js';
import { mayPass } from '../src/db/embedded-install.js';
import { resolveHome, type HomeFacts } from '../src/config/home.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { throwawayHome } from './support/home.js';
import { writeTargetsFile } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

describe('the home: which directory (a pure rule)', () => {
  const facts = (over: Partial<HomeFacts>): HomeFacts => ({
    env: {},
    uid: 1000,
    userHome: '/home/ann',
    cwd: '/srv/work',
    legacyHasDatabase: false,
    ...over,
  });

  it('GCORE_IMAGE_SYNC_HOME first (relative to the current directory), over a legacy home and every default', () => {
    expect(resolveHome(facts({ env: { GCORE_IMAGE_SYNC_HOME: '/data/gis' }, uid: 0, legacyHasDatabase: true }))).toEqual({
      dir: '/data/gis',
      why: 'set by GCORE_IMAGE_SYNC_HOME',
    });
    expect(resolveHome(facts({ env: { GCORE_IMAGE_SYNC_HOME: 'here' } })).dir).toBe('/srv/work/here');
  });

  it('else a database left in ./.gcore-image-sync, with the default it would move to', () => {
    expect(resolveHome(facts({ legacyHasDatabase: true }))).toEqual({
      dir: '/srv/work/.gcore-image-sync',
      why: 'the database found in ./.gcore-image-sync, where older versions kept it',
      moveTo: '/home/ann/.local/share/gcore-image-sync',
    });
    expect(resolveHome(facts({ uid: 0, legacyHasDatabase: true })).moveTo).toBe('/var/lib/gcore-image-sync');
  });

  it('else XDG_DATA_HOME when set and absolute, else /var/lib as root, else ~/.local/share; never the current directory', () => {
    expect(resolveHome(facts({ env: { XDG_DATA_HOME: '/x/data' } }))).toEqual({
      dir: '/x/data/gcore-image-sync',
      why: 'the default: $XDG_DATA_HOME/gcore-image-sync',
    });
    expect(resolveHome(facts({ env: { XDG_DATA_HOME: '/x/data' }, uid: 0 })).dir).toBe('/x/data/gcore-image-sync');
    expect(resolveHome(facts({ uid: 0 }))).toEqual({ dir: '/var/lib/gcore-image-sync', why: 'the default for root' });
    expect(resolveHome(facts({ env: { XDG_DATA_HOME: 'relative' } }))).toEqual({
      dir: '/home/ann/.local/share/gcore-image-sync',
      why: 'the default: ~/.local/share/gcore-image-sync',
    });
    expect(resolveHome(facts({ cwd: '/elsewhere' })).dir).toBe('/home/ann/.local/share/gcore-image-sync');
  });

  it('a legacy home is said with the commands that move it, or keep it where the default holds another database', () => {
    const home = { dir: '/srv/work/.gcore-image-sync', why: 'legacy', moveTo: '/var/lib/gcore-image-sync' };
    expect(legacyNotice(home, false)).toBe(
      'using the database in /srv/work/.gcore-image-sync, found in the current directory (homes no longer follow it; the default is /var/lib/gcore-image-sync): ' +
        "to move it there, stop every gcore-image-sync process using it, then run: mkdir -p '/var/lib' && mv '/srv/work/.gcore-image-sync' '/var/lib/gcore-image-sync'; " +
        "or keep it where it is: export GCORE_IMAGE_SYNC_HOME='/srv/work/.gcore-image-sync'",
    );
    expect(legacyNotice(home, true)).toBe(
      'using the database in /srv/work/.gcore-image-sync, found in the current directory (homes no longer follow it); the default, ' +
        '/var/lib/gcore-image-sync, holds another database, so this one cannot move there: ' +
        "to go on using this one, export GCORE_IMAGE_SYNC_HOME='/srv/work/.gcore-image-sync'",
    );
    expect(legacyNotice({ dir: '/d', why: 'set' }, false)).toBeUndefined();
  });
});

describe('who may pass through a directory (a pure rule)', () => {
  const postgres = { uid: 101, gid: 104 };
  it('by the owner bits for its owner, the group bits for its group, the others bits for the rest; root always', () => {
    expect(mayPass({ mode: 0o700, uid: 0, gid: 0 }, postgres)).toBe(false);
    expect(mayPass({ mode: 0o701, uid: 0, gid: 0 }, postgres)).toBe(true);
    expect(mayPass({ mode: 0o710, uid: 0, gid: 104 }, postgres)).toBe(true);
    // The first class that matches decides, even when it denies and a later one would allow.
    expect(mayPass({ mode: 0o011, uid: 101, gid: 0 }, postgres)).toBe(false);
    expect(mayPass({ mode: 0o701, uid: 0, gid: 104 }, postgres)).toBe(false);
    expect(mayPass({ mode: 0o000, uid: 5, gid: 5 }, { uid: 0, gid: 0 })).toBe(true);
  });
});

const triples: Triple[] = [1, 2].map((n) => ({ projectId: 8, regionId: 3, imageId: sampleImageId(n) }));

let env: TestEnv;
let fake: FakeGcore;
/** Settings with no home and no DATABASE_URL; HOME and XDG_DATA_HOME are each test's own temporary directories. */
let base: Record<string, string>;
const made: string[] = [];

async function temporary(prefix: string): Promise<string> {
  const dir = await throwawayHome(prefix);
  made.push(dir);
  return dir;
}

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  const file = await writeTargetsFile(`targets:
  - { project_id: 8, region_id: 3, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`);
  const { DATABASE_URL: _named, GCORE_IMAGE_SYNC_HOME: _home, ...rest } = env.env;
  base = { ...rest, TARGETS_FILE: file, GCORE_BASE_URL: fake.url };
});

afterAll(async () => {
  await fake?.stop();
  await env?.cleanup();
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

describe('the home, said aloud (DATABASE_URL unset)', () => {
  it('status, changes, snapshot and db on a home with no database exit 2 naming where they looked, and make nothing', async () => {
    const empty = await temporary('gis-empty-home-');
    const missing = join(empty, 'missing');
    for (const [command, home] of [
      ['status', empty],
      ['changes', empty],
      ['snapshot', empty],
      ['db', missing],
    ] as const) {
      const result = await runCli([command], { ...base, GCORE_IMAGE_SYNC_HOME: home }, tmpdir());
      expect([command, result.code]).toEqual([command, 2]);
      expect(result.stderr).toContain(
        `GCORE_IMAGE_SYNC_HOME: no database in ${home} (set by GCORE_IMAGE_SYNC_HOME): looked for ${join(home, 'pgdata')}, and made nothing.`,
      );
    }
    expect(readdirSync(empty)).toEqual([]);
  }, 120_000);

  it('a database made by a command run in one directory is the one status finds from another, and names first', async () => {
    const user = await temporary('gis-user-');
    const settings = { ...base, HOME: user, XDG_DATA_HOME: join(user, 'data') };
    const [here, there] = [await temporary('gis-cwd-'), await temporary('gis-cwd-')];
    const home = join(user, 'data', 'gcore-image-sync');
    const synced = await runCli(['sync', '--wait'], settings, here);
    expect(synced.code).toBe(0);
    // Made where the rule says, and said aloud, once.
    expect(
      synced.stderr.split(`no database in ${home} (the default: $XDG_DATA_HOME/gcore-image-sync): making a new, empty one`),
    ).toHaveLength(2);
    const status = await runCli(['status'], settings, there);
    expect(status.code).toBe(0);
    expect(status.stdout.split('\n')[0]).toBe(
      `data: ${home} (the default: $XDG_DATA_HOME/gcore-image-sync; the embedded PostgreSQL, as DATABASE_URL is not set)`,
    );
    expect(status.stdout).toMatch(/^last run: #\d+ finished \(manual\)/m);
    const json = await runCli(['status', '--json'], settings, there);
    expect(JSON.parse(json.stdout).last_run).toMatchObject({ status: 'finished', planned: 2, created: 2 });
    // Neither directory holds a home of its own.
    expect([readdirSync(here), readdirSync(there)]).toEqual([[], []]);
  }, 180_000);

  it('a database left in ./.gcore-image-sync is used there, and said with how to move it; the default is not made', async () => {
    const clone = await temporary('gis-legacy-');
    const user = await temporary('gis-user-');
    const migrated = await runCli(['migrate'], { ...base, GCORE_IMAGE_SYNC_HOME: '.gcore-image-sync' }, clone);
    expect(migrated.code).toBe(0);
    const settings = { ...base, HOME: user, XDG_DATA_HOME: join(user, 'data') };
    const status = await runCli(['status'], settings, clone);
    expect(status.code).toBe(0);
    const legacy = join(clone, '.gcore-image-sync');
    expect(status.stderr).toContain(
      `gcore-image-sync: using the database in ${legacy}, found in the current directory (homes no longer follow it; the default is ${join(user, 'data', 'gcore-image-sync')}): ` +
        `to move it there, stop every gcore-image-sync process using it, then run: mkdir -p '${join(user, 'data')}' && mv '${legacy}' '${join(user, 'data', 'gcore-image-sync')}'`,
    );
    expect(status.stdout.split('\n')[0]).toBe(
      `data: ${legacy} (the database found in ./.gcore-image-sync, where older versions kept it; the embedded PostgreSQL, as DATABASE_URL is not set)`,
    );
    expect(existsSync(join(user, 'data'))).toBe(false);
  }, 120_000);

  it('makes no new database where the data was deleted under a process still using it; once that one is gone, makes one and says so', async () => {
    const home = join(await temporary('gis-deleted-'), 'home');
    const settings = { ...base, GCORE_IMAGE_SYNC_HOME: home };
    expect((await runCli(['migrate'], settings, tmpdir())).code).toBe(0);
    const db = startCli(['db'], settings, tmpdir());
    await waitFor('db to serve', () => db.stderr().includes('psql '), 60_000);
    // Held still, so that its own check cannot notice the loss and end it first.
    process.kill(db.pid, 'SIGSTOP');
    try {
      await rm(home, { recursive: true, force: true, maxRetries: 5 });
      const refused = await runCli(['migrate'], settings, tmpdir());
      expect([refused.code, refused.stderr]).toEqual([
        3,
        // db, which holds its registration open, and its server, unless PostgreSQL has stopped itself on finding its files gone.
        expect.stringMatching(
          new RegExp(`its data was deleted while process\\(es\\) (\\d+, )?${db.pid} still use it; made no new database there`),
        ),
      ]);
      expect(existsSync(home)).toBe(false);
    } finally {
      process.kill(db.pid, 'SIGCONT');
    }
    // db ends once it finds its data gone, whoever stopped the server.
    const ended = await db.exited;
    expect([ended.code, ended.stderr]).toEqual([
      3,
      expect.stringContaining(`the embedded PostgreSQL's data directory ${join(home, 'pgdata')} is gone`),
    ]);
    const again = await runCli(['migrate'], settings, tmpdir());
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`no database in ${home} (set by GCORE_IMAGE_SYNC_HOME): making a new, empty one`);
  }, 180_000);
});
