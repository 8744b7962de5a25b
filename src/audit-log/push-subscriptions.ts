// Gcore's audit-log push subscriptions, kept at exactly one of this
// deployment's per account: listed first, created when missing. Gcore's
// unsubscribe takes no id and removes every subscription of the client (the
// company, whose accounts share them), so a subscription is only ever removed
// when everything listed is this deployment's; with another URL listed the
// worker leaves its own stale one and says so, and only `push unsubscribe
// --force` clears them all. The decision (planSubscription) is pure; the calls
// go through the account's paced client.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { SubscriptionRequest } from '../gcore/gcore-client.js';
import { MalformedAnswerError, excerpt } from '../gcore/gcore-errors.js';
import { REDACTED } from '../ops/secret-scrub.js';
import type { PushKind, SubscriptionCheck } from '../sql/auditPush.js';
import type { AuditPushSettings } from '../config/config.js';
import type { KeyedAccount } from '../config/accounts.js';

/** A subscription as listed: whether it is exactly the one wanted, and whether this deployment made it. */
export interface ListedSubscription {
  /** The URL, or the broker's host, exchange and routing key, as status may show it. */
  target: string;
  wanted: boolean;
  ours: boolean;
}

export type SubscriptionPlan =
  { action: 'keep'; problem: string | null } | { action: 'create'; problem: string | null } | { action: 'replace' };

/**
 * What to do about an account's listed subscriptions of one kind: keep the
 * one wanted; create it when missing; when this deployment's own are stale
 * (another URL or secret) or doubled, remove all and create one, unless a
 * subscription of someone else's is listed, which removing would cut off.
 */
export function planSubscription(listed: ListedSubscription[]): SubscriptionPlan {
  const wanted = listed.filter((s) => s.wanted).length;
  const stale = listed.filter((s) => s.ours && !s.wanted).length + Math.max(wanted - 1, 0);
  const foreign = listed.filter((s) => !s.ours);
  if (stale === 0) return wanted === 1 ? { action: 'keep', problem: null } : { action: 'create', problem: null };
  if (foreign.length === 0) return { action: 'replace' };
  const problem =
    `${stale} more subscription(s) of this deployment (an old URL, secret or broker, or a second copy) left in place: ` +
    `the client also has ${foreign.length} to ${named(foreign.map((s) => s.target))}, which Gcore's unsubscribe would remove too; ` +
    '`gcore-image-sync push unsubscribe --force` removes them all, and the workers then subscribe again';
  return { action: wanted === 0 ? 'create' : 'keep', problem };
}

/** Targets named in a problem, which status and the log show: the first few, each cut short (the list is Gcore's, of any length). */
function named(targets: string[]): string {
  const shown = targets.slice(0, 3).map((target) => excerpt(target, 100));
  return targets.length > shown.length ? `${shown.join(', ')} and ${targets.length - shown.length} more` : shown.join(', ');
}

/** Where Gcore pushes an account's log, and how each kind's subscriptions are read, made and removed. */
export interface PushTarget {
  kind: PushKind;
  /** As status shows it (no secret). */
  target: string;
  /** How a listed entry reads: the subscription's target, and whether it is wanted or ours. */
  read(entry: Record<string, unknown>): ListedSubscription;
  listPath: string;
  subscribe: { path: string; body: unknown };
  unsubscribePath: string;
}

/** Equal in constant time (over hashes, so the lengths need not match). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Whether a listed secret is the one this deployment sent: the client takes
 * every secret it sends out of each answer (secret-scrub.ts), so its own
 * reads back as the redaction mark, never as itself; compared too, for a list
 * read without that.
 */
function isSentSecret(listed: unknown, sent: string): boolean {
  return typeof listed === 'string' && (listed === REDACTED || sameSecret(listed, sent));
}

/**
 * Whether two URLs name one address, as written or as a URL parser writes it
 * back (host in lower case, no default port, `/` for an empty path): Gcore
 * may list the URL it was given so, and this deployment's would read as
 * another's, replaced at every check.
 */
function sameAddress(listed: string, url: string): boolean {
  return listed === url || (URL.parse(listed)?.href ?? listed) === (URL.parse(url)?.href ?? url);
}

