// The fake's subscriptions to the audit log (/cloud/v1/user_actions/subscribe...):
// webhooks and AMQP brokers Gcore pushes each new entry to (push.ts sends them).
// They belong to a Gcore client, not to an API key: every account of a client
// sees, and unsubscribes, the same ones. Bodies are read as the contract's
// serializers have them; what they do not allow is refused with 422.
import { QueryError, pageOf, readPaging } from './list-queries.js';
import type { JsonObject } from './request-body.js';

/** UserActionSubscriptionSerializer. */
export interface WebhookSubscription {
  id: number;
  url: string;
  auth_header_name: string;
  auth_header_value: string;
}

/** UserActionSubscriptionMqResponseSerializer; a null exchange is the broker's default exchange. */
export interface AmqpSubscription {
  id: number;
  connection_string: string;
  exchange: string | null;
  routing_key: string | null;
  receive_child_client_events: boolean;
}

/** Where subscribe_amqp_test sends its one message (TestMessageMQBodySerializer). */
export interface AmqpTestTarget {
  connection_string: string;
  exchange: string | null;
  routing_key: string | null;
}

const ACTIONS = {
  subscribe: ['POST'],
  subscriptions_list: ['GET'],
  unsubscribe: ['POST'],
  subscribe_amqp: ['POST'],
  amqp_subscriptions_list: ['GET'],
  amqp_subscription: ['GET', 'PATCH'],
  subscribe_amqp_test: ['POST'],
  unsubscribe_amqp: ['POST'],
} as const;

type SubscriptionAction = keyof typeof ACTIONS;

export interface SubscriptionRoute {
  action: SubscriptionAction;
  /** amqp_subscriptions/{subscription_id} as the path gives it (an integer when valid, so never percent-encoded). */
  rawId?: string;
}

/** What the server sends back: a JSON body, No Content, or a Gcore error. */
export type SubscriptionAnswer =
  { status: 200; body: unknown } | { status: 204 } | { status: 400 | 404; exceptionClass: string; message: string };

const PREFIX = '/cloud/v1/user_actions/';
const BY_ID = /^amqp_subscriptions\/([^/]+)$/;

/** The subscription endpoint a path names; undefined for any other path (the log itself included). */
export function subscriptionRoute(path: string): SubscriptionRoute | undefined {
  if (!path.startsWith(PREFIX)) return undefined;
  const rest = path.slice(PREFIX.length);
  const byId = BY_ID.exec(rest);
  if (byId) return { action: 'amqp_subscription', rawId: byId[1]! };
  return Object.hasOwn(ACTIONS, rest) && rest !== 'amqp_subscription' ? { action: rest as SubscriptionAction } : undefined;
}

export function allowsMethod(route: SubscriptionRoute, method: string): boolean {
  return (ACTIONS[route.action] as readonly string[]).includes(method);
}

/** Whether the action's request has a body the contract describes (the others' bodies are ignored, as Gcore's are). */
export function takesBody(route: SubscriptionRoute, method: string): boolean {
  return method === 'POST' || method === 'PATCH' ? !route.action.startsWith('unsubscribe') : false;
}

function requiredString(body: JsonObject, name: string): string {
  if (body[name] === undefined) throw new QueryError(`${name}: field required`);
  return optionalString(body, name)!;
}

function optionalString(body: JsonObject, name: string): string | undefined {
  const value = body[name];
  if (value !== undefined && typeof value !== 'string') throw new QueryError(`${name}: must be a string`);
  return value;
}

/** A field the contract types "string or null", null when absent (its default). */
function nullableString(body: JsonObject, name: string): string | null {
  return body[name] === null ? null : (optionalString(body, name) ?? null);
}

function optionalBoolean(body: JsonObject, name: string): boolean | undefined {
  const value = body[name];
  if (value !== undefined && typeof value !== 'boolean') throw new QueryError(`${name}: must be true or false`);
  return value;
}

/** CreateUserActionSubscriptionSerializer. */
function readWebhook(body: JsonObject): Omit<WebhookSubscription, 'id'> {
  return {
    url: requiredString(body, 'url'),
    auth_header_name: requiredString(body, 'auth_header_name'),
    auth_header_value: requiredString(body, 'auth_header_value'),
  };
}

/** CreateUserActionSubscriptionMqSerializer. */
function readAmqp(body: JsonObject): Omit<AmqpSubscription, 'id'> {
  return {
    connection_string: requiredString(body, 'connection_string'),
    exchange: nullableString(body, 'exchange'),
    routing_key: nullableString(body, 'routing_key'),
    receive_child_client_events: optionalBoolean(body, 'receive_child_client_events') ?? false,
  };
}

