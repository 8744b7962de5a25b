// Change alerts to a webhook (ALERT_WEBHOOK_URL): new changes POSTed in
// batches as JSON, signed (see webhook-signature.ts), retried with backoff. It
// runs beside the worker on its own connection and timer, so a slow or failing
// receiver never slows or fails a refresh; changes wait in Postgres until the
// receiver takes them.
import { setTimeout as delay } from 'node:timers/promises';
import type { Sql } from '../db/db.js';
import type { Logger } from './logger.js';
import { webhookWaitMs } from '../work/retry-policy.js';
import { deliverChanges, type DeliveredChange } from '../sql/deliverChanges.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';

export interface WebhookOptions {
  url: string;
  /** ALERT_WEBHOOK_SECRET: every request is signed with it (webhook-signature.ts). */
  secret: string;
  /** How often to look for new changes when the last look found none. */
  pollMs: number;
  batchSize: number;
  timeoutMs: number;
}

async function post(options: WebhookOptions, secret: string, changes: DeliveredChange[]): Promise<void> {
  const body = JSON.stringify({ changes });
  // Signed at each attempt, so a retry after a long outage is not refused as a replay.
  const signature = signatureHeader(secret, body, Math.floor(Date.now() / 1000));
  const response = await fetch(options.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature },
    body,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`webhook answered ${response.status}`);
}

/** Delivers until `signal` aborts. */
export async function runChangeWebhook(sql: Sql, options: WebhookOptions, logger: Logger, signal: AbortSignal): Promise<void> {
  const { secret } = options;
  let failures = 0;
  while (!signal.aborted) {
    let wait: number;
    try {
      const sent = await deliverChanges(sql, options.batchSize, (changes) => post(options, secret, changes));
      if (sent > 0) logger.info({ changes: sent }, 'changes delivered to the webhook');
      failures = 0;
      wait = webhookWaitMs(failures, sent, options);
    } catch (error) {
      failures += 1;
      wait = webhookWaitMs(failures, 0, options);
      logger.warn({ error: (error as Error).message, retry_in_ms: wait }, 'webhook delivery failed; will retry');
    }
    await delay(wait, undefined, { signal }).catch(() => {});
  }
}