/** The webhook subscription of this deployment: AUDIT_PUSH_URL, sent back with the Authorization header. */
export function webhookTarget(url: string, headerValue: string): PushTarget {
  return {
    kind: 'webhook',
    target: url,
    read(entry) {
      const sameUrl = typeof entry.url === 'string' && sameAddress(entry.url, url);
      const ourSecret = isSentSecret(entry.auth_header_value, headerValue);
      const sameHeader = typeof entry.auth_header_name === 'string' && entry.auth_header_name.toLowerCase() === 'authorization';
      return {
        target: typeof entry.url === 'string' ? entry.url : '(no url)',
        wanted: sameUrl && ourSecret && sameHeader,
        ours: sameUrl || ourSecret,
      };
    },
    listPath: 'subscriptions_list',
    subscribe: { path: 'subscribe', body: { url, auth_header_name: 'Authorization', auth_header_value: headerValue } },
    unsubscribePath: 'unsubscribe',
  };
}

/** An account's AMQP subscription: Gcore publishes to `exchange` with `routingKey` on the broker `connectionString` names. */
export function amqpTarget(connectionString: string, exchange: string, routingKey: string): PushTarget {
  const target = `${brokerHost(connectionString)} exchange ${exchange} routing key ${routingKey}`;
  return {
    kind: 'amqp',
    target,
    read(entry) {
      const ours = isSentSecret(entry.connection_string, connectionString);
      const wanted = ours && entry.exchange === exchange && (entry.routing_key ?? '') === routingKey;
      const shown = ours
        ? brokerHost(connectionString)
        : typeof entry.connection_string === 'string'
          ? brokerHost(entry.connection_string)
          : '(no broker)';
      return { target: `${shown} exchange ${String(entry.exchange)} routing key ${String(entry.routing_key)}`, wanted, ours };
    },
    listPath: 'amqp_subscriptions_list',
    subscribe: { path: 'subscribe_amqp', body: { connection_string: connectionString, exchange, routing_key: routingKey } },
    unsubscribePath: 'unsubscribe_amqp',
  };
}

/** A broker's host and port and virtual host, without its user or password. */
export function brokerHost(connectionString: string): string {
  const url = URL.parse(connectionString);
  return url ? `${url.protocol}//${url.host}${url.pathname}` : '(unparseable connection string)';
}

/** Where Gcore is to push `account`'s log: this deployment's webhook (AUDIT_PUSH_URL), the account's broker, both or neither. */
export function accountPushes(webhook: AuditPushSettings | undefined, account: KeyedAccount): PushTarget[] {
  return [
    ...(webhook ? [webhookTarget(webhook.url, webhook.headerValue)] : []),
    ...(account.amqp ? [amqpTarget(account.amqp.connectionString, account.amqp.exchange, account.amqp.routingKey)] : []),
  ];
}

const LIST_LIMIT = 1000;
/** Pages of a list read at most: a client has a few subscriptions, and an answer that pages on and on (offset ignored, a count never reached) is not a list. */
const MAX_LIST_PAGES = 10;

/** What calls the subscription endpoints: the account's paced client in a worker, its plain client in a command. */
export interface SubscriptionCaller {
  subscriptionCall(request: SubscriptionRequest): Promise<unknown>;
}

/** Every subscription the account's client has at `listPath` (a kind's list), page by page. */
export async function listSubscriptions(api: SubscriptionCaller, listPath: string): Promise<Array<Record<string, unknown>>> {
  const all: Array<Record<string, unknown>> = [];
  for (let offset = 0; offset < MAX_LIST_PAGES * LIST_LIMIT; offset += LIST_LIMIT) {
    const page = (await api.subscriptionCall({ method: 'GET', path: `${listPath}?limit=${LIST_LIMIT}&offset=${offset}` })) as {
      count?: unknown;
      results?: unknown;
    };
    if (typeof page !== 'object' || page === null || !Array.isArray(page.results) || !Number.isSafeInteger(page.count))
      throw new MalformedAnswerError(`${listPath}: the answer is not a list page ({"count", "results"})`, 200, false);
    all.push(...page.results.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null));
    if (page.results.length < LIST_LIMIT || all.length >= (page.count as number)) return all;
  }
  throw new MalformedAnswerError(`${listPath}: more than ${MAX_LIST_PAGES} full pages; not read further`, 200, false);
}

/** Lists the account's subscriptions of the kind and acts on the plan; what it found, for status. */
export async function ensureSubscription(
  api: SubscriptionCaller,
  push: PushTarget,
): Promise<SubscriptionCheck & { action: SubscriptionPlan['action'] }> {
  const plan = planSubscription((await listSubscriptions(api, push.listPath)).map((entry) => push.read(entry)));
  if (plan.action === 'replace') await api.subscriptionCall({ method: 'POST', path: push.unsubscribePath });
  if (plan.action !== 'keep') await api.subscriptionCall({ method: 'POST', path: push.subscribe.path, body: push.subscribe.body });
  return { kind: push.kind, target: push.target, subscribed: true, problem: 'problem' in plan ? plan.problem : null, action: plan.action };
}
