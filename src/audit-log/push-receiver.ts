// The receiver of Gcore's webhook pushes (AUDIT_PUSH_URL). A push is only a
// signal: its body is read up to a small limit and never trusted as the
// record (Gcore does not publish its shape); with the right Authorization
// header it asks every account the webhook serves to read its log now
// (requestWake: whichever process holds an account's lease reads it, from its
// cursor, as a poll does). Pushes that arrive together share one wake-up, so
// a burst costs one or two reads of the log, not one each. A wrong or missing
// header gets 401 and is only counted.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sql } from '../db/db.js';
import type { Logger } from '../ops/logger.js';
import type { WorkerMetrics } from '../ops/metrics.js';
import { countRefusedPushes, requestWake } from '../sql/auditPush.js';
import { sameSecret } from './push-subscriptions.js';
import { Coalescer } from '../ops/coalescer.js';

/** A push carries one entry of the log; anything larger is not Gcore's. */
export const MAX_PUSH_BYTES = 65_536;
/** Pushes accepted within this long of a wake-up share the next one. */
const WAKE_GAP_MS = 250;
/** Refused pushes are counted in the database at most this often, so a flood of them costs no write each. */
const REFUSED_GAP_MS = 1000;

export interface PushReceiverOptions {
  sql: Sql;
  /** The path of AUDIT_PUSH_URL. */
  path: string;
  /** What the Authorization header must hold. */
  headerValue: string;
  /** The accounts a push wakes: Gcore's webhook names no account, and one URL serves them all. */
  accounts: string[];
  logger: Logger;
  metrics?: WorkerMetrics;
}

export interface PushReceiver {
  path: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Writes what is still held (counts, a wake-up) and stops. */
  close(): Promise<void>;
}

/** Reads a body of at most `limit` bytes; false when it is larger (the rest is not read). */
async function withinLimit(req: IncomingMessage, limit: number): Promise<boolean> {
  if (Number(req.headers['content-length']) > limit) return false;
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return false;
  }
  return true;
}

export function pushReceiver(options: PushReceiverOptions): PushReceiver {
  const { sql, logger, metrics, accounts } = options;
  // A failure is said once for the pushes a write carried, not once for each: a flood while Postgres is away is not a flood of lines.
  const wakes = new Coalescer(WAKE_GAP_MS, (count) =>
    requestWake(sql, 'webhook', accounts, count).catch((error: Error) => {
      logger.warn({ error: error.message, pushes: count }, 'audit-log push: could not wake the followers; the next poll reads the log');
      throw error;
    }),
  );
  const refusals = new Coalescer(REFUSED_GAP_MS, (count) =>
    countRefusedPushes(sql, 'webhook', accounts, count).catch((error: Error) =>
      logger.warn({ error: error.message, pushes: count }, 'audit-log push: could not count refused pushes'),
    ),
  );
  const refuse = (res: ServerResponse, status: number, reason: string, outcome: string) => {
    metrics?.pushes.inc({ kind: 'webhook', outcome });
    void refusals.add();
    res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${reason}\n`);
  };
  return {
    path: options.path,
    handle(req, res) {
      if (req.method !== 'POST') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'POST' }).end('POST only\n');
        return;
      }
      if (!sameSecret(req.headers.authorization ?? '', options.headerValue)) {
        refuse(res, 401, 'unauthorized', 'unauthorized');
        return;
      }
      void withinLimit(req, MAX_PUSH_BYTES).then(
        async (fits) => {
          if (!fits) {
            refuse(res, 413, `a push is at most ${MAX_PUSH_BYTES} bytes`, 'too_large');
            return;
          }
          try {
            await wakes.add();
            metrics?.pushes.inc({ kind: 'webhook', outcome: 'accepted' });
            res.writeHead(204).end();
          } catch {
            // Gcore may send it again; the next poll reads the entry either way.
            metrics?.pushes.inc({ kind: 'webhook', outcome: 'failed' });
            res.writeHead(503, { 'content-type': 'text/plain' }).end('could not take the push now\n');
          }
        },
        () => res.destroy(),
      );
    },
    async close() {
      await Promise.allSettled([wakes.close(), refusals.close()]);
    },
  };
}
