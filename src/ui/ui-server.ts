// The web view's requests: who may see it (ui-access.ts), the headers that keep
// a page from running anything (a CSP with no scripts at all), routing to each
// page, and what a reader sees when input is bad or Postgres does not answer.
// Every page reads through the reporting role (readAs), in a read-only transaction.
import type { IncomingMessage, ServerResponse } from 'node:http';
import pLimit from 'p-limit';
import type { Sql } from '../db/db.js';
import type { Logger } from '../ops/logger.js';
import { readAs } from '../sql/readAs.js';
import { prepareReadingRole, uiReadingRole } from '../sql/grantReporting.js';
import { html } from './html.js';
import { document, type Page } from './layout.js';
import { QueryReader } from './query.js';
import type { PageRequest } from './page-request.js';
import { NotFoundError, UiInputError } from './page-errors.js';
import { passwordGiven, type UiAccess } from './ui-access.js';
import { ASSETS } from './assets.js';
import { inventoryPage } from './pages/inventory.js';
import { imagePage, diffPage, versionPage, rawPage } from './pages/image.js';
import { changesPage } from './pages/changes.js';
import { runsPage } from './pages/runs.js';

export const UI_PATH = '/ui';

/** No scripts, frames, plugins or connections; styles from this server only; forms submit here only. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const SAFE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

type PageHandler = (request: PageRequest) => Promise<Page>;

/** The page a path names, and the parts of the path that follow the page's own. */
function route(path: string): { handler: PageHandler; parts: string[]; nav: string } | undefined {
  const parts = path.split('/').slice(2);
  if (path === UI_PATH || path === `${UI_PATH}/`) return { handler: inventoryPage, parts: [], nav: UI_PATH };
  if (parts[0] === 'changes' && parts.length === 1) return { handler: changesPage, parts: [], nav: '/ui/changes' };
  if (parts[0] === 'runs' && parts.length === 1) return { handler: runsPage, parts: [], nav: '/ui/runs' };
  if (parts[0] === 'images') {
    const image = parts.slice(1, 4);
    const rest = parts.slice(4);
    if (image.length === 3 && rest.length === 0) return { handler: imagePage, parts: image, nav: UI_PATH };
    if (image.length === 3 && rest.length === 1 && rest[0] === 'diff') return { handler: diffPage, parts: image, nav: UI_PATH };
    if (image.length === 3 && rest.length === 1 && rest[0] === 'raw') return { handler: rawPage, parts: image, nav: UI_PATH };
    if (image.length === 3 && rest.length === 2 && rest[0] === 'versions')
      return { handler: versionPage, parts: [...image, rest[1]!], nav: UI_PATH };
  }
  return undefined;
}

export interface UiDeps {
  sql: Sql;
  access: UiAccess;
  logger: Logger;
}

export interface Ui {
  /** Answers a request whose path is /ui or under it. */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

function message(title: string, text: string, status: number): Page {
  return { title, status, body: html`<p class="problem">${text}</p>` };
}

/**
 * Pages read at most this many at a time per process: they share the worker's pool, and a burst of
 * readers must not hold every connection the refreshes need. The rest wait their turn.
 */
const CONCURRENT_READS = 2;
const MAX_WAITING = 20;

class GoneError extends Error {}

export function createUi({ sql, access, logger }: UiDeps): Ui {
  const readSlot = pLimit(CONCURRENT_READS);
  // The role every page reads as (this database's, uiReadingRole), made one the pool's user may take when the
  // first page is asked for, and again after a failure (a role a DBA grants later is then found).
  let roleReady: Promise<string> | undefined;
  const ensureRole = () => {
    roleReady ??= readingRole(sql).catch((error: unknown) => {
      roleReady = undefined;
      throw error;
    });
    return roleReady;
  };

  const send = (res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}) =>
    res.writeHead(status, { ...SAFE_HEADERS, 'content-type': type, ...extra }).end(body);

