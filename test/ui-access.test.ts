// Who may see the web view and what it may do: loopback open, a password beyond loopback or closed,
// UI=off, the headers that keep a page from running anything, and a reading role that cannot write.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { startHttpServer, type HttpServer } from '../src/ops/http-server.js';
import { createMetrics } from '../src/ops/metrics.js';
import { prepareReadingRole, REPORTING_RELATIONS, uiReadingRole } from '../src/sql/grantReporting.js';
import { readAs } from '../src/sql/readAs.js';
import { uiAccess } from '../src/ui/ui-access.js';
import { CONTENT_SECURITY_POLICY, createUi } from '../src/ui/ui-server.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { capturedLogger, QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { sparePort, waitFor } from './support/throwaway.js';

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const triples: Triple[] = [1, 2].map((n) => ({ projectId: 8, regionId: 3, imageId: sampleImageId(n) }));
const PASSWORD = 'correct-horse-battery';

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;
/** The role this database's web view reads as. */
let role: string;
const servers: HttpServer[] = [];
const workers: ChildProcess[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  for (const triple of triples) fake.putImage(triple, sampleImage(triple));
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 8, region_id: 3, image_ids: [${triples.map((t) => t.imageId).join(', ')}] }
`,
  );
  await pipeline.sync();
  role = await uiReadingRole(pipeline.services.sql);
});

afterAll(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  for (const server of servers) await server.close();
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

/** The worker's HTTP server in this process with the web view as `settings` and HTTP_HOST decide. */
async function serve(environment: Record<string, string>, httpHost = '127.0.0.1'): Promise<string> {
  const config = loadConfig({ ...environment, HTTP_HOST: httpHost });
  const access = uiAccess(config.ui, config.httpHost);
  const { sql, backend } = pipeline.services;
  const ui = access.kind === 'off' ? undefined : createUi({ sql, access, logger: capturedLogger().logger });
  // Bound to loopback whatever HTTP_HOST says: what is tested is the decision HTTP_HOST leads to.
  const server = await startHttpServer(
    { host: '127.0.0.1', port: 0 },
    { sql, backend, metrics: createMetrics(pipeline.services.queues, sql), ui },
  );
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`auditor:${password}`).toString('base64')}` });

/** A worker process listening beyond loopback (HTTP_HOST 0.0.0.0) with these settings, once its HTTP server answers; its log lines kept. */
async function startWorker(extra: Record<string, string>): Promise<{ base: string; lines: string[]; worker: ChildProcess }> {
  const port = await sparePort();
  const worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      PATH: process.env.PATH!,
      ...env.env,
      GCORE_BASE_URL: fake.url,
      HTTP_PORT: String(port),
      HTTP_HOST: '0.0.0.0',
      LOG_FORMAT: 'json',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  workers.push(worker);
  const lines: string[] = [];
  worker.stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the HTTP server', async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true);
  return { base, lines, worker };
}

