// The embedded PostgreSQL's own edges, opened in this process as a command
// opens it: a postmaster.pid left behind. Its own home; no other service needed.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedPostgres, type EmbeddedDatabase } from '../src/embedded-postgres.js';

let home: string;
let dataDir: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'gis-embedded-'));
  dataDir = join(home, 'pgdata');
  // Made once, stopped: each test starts from a server that is not running.
  await (await openEmbeddedPostgres(home)).close();
}, 60_000);

afterAll(async () => {
  // A test that failed with the server up must not leave it running.
  await (await openEmbeddedPostgres(home).catch(() => undefined))?.close();
});

/** The user the server runs as, as the module picks it: `postgres` when this process is root, else this one. */
function serverUser(): { uid: number; gid: number } {
  if (process.getuid!() !== 0) return { uid: process.getuid!(), gid: process.getgid!() };
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function query<T>(db: EmbeddedDatabase, run: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    return await run(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const postmasterPid = () => join(dataDir, 'postmaster.pid');
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the embedded PostgreSQL', () => {
  it('takes a postmaster.pid whose pid is now an unrelated process for no server, and starts one', async () => {
    const running = await openEmbeddedPostgres(home);
    const file = readFileSync(postmasterPid(), 'utf8');
    await running.close();
    // The file a server killed outright leaves, its pid since taken by another process of the server's user:
    // PostgreSQL itself would take that process for a server and refuse to start.
    const user = serverUser();
    const other = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'], ...user });
    try {
      await writeFile(postmasterPid(), [String(other.pid), ...file.split('\n').slice(1)].join('\n'));
      await chown(postmasterPid(), user.uid, user.gid);
      const db = await openEmbeddedPostgres(home);
      try {
        expect(await query(db, (sql) => sql`SELECT current_setting('data_directory') AS dir`)).toEqual([{ dir: dataDir }]);
        expect(Number(readFileSync(postmasterPid(), 'utf8').split('\n')[0])).not.toBe(other.pid);
        expect(isAlive(other.pid!)).toBe(true);
      } finally {
        await db.close();
      }
    } finally {
      other.kill();
    }
  });
});
