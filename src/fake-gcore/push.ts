// How the fake pushes its audit log, as Gcore does to a client's subscriptions
// (subscriptions.ts): each new entry POSTed to every webhook with its header,
// and published to every AMQP subscription's exchange with its routing key.
// Never in the way of the action that logged it: sent later, one at a time
// per subscription (so a receiver sees them in the order they were sent), a
// failure counted, never retried. A test makes pushes go astray (push faults:
// dropped, sent twice, held and sent in reverse order, late) to show that
// nothing depends on them.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AmqpLinks } from './amqp-links.js';
import type { AmqpSubscription, AmqpTestTarget, WebhookSubscription } from './subscriptions.js';

export type PushKind = 'webhook' | 'amqp';

export const PUSH_MODES = ['deliver', 'drop', 'duplicate', 'reorder'] as const;
export type PushMode = (typeof PUSH_MODES)[number];

/**
 * What happens to pushes from now on: `deliver` sends each once; `drop` sends none; `duplicate` sends each twice;
 * `reorder` holds them and sends the held ones newest first once `hold` are held (with no `hold`, only at
 * flushPushes). `delayMs` holds each push that long before it is sent.
 */
export interface PushFault {
  mode: PushMode;
  delayMs?: number;
  hold?: number;
}

export interface PushCounts {
  /** Taken by the receiver: a 2xx answer, or the broker's confirm. */
  sent: number;
  /** Refused, unanswered, or never connected; not tried again. */
  failed: number;
  /** Not sent, by the `drop` fault. */
  dropped: number;
  /** Why the latest failure failed (no header value or connection string in it). */
  lastError: string | null;
}

export interface PushStats {
  webhook: PushCounts;
  amqp: PushCounts;
  /** Pushes held by the `reorder` fault, not yet sent. */
  held: number;
  /** Broker connections open (or opening): one per connection string. */
  amqpConnections: number;
}

type Delivery =
  | { kind: 'webhook'; to: WebhookSubscription; content: string }
  | { kind: 'amqp'; to: Omit<AmqpSubscription, 'receive_child_client_events'>; content: string };

/** A receiver that takes no answer this long is counted failed. */
const PUSH_TIMEOUT_MS = 10_000;

const noCounts = (): PushCounts => ({ sent: 0, failed: 0, dropped: 0, lastError: null });

/** POSTs `content` with the subscription's header, on a connection of its own (none is left open to the receiver). */
function postEntry(to: WebhookSubscription, content: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(to.url);
    const send = { 'http:': httpRequest, 'https:': httpsRequest }[url.protocol];
    if (!send) throw new Error(`${url.protocol} is not a scheme a webhook is called with`);
    const headers = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(content),
      [to.auth_header_name]: to.auth_header_value,
    };
    const req = send(url, { method: 'POST', headers, agent: false, signal, timeout: PUSH_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new Error(`answered ${status}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PUSH_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(content);
  });
}

export class FakePusher {
  private fault: PushFault = { mode: 'deliver' };
  private held: Delivery[] = [];
  /** The sending of each subscription's pushes, one after another, by kind and id. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private aborting = new AbortController();
  private open = true;
  private readonly links = new AmqpLinks();
  private counts: Record<PushKind, PushCounts> = { webhook: noCounts(), amqp: noCounts() };

  /** Pushes one logged entry (the JSON the log answers for it) to the subscriptions of the client whose log holds it. */
  entryLogged(entry: Record<string, unknown>, webhooks: WebhookSubscription[], amqp: AmqpSubscription[]): void {
    if (!this.open || (webhooks.length === 0 && amqp.length === 0)) return;
    // Serialised now: what Gcore pushes is the entry as it was logged, whatever a test changes in it later.
    const content = JSON.stringify(entry);
    for (const to of webhooks) this.accept({ kind: 'webhook', to: { ...to }, content });
    for (const { id, connection_string, exchange, routing_key } of amqp)
      this.accept({ kind: 'amqp', to: { id, connection_string, exchange, routing_key }, content });
  }

  /** Sets the push fault; pushes the last one held are sent first, newest first, as a flush would. */
  setFault(fault: PushFault): void {
    this.flush();
    this.fault = { ...fault };
  }

  /** Sends the pushes `reorder` holds, newest first; returns how many. */
  flush(): number {
    const released = this.held.reverse();
    this.held = [];
    for (const delivery of released) this.later(delivery);
    return released.length;
  }

  stats(): PushStats {
    return { webhook: { ...this.counts.webhook }, amqp: { ...this.counts.amqp }, held: this.held.length, amqpConnections: this.links.size };
  }

  resetStats(): void {
    this.counts = { webhook: noCounts(), amqp: noCounts() };
  }

  /** Publishes subscribe_amqp_test's message at once, past every push fault and counter. */
  async publishTest(target: AmqpTestTarget, content: string): Promise<void> {
    await this.links.publish(target.connection_string, target.exchange ?? '', target.routing_key ?? '', Buffer.from(content));
  }

  /** Sends nothing more: aborts the webhook calls in flight, forgets held and delayed pushes, closes every broker connection. */
  async close(): Promise<void> {
    this.open = false;
    this.aborting.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.held = [];
    await this.links.close();
    await Promise.allSettled(this.chains.values());
  }

  /** Pushes again after close (the fake started again). */
  reopen(): void {
    this.open = true;
    this.aborting = new AbortController();
  }

  private accept(delivery: Delivery): void {
    switch (this.fault.mode) {
      case 'drop':
        this.counts[delivery.kind].dropped += 1;
        return;
      case 'duplicate':
        this.later(delivery);
        this.later(delivery);
        return;
      case 'reorder':
        this.held.push(delivery);
        if (this.fault.hold !== undefined && this.held.length >= this.fault.hold) this.flush();
        return;
      case 'deliver':
        this.later(delivery);
    }
  }

  /** Queues the push behind those of its subscription, after the fault's delay. */
  private later(delivery: Delivery): void {
    const delayMs = this.fault.delayMs ?? 0;
    if (delayMs === 0) {
      this.enqueue(delivery);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue(delivery);
    }, delayMs);
    // A test that forgets to stop the fake is not kept running by a push.
    timer.unref();
    this.timers.add(timer);
  }

  private enqueue(delivery: Delivery): void {
    const key = `${delivery.kind}:${delivery.to.id}`;
    const next = (this.chains.get(key) ?? Promise.resolve()).then(() => this.send(delivery));
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /** Sends one push and counts how it went; never rejects. */
  private async send(delivery: Delivery): Promise<void> {
    if (!this.open) return;
    const counts = this.counts[delivery.kind];
    try {
      if (delivery.kind === 'webhook') await postEntry(delivery.to, delivery.content, this.aborting.signal);
      else {
        const { connection_string, exchange, routing_key } = delivery.to;
        await this.links.publish(connection_string, exchange ?? '', routing_key ?? '', Buffer.from(delivery.content));
      }
      counts.sent += 1;
    } catch (error) {
      counts.failed += 1;
      counts.lastError = (error as Error).message.slice(0, 300);
    }
  }
}