/** UserActionSubscriptionUpdateSerializer: every field optional, none of them nullable. */
function readAmqpUpdate(body: JsonObject): Partial<AmqpSubscription> {
  const update = {
    connection_string: optionalString(body, 'connection_string'),
    exchange: optionalString(body, 'exchange'),
    routing_key: optionalString(body, 'routing_key'),
    receive_child_client_events: optionalBoolean(body, 'receive_child_client_events'),
  };
  return Object.fromEntries(Object.entries(update).filter(([, value]) => value !== undefined));
}

/** TestMessageMQBodySerializer: exchange and routing key are strings when given. */
function readAmqpTest(body: JsonObject): AmqpTestTarget {
  return {
    connection_string: requiredString(body, 'connection_string'),
    exchange: optionalString(body, 'exchange') ?? null,
    routing_key: optionalString(body, 'routing_key') ?? null,
  };
}

/** What subscribe_amqp_test sends; the contract does not say, so a small object that names itself. */
export const AMQP_TEST_MESSAGE = { message: 'test message from the user action log' };

export class FakeSubscriptions {
  private readonly webhooks = new Map<string, WebhookSubscription[]>();
  private readonly amqp = new Map<string, AmqpSubscription[]>();
  private nextWebhookId = 1;
  private nextAmqpId = 1;

  /** @param sendTest publishes subscribe_amqp_test's message; rejects when the broker cannot be reached or refuses it. */
  constructor(private readonly sendTest: (target: AmqpTestTarget) => Promise<void>) {}

  webhooksOf(client: string): WebhookSubscription[] {
    return this.webhooks.get(client) ?? [];
  }

  amqpOf(client: string): AmqpSubscription[] {
    return this.amqp.get(client) ?? [];
  }

  /** Answers a request of `client` to a subscription endpoint; throws QueryError for what the API refuses with 422. */
  async answer(
    route: SubscriptionRoute,
    method: string,
    client: string,
    query: URLSearchParams,
    body: JsonObject,
  ): Promise<SubscriptionAnswer> {
    switch (route.action) {
      case 'subscribe': {
        // Read before an id is taken: a refused body uses none.
        const subscription = readWebhook(body);
        this.webhooks.set(client, [...this.webhooksOf(client), { id: this.nextWebhookId++, ...subscription }]);
        return { status: 204 };
      }
      case 'subscriptions_list':
        return { status: 200, body: this.page(this.webhooksOf(client), query) };
      case 'unsubscribe':
        this.webhooks.delete(client);
        return { status: 204 };
      case 'subscribe_amqp': {
        const subscription = readAmqp(body);
        this.amqp.set(client, [...this.amqpOf(client), { id: this.nextAmqpId++, ...subscription }]);
        return { status: 204 };
      }
      case 'amqp_subscriptions_list':
        return { status: 200, body: this.page(this.amqpOf(client), query) };
      case 'amqp_subscription':
        return this.answerOne(client, route.rawId!, method === 'PATCH' ? readAmqpUpdate(body) : undefined);
      case 'subscribe_amqp_test':
        return this.answerTest(readAmqpTest(body));
      case 'unsubscribe_amqp':
        this.amqp.delete(client);
        return { status: 204 };
    }
  }

  /** The listing's page: limit 1 to 1000 (1000 when absent), offset from 0, in the order they were made. */
  private page<T>(items: T[], query: URLSearchParams): { count: number; results: T[] } {
    const paging = readPaging(query, 1000);
    return pageOf(
      items.map((item) => ({ ...item })),
      items.length,
      paging,
    );
  }

  /** GET (no update) or PATCH of one AMQP subscription of the client; another client's is not found, as a missing one is. */
  private answerOne(client: string, rawId: string, update: Partial<AmqpSubscription> | undefined): SubscriptionAnswer {
    if (!/^\d{1,15}$/.test(rawId)) throw new QueryError(`subscription_id: must be an integer (got ${JSON.stringify(rawId)})`);
    const subscription = this.amqpOf(client).find((s) => s.id === Number(rawId));
    if (!subscription) return { status: 404, exceptionClass: 'NotFoundError', message: `Subscription ${rawId} not found` };
    if (update) Object.assign(subscription, update);
    return { status: 200, body: { ...subscription } };
  }

  private async answerTest(target: AmqpTestTarget): Promise<SubscriptionAnswer> {
    try {
      await this.sendTest(target);
      return { status: 204 };
    } catch (error) {
      return { status: 400, exceptionClass: 'BadRequest', message: `test message not sent: ${(error as Error).message}` };
    }
  }
}
