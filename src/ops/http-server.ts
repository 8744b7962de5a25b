// The worker's HTTP endpoints: /healthz (the process is alive and its data exists), /readyz
// (Postgres and the queue store answer, no other deployment shares the queues;
// its body also names an account's audit log that holds entries from the
// future, which does not make it unready, and each account's audit-log push),
// /metrics (Prometheus), the queue dashboard, the read-only web view under /ui
// (src/ui), and the receiver of Gcore's audit-log pushes (on this server, or
// alone on a port of its own).
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeAhead } from '../audit-log/audit-cursor.js';
import type { QueueBackend } from '../queues/backend.js';
import type { Sql } from '../db/db.js';
import type { WorkerMetrics } from './metrics.js';
import { DASHBOARD_PATH } from '../queues/queue-dashboard.js';
import { auditLogStates } from '../sql/auditCursor.js';
import { auditPushStates } from '../sql/auditPush.js';
import { describePush } from '../audit-log/push-status.js';
import type { PushReceiver } from '../audit-log/push-receiver.js';
import { UI_PATH, type Ui } from '../ui/ui-server.js';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;

async function answers(check: () => Promise<unknown>): Promise<string> {
  try {
    await Promise.race([check(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 2 s')), READY_TIMEOUT_MS))]);
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Each account whose audit log holds entries dated ahead of the database's
 * clock, with what `status` says of them; undefined when none does, or when
 * Postgres does not answer (the `postgres` check says so).
 */
async function futureEntries(sql: Sql): Promise<Record<string, string> | undefined> {
  let found: Record<string, string> | undefined;
  await answers(async () => {
    const said = (await auditLogStates(sql)).flatMap((state) => {
      const text = describeAhead({ count: state.ahead_count, furthest: state.ahead_at, lookedAt: state.looked_ahead_at }, state.now);
      return text === null ? [] : [[state.account, text] as const];
    });
    if (said.length > 0) found = Object.fromEntries(said);
  });
  return found;
}

/** Each account's push, as `status` says it; undefined when no account has one, or when Postgres does not answer. */
async function pushStates(sql: Sql): Promise<Record<string, string> | undefined> {
  let found: Record<string, string> | undefined;
  await answers(async () => {
    const states = await auditPushStates(sql);
    if (states.length > 0) found = Object.fromEntries(states.map((state) => [`${state.account} ${state.kind}`, describePush(state)]));
  });
  return found;
}

export interface HttpDeps {
  sql: Sql;
  backend: QueueBackend;
  metrics: WorkerMetrics;
  /** What is wrong when another deployment uses these queues; undefined when nothing is. */
  deploymentProblem?: () => Promise<string | undefined>;
  /** Why this process no longer calls the API (its key was rejected); undefined while it does. */
  keyProblem?: () => string | undefined;
  /** The queue dashboard, served under /queues when given. */
  dashboard?: RequestListener;
  /** Why the data is gone for good (Database.lost); undefined while it is not. */
  lost?: () => string | undefined;
  /** Gcore's audit-log pushes, received on this server's port (POST to its path) when given. */
  pushReceiver?: PushReceiver;
  /** The read-only web view, under /ui. */
  ui?: Ui;
}

/**
 * A request's headers and body must have come within this (a push is at most
 * MAX_PUSH_BYTES): one trickled or never ended, before or after the secret is
 * seen, holds its socket no longer. Looked at every second.
 */
const SERVER_OPTIONS = { requestTimeout: 10_000, headersTimeout: 10_000, connectionsCheckingInterval: 1000 };

/** Where a server listens: HTTP_HOST and a port. */
export interface Listen {
  host: string;
  port: number;
}

async function listening(server: Server, where: Listen): Promise<HttpServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The receiver alone (AUDIT_PUSH_PORT), so exposing it to Gcore exposes nothing else. */
export function startReceiverServer(where: Listen, receiver: PushReceiver): Promise<HttpServer> {
  const server = createServer(SERVER_OPTIONS, (req, res) => {
    if (req.url?.split('?')[0] === receiver.path) return receiver.handle(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return listening(server, where);
}

/**
 * /healthz: alive unless the data is gone for good, which no reconnecting
 * mends, so a supervisor restarts the process. A database that does not
 * answer is /readyz's business: a fleet must not restart itself over an outage.
 */
export function liveness(lost: string | undefined): { status: number; body: string } {
  return lost === undefined ? { status: 200, body: 'ok\n' } : { status: 503, body: `${lost}\n` };
}

export async function startHttpServer(where: Listen, deps: HttpDeps): Promise<HttpServer> {
  const server: Server = createServer(SERVER_OPTIONS, (req, res) => {
    const send = (status: number, type: string, body: string) => res.writeHead(status, { 'content-type': type }).end(body);
    const path = req.url?.split('?')[0];
    if (deps.pushReceiver && path === deps.pushReceiver.path) return deps.pushReceiver.handle(req, res);
    if (deps.dashboard && (path === DASHBOARD_PATH || path?.startsWith(`${DASHBOARD_PATH}/`))) {
      deps.dashboard(req, res);
      return;
    }
    if (deps.ui && (path === UI_PATH || path?.startsWith(`${UI_PATH}/`))) return deps.ui.handle(req, res);
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    if (path === '/healthz') {
      const { status, body } = liveness(deps.lost?.());
      return send(status, 'text/plain', body);
    }
    if (path === '/readyz') {
      const { deploymentProblem } = deps;
      void Promise.all([
        answers(() => deps.sql`SELECT 1`),
        answers(() => deps.backend.ping()),
        // Another deployment on this prefix makes the process unready, as a service that does not answer would.
        deploymentProblem &&
          answers(async () => {
            const problem = await deploymentProblem();
            if (problem) throw new Error(problem);
          }),
        futureEntries(deps.sql),
        pushStates(deps.sql),
      ]).then(([postgres, queues, deployment, auditLog, auditPush]) => {
        // A process whose key was rejected takes no jobs: unready, so a supervisor can restart it with a new key.
        const apiKey = deps.keyProblem?.() ?? 'ok';
        const ready = postgres === 'ok' && queues === 'ok' && (deployment ?? 'ok') === 'ok' && apiKey === 'ok';
        // Entries from the future and a push that is away are said, never made a reason to be unready: polling reads the log either way.
        const body = { postgres, queues, deployment, api_key: apiKey, audit_log: auditLog, audit_push: auditPush };
        send(ready ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
      });
      return;
    }
    if (path === '/metrics') {
      void deps.metrics.registry.metrics().then(
        (text) => send(200, deps.metrics.registry.contentType, text),
        (error: Error) => send(500, 'text/plain', `${error.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', `not found: /healthz, /readyz, /metrics${deps.ui ? ', /ui' : ''}\n`);
  });
  return listening(server, where);
}