  async function answer(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const started = performance.now();
    // Readers past this many wait for nothing: a page they would get in minutes is no page.
    if (readSlot.pendingCount >= MAX_WAITING) {
      send(res, 503, 'text/plain; charset=utf-8', 'the web view is busy: too many pages are being read; try again\n', {
        'retry-after': '5',
      });
      return;
    }
    const found = route(path);
    const query = new QueryReader(new URL(req.url ?? '/', 'http://ui').searchParams);
    let page: Page;
    let dbMs = 0;
    try {
      if (!found) {
        page = message('Not found', `${path} is not a page here: the inventory is at /ui, changes at /ui/changes, runs at /ui/runs.`, 404);
      } else {
        const role = await ensureRole();
        page = await found.handler({
          query,
          parts: found.parts.map(decodedPart),
          read: async (body) => {
            const readStarted = performance.now();
            try {
              // A reader who went away while this waited its turn is read for no one.
              return await readSlot(() => (res.destroyed ? Promise.reject(new GoneError()) : readAs(sql, role, body)));
            } finally {
              dbMs += performance.now() - readStarted;
            }
          },
        });
      }
    } catch (error) {
      if (error instanceof GoneError) return;
      page = problemPage(error as Error);
      if ((page.status ?? 500) >= 500) logger.warn({ path, err: (error as Error).message }, 'a page of the web view failed');
    }
    const body = document(page, found?.nav ?? '');
    const timing = `db;dur=${dbMs.toFixed(1)}, total;dur=${(performance.now() - started).toFixed(1)}`;
    send(res, page.status ?? 200, 'text/html; charset=utf-8', body, { 'server-timing': timing });
  }

  return {
    handle(req, res) {
      const path = req.url?.split('?')[0] ?? '';
      if (access.kind === 'off') return send(res, 404, 'text/plain; charset=utf-8', 'not found: the web view is off (UI=off)\n');
      if (access.kind === 'closed') return send(res, 403, 'text/plain; charset=utf-8', `the web view is closed: ${access.reason}\n`);
      if (access.kind === 'password' && !passwordGiven(req, access.password))
        return send(res, 401, 'text/plain; charset=utf-8', 'the web view needs the password (UI_PASSWORD)\n', {
          'www-authenticate': 'Basic realm="gcore-image-sync", charset="UTF-8"',
        });
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(res, 405, 'text/plain; charset=utf-8', 'GET only: the web view is read-only\n', { allow: 'GET, HEAD' });
      const asset = ASSETS.get(path);
      if (asset) return send(res, 200, asset.type, asset.body);
      void answer(req, res, path);
    },
  };
}

/** Postgres's refusals: insufficient privilege, invalid grantor. */
const PRIVILEGE_ERRORS = new Set(['42501', '0LP01']);

/** This database's reading role, made one this user may read as; a refusal is said as the role's doing. */
async function readingRole(sql: Sql): Promise<string> {
  const role = await uiReadingRole(sql);
  try {
    await prepareReadingRole(sql, role);
  } catch (error) {
    // Only a refusal is the role's doing; a Postgres that does not answer is said as such.
    throw PRIVILEGE_ERRORS.has((error as { code?: string }).code ?? '') ? new RoleError(role, error as Error) : error;
  }
  return role;
}

/** The reading role could not be made or taken. */
class RoleError extends Error {
  constructor(role: string, cause: Error) {
    super(
      `the web view reads as the role ${role}, which this database user cannot make or take (${cause.message}). ` +
        `As a superuser: \`gcore-image-sync reporting-role --role ${role}\`, then GRANT ${role} TO the worker's user.`,
    );
  }
}

function decodedPart(part: string): string {
  let text: string;
  try {
    text = decodeURIComponent(part);
  } catch {
    throw new UiInputError(`the path's part "${part.slice(0, 80)}" is not valid percent-encoding`);
  }
  if (text.includes('\0') || /[\ud800-\udfff]/u.test(text))
    throw new UiInputError(`the path's part "${part.slice(0, 80)}" holds a character Postgres cannot compare (NUL or a lone surrogate)`);
  return text;
}

function problemPage(error: Error): Page {
  if (error instanceof UiInputError) return message('Bad request', error.message, 400);
  if (error instanceof NotFoundError) return message('Not found', error.message, 404);
  if (error instanceof RoleError) return message('Unavailable', error.message, 503);
  const code = (error as { code?: string }).code;
  // A data exception: a value of the request Postgres cannot take (a time out of range, a number too large).
  if (code?.startsWith('22')) return message('Bad request', `A value in the request is not one Postgres takes: ${error.message}`, 400);
  if (code === '57014') return message('Too slow', 'The query took longer than 10 s and was stopped: narrow the filters.', 503);
  if (code === '42501') return message('Not allowed', `The web view's reading role may not read this: ${error.message}`, 503);
  // What went wrong is in the worker's log (answer logs it), not on a page: it can name Postgres's host and port.
  return message('Unavailable', "The page could not be read from Postgres; the worker's log says why. Try again shortly.", 503);
}