describe('the web view: who may see it', () => {
  it('on loopback it is open; every page and the stylesheet carry the exact CSP and the other safe headers', async () => {
    const base = await serve({});
    for (const path of ['/ui', `/ui/images/8/3/${triples[0]!.imageId}`, '/ui/style.css', '/ui/nowhere']) {
      const res = await fetch(`${base}${path}`);
      expect([path, res.status]).toEqual([path, path === '/ui/nowhere' ? 404 : 200]);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    const page = await fetch(`${base}/ui`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('server-timing')).toMatch(/^db;dur=\d+\.\d, total;dur=\d+\.\d$/);
    const html = await page.text();
    expect(html).toContain('<p id="count"><strong>2</strong> live images match</p>');
    // Nothing a CSP would have to allow: no script, no inline style, no external address.
    expect(html).not.toMatch(/<script|style=|https?:\/\//i);
    expect((await fetch(`${base}/ui/style.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('is read-only: any method but GET and HEAD is refused and changes nothing', async () => {
    const base = await serve({});
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${base}/ui`, { method });
      expect([method, res.status, res.headers.get('allow'), await res.text()]).toEqual([
        method,
        405,
        'GET, HEAD',
        'GET only: the web view is read-only\n',
      ]);
    }
  });

  it('with UI_PASSWORD: 401 without it or with a wrong one, the page with it (any user name)', async () => {
    const base = await serve({ UI_PASSWORD: PASSWORD }, '0.0.0.0');
    const none = await fetch(`${base}/ui`);
    expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, 'Basic realm="gcore-image-sync", charset="UTF-8"']);
    for (const wrong of ['correct-horse-batter', `${PASSWORD}x`, '', PASSWORD.toUpperCase()])
      expect((await fetch(`${base}/ui`, { headers: basic(wrong) })).status).toBe(401);
    expect((await fetch(`${base}/ui`, { headers: { authorization: `Bearer ${PASSWORD}` } })).status).toBe(401);
    expect((await fetch(`${base}/ui/style.css`)).status).toBe(401);
    const right = await fetch(`${base}/ui`, { headers: basic(PASSWORD) });
    expect([right.status, (await right.text()).includes('<strong>2</strong> live images match')]).toEqual([200, true]);
    // The rest of the server is as it was: health needs no password.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('beyond loopback with neither a password nor UI_OPEN=1 it stays closed and says how to open it; UI_OPEN=1 opens it', async () => {
    const closed = await fetch(`${await serve({}, '0.0.0.0')}/ui`);
    expect([closed.status, await closed.text()]).toEqual([
      403,
      'the web view is closed: the server listens beyond loopback (HTTP_HOST 0.0.0.0): set UI_PASSWORD to serve it with a password, UI_OPEN=1 to serve it to anyone who reaches it, or UI=off\n',
    ]);
    expect((await fetch(`${await serve({ UI_OPEN: '1' }, '0.0.0.0')}/ui`)).status).toBe(200);
    expect((await fetch(`${await serve({}, '::1')}/ui`)).status).toBe(200);
    expect((await fetch(`${await serve({}, '127.0.0.2')}/ui`)).status).toBe(200);
  });

  it('UI=off: /ui is not served, the rest is', async () => {
    const base = await serve({ UI: 'off' });
    const res = await fetch(`${base}/ui`);
    expect([res.status, await res.text()]).toEqual([404, 'not found: /healthz, /readyz, /metrics\n']);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('refuses settings that contradict each other or are too weak, naming the variable and never the password', () => {
    const problems = (environment: Record<string, string>) => {
      try {
        loadConfig(environment);
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems({ UI: 'no' })).toEqual(['UI: must be on or off (got "no")']);
    expect(problems({ UI_PASSWORD: 'short-one' })).toEqual(['UI_PASSWORD: must be at least 12 characters (has 9)']);
    expect(problems({ UI_PASSWORD: 'has a space in it' })).toEqual([
      'UI_PASSWORD holds a space (U+0020) at character 4 of 17: a password is printable ASCII without spaces',
    ]);
    expect(problems({ UI_PASSWORD: PASSWORD, UI_OPEN: '1' })).toEqual([
      'UI_OPEN: set together with UI_PASSWORD; set one (a password, or open to anyone who reaches HTTP_HOST)',
    ]);
    expect(problems({ UI_OPEN: 'yes' })).toEqual(['UI_OPEN: must be 1 (on) or 0 (off) (got "yes")']);
    expect(JSON.stringify(problems({ UI_PASSWORD: 'secret-pw' }))).not.toContain('secret-pw');
  });

  it('a worker process beyond loopback: closed and said in its log, or behind the password', async () => {
    const closed = await startWorker({});
    expect((await fetch(`${closed.base}/ui`)).status).toBe(403);
    expect(
      closed.lines.some((line) => JSON.parse(line).msg?.startsWith('the web view at /ui is closed: the server listens beyond loopback')),
    ).toBe(true);
    closed.worker.kill('SIGKILL');
    const guarded = await startWorker({ UI_PASSWORD: PASSWORD });
    expect((await fetch(`${guarded.base}/ui`)).status).toBe(401);
    expect((await fetch(`${guarded.base}/ui`, { headers: basic(PASSWORD) })).status).toBe(200);
    expect(guarded.lines.join('\n')).not.toContain(PASSWORD);
    guarded.worker.kill('SIGKILL');
  });
});

describe('the web view: the role it reads through', () => {
  it('reads every relation the pages need and can write none, even outside a read-only transaction', async () => {
    const { sql } = pipeline.services;
    await prepareReadingRole(sql, role);
    for (const relation of REPORTING_RELATIONS) await readAs(sql, role, (tx) => tx.unsafe(`SELECT 1 FROM ${relation} LIMIT 1`));
    const asRole = (statement: string) =>
      sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL ROLE ${role}`);
        await tx.unsafe(statement);
      });
    const writes: Record<string, string> = {
      image_rows: "UPDATE image_rows SET name = 'x'",
      images: "UPDATE images SET name = 'x'",
      image_versions: 'DELETE FROM image_versions',
      image_changes: 'DELETE FROM image_changes',
      image_tags: "INSERT INTO image_tags VALUES (1, 1, 'x', 'k', 'v', false)",
      sync_runs: "UPDATE sync_runs SET status = 'finished'",
      audit_log_cursors: 'DELETE FROM audit_log_cursors',
      targets: 'DELETE FROM targets',
    };
    for (const [relation, statement] of Object.entries(writes)) {
      const kind = relation === 'images' ? 'view' : 'table';
      await expect(asRole(statement), statement).rejects.toThrow(`permission denied for ${kind} ${relation}`);
    }
    await expect(asRole('CREATE TABLE ui_was_here (x int)')).rejects.toThrow('permission denied for schema public');
    // The pages' own transactions are read-only besides.
    await expect(readAs(sql, role, (tx) => tx`DELETE FROM image_versions`)).rejects.toThrow(
      'cannot execute DELETE in a read-only transaction',
    );
    const [counted] = await sql`SELECT count(*)::int AS n FROM image_rows WHERE name = 'x'`;
    expect(counted).toEqual({ n: 0 });
  });
});

describe('the web view: beside it, and what Postgres refuses', () => {
  it('reads as a role of this database alone, and puts the queue dashboard behind the same password', async () => {
    const [{ database }] = await pipeline.services.sql<[{ database: string }]>`SELECT current_database() AS database`;
    expect(role).toMatch(/^image_reporting_ui_[0-9a-f]{12}$/);
    expect(role).toBe(`image_reporting_ui_${createHash('md5').update(database).digest('hex').slice(0, 12)}`);
    const { base, worker } = await startWorker({ UI_PASSWORD: PASSWORD, QUEUE_DASHBOARD: '1' });
    for (const path of ['/queues', '/queues/api/queues']) expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 401]);
    expect((await fetch(`${base}/queues/api/queues/x/pause`, { method: 'PUT' })).status).toBe(401);
    expect((await fetch(`${base}/queues/api/queues`, { headers: basic(PASSWORD) })).status).toBe(200);
    worker.kill('SIGKILL');
  });

  it('answers 400, not 503, to a value Postgres cannot take, in a cursor or in the path', async () => {
    const base = await serve({});
    const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const path of [
      `/ui?sort=changed&after=${cursor(['zzz', 1, 1, 'x'])}`,
      `/ui?after=${cursor(['a', 1e20, 1, 'x'])}`,
      `/ui?after=${cursor(['a\u0000', 1, 1, 'x'])}`,
      '/ui/images/5/1/%00',
    ]) {
      const res = await fetch(`${base}${path}`);
      expect([path, res.status]).toEqual([path, 400]);
    }
  });

  it('says a Postgres that does not answer as such, its host and port in the log only', async () => {
    const port = await sparePort();
    const sql = postgres(`postgres://postgres@127.0.0.1:${port}/nowhere`, { connect_timeout: 5, max: 1 });
    const { logger, lines } = capturedLogger();
    const { backend, queues } = pipeline.services;
    const ui = createUi({ sql, access: { kind: 'open', reason: 'the test' }, logger });
    const server = await startHttpServer({ host: '127.0.0.1', port: 0 }, { sql, backend, metrics: createMetrics(queues, sql), ui });
    servers.push(server);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/ui`);
      const body = await res.text();
      expect(res.status).toBe(503);
      expect(body).toContain('The page could not be read from Postgres; the worker&#39;s log says why. Try again shortly.');
      expect(body).not.toContain(String(port));
      expect(body).not.toContain('127.0.0.1');
      expect(lines.map((line) => JSON.parse(line) as { msg: string; err: string; path: string })).toEqual([
        expect.objectContaining({ msg: 'a page of the web view failed', path: '/ui', err: expect.stringContaining(`127.0.0.1:${port}`) }),
      ]);
    } finally {
      await sql.end();
    }
  });
});
