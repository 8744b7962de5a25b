// The fake API's subscriptions to the audit log and its pushes, over real HTTP
// and the real RabbitMQ (127.0.0.1:5672): subscribing, listing and
// unsubscribing as the contract (contract/gcore-cloud-api-usage.yaml) has it,
// per client; the switch that makes those endpoints want a user token; each
// new entry POSTed to a webhook receiver of the test's own and published to
// an exchange of its own; the push faults (dropped, doubled, reversed, late)
// and counters; the egress ranges.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contractImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import type { Triple } from '../src/interfaces.js';
import { startCli } from './support/cli.js';
import { contractProblems } from './support/contract-check.js';
import { contractSchemas } from './support/contract.js';
import { sparePort, waitFor } from './support/throwaway.js';

const schemas = contractSchemas('gcore-cloud-api-usage.yaml');
const BROKER = { host: '127.0.0.1', port: 5672 };
const BROKER_URL = `amqp://guest:guest@${BROKER.host}:${BROKER.port}`;
const alice = { email: 'alice@example.com' };
const PROD = { projectId: 1, regionId: 7, imageId: sampleImageId(1) };
const STAGING = { projectId: 2, regionId: 7, imageId: sampleImageId(2) };
const OTHER = { projectId: 3, regionId: 7, imageId: sampleImageId(3) };

interface Answer {
  status: number;
  text: string;
  json: () => unknown;
}

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver: keeps what it is sent, answers with the status set (204 at first). */
async function webhookReceiver() {
  const received: Received[] = [];
  let status = 204;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/gcore/push`,
    received,
    /** The ids of the entries received, in the order they came. */
    ids: () => received.map((r) => (JSON.parse(r.body) as { id: string }).id),
    answerWith: (next: number) => (status = next),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A TCP proxy in front of the broker: counts the connections made through it and cuts them all, as a broker going away would. */
async function brokerProxy() {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const server = createTcpServer((client) => {
    accepted += 1;
    const upstream = tcpConnect(BROKER.port, BROKER.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const socket of pair) {
      socket.on('error', () => {});
      socket.on('close', () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `amqp://guest:guest@127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    live: () => pairs.size,
    cut: () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

let fake: FakeGcore;
let base: string;
let receiver: Awaited<ReturnType<typeof webhookReceiver>>;

beforeEach(async () => {
  // prod and staging are two keys of one client (acme); other is a client of its own.
  fake = new FakeGcore({
    accounts: {
      prod: { apiKey: 'prod-key', projects: [1], client: 'acme' },
      staging: { apiKey: 'staging-key', projects: [2], client: 'acme' },
      other: { apiKey: 'other-key', projects: [3] },
    },
  });
  for (const triple of [PROD, STAGING, OTHER]) fake.putImage(triple, contractImage(triple));
  base = await fake.start();
  receiver = await webhookReceiver();
});

afterEach(async () => {
  await fake.stop();
  await receiver.close();
});

async function call(method: string, path: string, key: string | null, body?: unknown): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: key === null ? {} : { authorization: `APIKey ${key}` },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

const post = (path: string, key: string | null, body?: unknown) => call('POST', `/cloud/v1/user_actions/${path}`, key, body);
const get = (path: string, key: string | null) => call('GET', `/cloud/v1/user_actions/${path}`, key);
const control = (path: string, body?: unknown) => call('POST', `/__fake/${path}`, null, body);

/** A 200 answer, checked against the contract's serializer `schema`. */
async function contractAnswer(answer: Promise<Answer>, schema: string): Promise<unknown> {
  const { status, text, json } = await answer;
  expect(status, text).toBe(200);
  expect(contractProblems(json(), schemas[schema]!, schemas)).toEqual([]);
  return json();
}

const webhook = (header = 's3cret') => ({ url: receiver.url, auth_header_name: 'X-Push-Secret', auth_header_value: header });
const validation = (message: string) => ({ exception_class: 'ValidationError', message, request_id: 'fake-request' });

/** The account's log, newest first, as GET /cloud/v1/user_actions answers it. */
async function logOf(key: string): Promise<Array<Record<string, unknown>>> {
  const answer = await call('GET', '/cloud/v1/user_actions', key);
  expect(answer.status, answer.text).toBe(200);
  return (answer.json() as { results: Array<Record<string, unknown>> }).results;
}

function rename(triple: Triple, name: string): void {
  fake.renameImageAs(alice, triple, name);
}

describe('webhook subscriptions', () => {
  it('subscribe answers 204; the list is the client’s, seen by both its keys, never by another client', async () => {
    const made = await post('subscribe', 'prod-key', webhook());
    expect([made.status, made.text]).toEqual([204, '']);
    expect((await post('subscribe', 'staging-key', { ...webhook('second'), extra: 'ignored' })).status).toBe(204);
    const listing = {
      count: 2,
      results: [
        { id: 1, url: receiver.url, auth_header_name: 'X-Push-Secret', auth_header_value: 's3cret' },
        { id: 2, url: receiver.url, auth_header_name: 'X-Push-Secret', auth_header_value: 'second' },
      ],
    };
    for (const key of ['prod-key', 'staging-key'])
      expect(await contractAnswer(get('subscriptions_list', key), 'UserActionsSubscriptionCollectionSerializer')).toEqual(listing);
    expect(await contractAnswer(get('subscriptions_list', 'other-key'), 'UserActionsSubscriptionCollectionSerializer')).toEqual({
      count: 0,
      results: [],
    });
    expect(fake.subscriptionsOf('acme')).toEqual({ webhooks: listing.results, amqp: [] });
    expect((await post('subscribe', 'other-key', webhook())).status).toBe(204);
    expect(fake.subscriptionsOf('other').webhooks.map((s) => s.id)).toEqual([3]);
  });

  it('pages the list by limit and offset, and refuses what the contract does not allow with 422', async () => {
    for (const n of [1, 2, 3]) expect((await post('subscribe', 'prod-key', webhook(`h${n}`))).status).toBe(204);
    const page = async (query: string) =>
      (await contractAnswer(get(`subscriptions_list?${query}`, 'prod-key'), 'UserActionsSubscriptionCollectionSerializer')) as {
        count: number;
        results: Array<{ id: number }>;
      };
    expect(await page('limit=2')).toMatchObject({ count: 3, results: [{ id: 1 }, { id: 2 }] });
    expect((await page('limit=2&offset=2')).results.map((s) => s.id)).toEqual([3]);
    expect((await page('offset=3')).results).toEqual([]);
    for (const query of ['limit=0', 'limit=1001', 'offset=-1', 'limit=x']) {
      const answer = await get(`subscriptions_list?${query}`, 'prod-key');
      expect([answer.status, (answer.json() as { exception_class: string }).exception_class]).toEqual([422, 'ValidationError']);
    }
    const refused: Array<[unknown, string]> = [
      [{ url: receiver.url, auth_header_name: 'X-Push-Secret' }, 'auth_header_value: field required'],
      [{ auth_header_name: 'X-Push-Secret', auth_header_value: 'v' }, 'url: field required'],
      [{ ...webhook(), url: 5 }, 'url: must be a string'],
      [{ ...webhook(), auth_header_value: null }, 'auth_header_value: must be a string'],
      ['{"url":', 'body: not JSON (got "{\\"url\\":")'],
      ['[]', 'body: must be a JSON object'],
    ];
    for (const [body, message] of refused) {
      const answer = await post('subscribe', 'prod-key', body);
      expect([answer.status, answer.json()]).toEqual([422, validation(message)]);
    }
    // A refused body takes no id: the next one made is the fourth.
    await post('subscribe', 'prod-key', webhook());
    expect(fake.subscriptionsOf('acme').webhooks.map((s) => s.id)).toEqual([1, 2, 3, 4]);
  });

  it('unsubscribe removes every webhook subscription of the client (either key), and no other client’s', async () => {
    await post('subscribe', 'prod-key', webhook());
    await post('subscribe', 'staging-key', webhook());
    await post('subscribe', 'other-key', webhook());
    await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL });
    const gone = await post('unsubscribe', 'staging-key');
    expect([gone.status, gone.text]).toEqual([204, '']);
    expect((await get('subscriptions_list', 'prod-key')).json()).toEqual({ count: 0, results: [] });
    expect(fake.subscriptionsOf('acme').amqp).toHaveLength(1);
    expect(fake.subscriptionsOf('other').webhooks).toHaveLength(1);
  });

  it('wants a known key (401), and the right method (405)', async () => {
    for (const answer of [await post('subscribe', null, webhook()), await get('subscriptions_list', 'wrong-key')])
      expect([answer.status, (answer.json() as { exception_class: string }).exception_class]).toEqual([401, 'NotAuthenticated']);
    expect((await get('subscribe', 'prod-key')).status).toBe(405);
    expect((await post('subscriptions_list', 'prod-key')).status).toBe(405);
    expect(fake.subscriptionsOf('acme').webhooks).toEqual([]);
  });

  it('counts each endpoint’s requests apart from the log’s own (GET /cloud/v1/user_actions)', async () => {
    await post('subscribe', 'prod-key', webhook());
    await get('subscriptions_list', 'prod-key');
    await logOf('prod-key');
    await logOf('staging-key');
    expect(fake.requestsByEndpoint).toMatchObject({
      user_actions: 2,
      'user_actions/subscribe': 1,
      'user_actions/subscriptions_list': 1,
    });
    expect(fake.requestCount).toBe(4);
  });
});

describe('AMQP subscriptions', () => {
  it('subscribe_amqp takes a connection string alone (exchange and routing key null, no child clients), lists, gets and patches', async () => {
    expect((await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL })).status).toBe(204);
    const full = { connection_string: BROKER_URL, exchange: 'x', routing_key: 'r', receive_child_client_events: true };
    expect((await post('subscribe_amqp', 'staging-key', full)).status).toBe(204);
    const first = { id: 1, connection_string: BROKER_URL, exchange: null, routing_key: null, receive_child_client_events: false };
    expect(await contractAnswer(get('amqp_subscriptions_list', 'staging-key'), 'UserActionsSubscriptionMqCollectionSerializer')).toEqual({
      count: 2,
      results: [first, { id: 2, ...full }],
    });
    expect(
      await contractAnswer(get('amqp_subscriptions_list?offset=1', 'prod-key'), 'UserActionsSubscriptionMqCollectionSerializer'),
    ).toEqual({
      count: 2,
      results: [{ id: 2, ...full }],
    });
    expect(await contractAnswer(get('amqp_subscriptions/1', 'prod-key'), 'UserActionSubscriptionMqResponseSerializer')).toEqual(first);
    const patched = await call('PATCH', '/cloud/v1/user_actions/amqp_subscriptions/1', 'staging-key', { exchange: 'y', routing_key: 'k' });
    expect([patched.status, patched.json()]).toEqual([200, { ...first, exchange: 'y', routing_key: 'k' }]);
    expect((await get('amqp_subscriptions/1', 'prod-key')).json()).toEqual({ ...first, exchange: 'y', routing_key: 'k' });
  });

  it('refuses bodies the contract does not allow (422), an id that is not an integer (422), another client’s id (404)', async () => {
    const refused: Array<[string, unknown, string]> = [
      ['subscribe_amqp', {}, 'connection_string: field required'],
      ['subscribe_amqp', { connection_string: BROKER_URL, exchange: 5 }, 'exchange: must be a string'],
      [
        'subscribe_amqp',
        { connection_string: BROKER_URL, receive_child_client_events: 'yes' },
        'receive_child_client_events: must be true or false',
      ],
      ['subscribe_amqp_test', { exchange: 'x' }, 'connection_string: field required'],
      ['subscribe_amqp_test', { connection_string: BROKER_URL, routing_key: null }, 'routing_key: must be a string'],
    ];
    for (const [path, body, message] of refused) {
      const answer = await post(path, 'prod-key', body);
      expect([answer.status, answer.json()]).toEqual([422, validation(message)]);
    }
    await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL, exchange: 'x' });
    const nullPatch = await call('PATCH', '/cloud/v1/user_actions/amqp_subscriptions/1', 'prod-key', { exchange: null });
    expect([nullPatch.status, nullPatch.json()]).toEqual([422, validation('exchange: must be a string')]);
    expect((await get('amqp_subscriptions/one', 'prod-key')).status).toBe(422);
    const elsewhere = await get('amqp_subscriptions/1', 'other-key');
    expect([elsewhere.status, (elsewhere.json() as { exception_class: string }).exception_class]).toEqual([404, 'NotFoundError']);
    expect((await call('PATCH', '/cloud/v1/user_actions/amqp_subscriptions/2', 'prod-key', { exchange: 'y' })).status).toBe(404);
    expect(fake.subscriptionsOf('acme').amqp).toMatchObject([{ id: 1, exchange: 'x' }]);
  });

  it('unsubscribe_amqp removes every AMQP subscription of the client, and no webhook', async () => {
    await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL });
    await post('subscribe_amqp', 'staging-key', { connection_string: BROKER_URL });
    await post('subscribe_amqp', 'other-key', { connection_string: BROKER_URL });
    await post('subscribe', 'prod-key', webhook());
    const gone = await post('unsubscribe_amqp', 'prod-key');
    expect([gone.status, gone.text]).toEqual([204, '']);
    expect((await get('amqp_subscriptions_list', 'staging-key')).json()).toEqual({ count: 0, results: [] });
    expect(fake.subscriptionsOf('acme').webhooks).toHaveLength(1);
    expect(fake.subscriptionsOf('other').amqp).toHaveLength(1);
  });
});

describe('the subscription endpoints wanting a user token', () => {
  it('answer an API key 403 (or 401) with a Gcore error while every other endpoint takes it; a control endpoint sets it', async () => {
    await post('subscribe', 'prod-key', webhook());
    fake.refuseKeyOnSubscriptions(403);
    const wanted = 'API key authentication is not accepted here: a user token is required.';
    for (const answer of [
      await post('subscribe', 'prod-key', webhook()),
      await get('subscriptions_list', 'prod-key'),
      await post('unsubscribe_amqp', 'staging-key'),
    ])
      expect([answer.status, answer.json()]).toEqual([
        403,
        { exception_class: 'PermissionDenied', message: wanted, request_id: 'fake-request' },
      ]);
    expect((await call('GET', '/cloud/v1/user_actions', 'prod-key')).status).toBe(200);
    expect((await call('GET', `/cloud/v1/images/${PROD.projectId}/${PROD.regionId}/${PROD.imageId}`, 'prod-key')).status).toBe(200);

    expect((await control('subscriptions-refuse-key', { status: 401 })).status).toBe(200);
    const unauthenticated = await get('amqp_subscriptions_list', 'prod-key');
    expect([unauthenticated.status, unauthenticated.json()]).toEqual([
      401,
      { exception_class: 'NotAuthenticated', message: wanted, request_id: 'fake-request' },
    ]);
    for (const body of [{}, { status: 500 }, { status: '403' }]) {
      const answer = await control('subscriptions-refuse-key', body);
      expect([answer.status, answer.json()]).toEqual([400, { error: 'status: must be 401, 403 or null' }]);
    }
    expect((await control('subscriptions-refuse-key', { status: null })).status).toBe(200);
    expect((await get('subscriptions_list', 'prod-key')).json()).toMatchObject({ count: 1 });
  });
});

describe('egress ranges', () => {
  it('are public: listed without a key, as the contract shapes them', async () => {
    const answer = await call('GET', '/cloud/public/v1/ipranges/egress', null);
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ ranges: ['127.0.0.1/32', '::1/128'] });
    expect(contractProblems(answer.json(), schemas.IPRangesSerializer!, schemas)).toEqual([]);
    fake.egressRanges = ['203.0.113.0/24'];
    expect((await call('GET', '/cloud/public/v1/ipranges/egress', 'prod-key')).json()).toEqual({ ranges: ['203.0.113.0/24'] });
    expect(fake.requestsByEndpoint['ipranges/egress']).toBe(2);
  });
});

describe('webhook pushes', () => {
  it('POSTs each new entry of the client’s accounts, as the log answers it, with the subscription’s header', async () => {
    await post('subscribe', 'prod-key', webhook());
    rename(PROD, 'renamed-in-prod');
    await waitFor('the push of the rename', () => receiver.received.length === 1);
    const [entry] = await logOf('prod-key');
    expect(entry).toMatchObject({ action_type: 'update', action_data: { name: 'renamed-in-prod' }, email: alice.email });
    const [push] = receiver.received;
    expect(JSON.parse(push!.body)).toEqual(entry);
    expect(push!.headers).toMatchObject({ 'x-push-secret': 's3cret', 'content-type': 'application/json' });

    // staging is of the same client: its entries come to the subscription prod made; other's never do.
    rename(OTHER, 'renamed-elsewhere');
    rename(STAGING, 'renamed-in-staging');
    await waitFor('the push of the staging rename', () => receiver.received.length === 2);
    expect(JSON.parse(receiver.received[1]!.body)).toEqual((await logOf('staging-key'))[0]);
    expect(fake.pushStats()).toEqual({
      webhook: { sent: 2, failed: 0, dropped: 0, lastError: null },
      amqp: { sent: 0, failed: 0, dropped: 0, lastError: null },
      held: 0,
      amqpConnections: 0,
    });
  });

  it('counts a push the receiver refuses or that finds no receiver as failed, and never sends it again', async () => {
    await post('subscribe', 'prod-key', webhook());
    receiver.answerWith(500);
    rename(PROD, 'first');
    await waitFor('the refused push', () => fake.pushStats().webhook.failed === 1);
    expect(fake.pushStats().webhook).toEqual({ sent: 0, failed: 1, dropped: 0, lastError: 'answered 500' });
    receiver.answerWith(204);
    rename(PROD, 'second');
    // Pushes to one subscription go one after another: had the first been tried again, it would be here before the second.
    await waitFor('the second push', () => fake.pushStats().webhook.sent === 1);
    expect(receiver.received.map((r) => (JSON.parse(r.body) as { action_data: unknown }).action_data)).toEqual([
      { name: 'first' },
      { name: 'second' },
    ]);

    await post('unsubscribe', 'prod-key');
    await post('subscribe', 'prod-key', { ...webhook(), url: `http://127.0.0.1:${await sparePort()}/nobody` });
    rename(PROD, 'third');
    await waitFor('the push nobody takes', () => fake.pushStats().webhook.failed === 2);
    expect(fake.pushStats().webhook.lastError).toMatch(/ECONNREFUSED/);
    expect(receiver.received).toHaveLength(2);
  });

  it('drop sends nothing, duplicate sends twice, reorder sends the held ones newest first', async () => {
    await post('subscribe', 'prod-key', webhook());
    fake.setPushFault({ mode: 'drop' });
    rename(PROD, 'dropped');
    expect(fake.pushStats().webhook.dropped).toBe(1);
    fake.setPushFault({ mode: 'duplicate' });
    rename(PROD, 'doubled');
    await waitFor('both copies', () => receiver.received.length === 2);
    const [doubled] = await logOf('prod-key');
    expect(receiver.received.map((r) => JSON.parse(r.body))).toEqual([doubled, doubled]);

    fake.setPushFault({ mode: 'reorder', hold: 3 });
    for (const name of ['a', 'b']) rename(PROD, name);
    expect(fake.pushStats().held).toBe(2);
    rename(PROD, 'c');
    await waitFor('the three held', () => receiver.received.length === 5);
    const newest = (await logOf('prod-key')).slice(0, 3).map((e) => e.id);
    expect(receiver.ids().slice(2)).toEqual(newest);
    expect(fake.pushStats()).toMatchObject({ webhook: { sent: 5, failed: 0, dropped: 1 }, held: 0 });
  });

  it('holds pushes until a flush by control endpoint, delays them, and refuses a slip in a fault with 400', async () => {
    await post('subscribe', 'prod-key', webhook());
    expect((await control('push-fault', { mode: 'reorder' })).status).toBe(200);
    for (const name of ['a', 'b']) rename(PROD, name);
    const stats = (await call('GET', '/__fake/stats', null)).json() as { pushes: unknown };
    expect(stats.pushes).toMatchObject({ held: 2, webhook: { sent: 0 } });
    const flushed = await control('push-flush');
    expect([flushed.status, flushed.json()]).toEqual([200, { released: 2 }]);
    await waitFor('the two held', () => receiver.received.length === 2);
    expect(receiver.ids()).toEqual((await logOf('prod-key')).map((e) => e.id));

    expect((await control('push-fault', { mode: 'deliver', delayMs: 300 })).status).toBe(200);
    const renamedAt = Date.now();
    rename(PROD, 'late');
    await waitFor('the late push', () => receiver.received.length === 3);
    // A timer is never early by more than the millisecond Node rounds to.
    expect(receiver.received[2]!.at - renamedAt).toBeGreaterThanOrEqual(299);

    const slips: Array<[unknown, string]> = [
      [{}, 'mode: must be one of deliver, drop, duplicate, reorder'],
      [{ mode: 'lose' }, 'mode: must be one of deliver, drop, duplicate, reorder'],
      [{ mode: 'deliver', hold: 2 }, 'hold: only with mode reorder'],
      [{ mode: 'reorder', hold: 0 }, 'hold: must be a whole number >= 1'],
      [{ mode: 'drop', delayMs: -1 }, 'delayMs: must be a whole number >= 0'],
      [{ mode: 'drop', delayMs: 600_001 }, 'delayMs: must be at most 600000'],
    ];
    for (const [body, error] of slips) {
      const answer = await control('push-fault', body);
      expect([answer.status, answer.json()]).toEqual([400, { error }]);
    }
    fake.resetStats();
    expect(fake.pushStats().webhook).toEqual({ sent: 0, failed: 0, dropped: 0, lastError: null });
  });
});

describe('AMQP pushes', () => {
  const suffix = randomBytes(4).toString('hex');
  const exchange = `fake-push-${suffix}`;
  const routingKey = 'user-actions';
  let broker: ChannelModel;
  let channel: Channel;
  let messages: ConsumeMessage[];
  let queue: string;

  beforeEach(async () => {
    broker = await connect(BROKER_URL);
    channel = await broker.createChannel();
    await channel.assertExchange(exchange, 'direct', { durable: false });
    queue = `fake-push-${suffix}-${randomBytes(2).toString('hex')}`;
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, exchange, routingKey);
    messages = [];
    await channel.consume(queue, (message) => message && messages.push(message), { noAck: true });
  });

  afterEach(async () => {
    await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
    await broker.close();
  });

  const body = (message: ConsumeMessage) => JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;

  it('publishes each new entry to the subscription’s exchange with its routing key', async () => {
    await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL, exchange, routing_key: routingKey });
    // A routing key no queue is bound by: taken by the broker (sent), delivered nowhere.
    await post('subscribe_amqp', 'staging-key', { connection_string: BROKER_URL, exchange, routing_key: 'elsewhere' });
    rename(STAGING, 'renamed-over-amqp');
    await waitFor('the published entry', () => messages.length === 1);
    expect(body(messages[0]!)).toEqual((await logOf('staging-key'))[0]);
    expect(messages[0]!.properties.contentType).toBe('application/json');
    expect(messages[0]!.fields).toMatchObject({ exchange, routingKey });
    await waitFor('both publishes confirmed', () => fake.pushStats().amqp.sent === 2);
    expect(fake.pushStats()).toMatchObject({ amqp: { sent: 2, failed: 0, dropped: 0 }, amqpConnections: 1 });
  });

  it('sends the test message subscribe_amqp_test asks for, and answers 400 when the broker cannot be reached', async () => {
    const sent = await post('subscribe_amqp_test', 'prod-key', { connection_string: BROKER_URL, exchange, routing_key: routingKey });
    expect([sent.status, sent.text]).toEqual([204, '']);
    await waitFor('the test message', () => messages.length === 1);
    expect(body(messages[0]!)).toEqual({ message: 'test message from the user action log' });
    const nowhere = await post('subscribe_amqp_test', 'prod-key', {
      connection_string: `amqp://guest:guest@127.0.0.1:${await sparePort()}`,
    });
    expect([nowhere.status, (nowhere.json() as { exception_class: string }).exception_class]).toEqual([400, 'BadRequest']);
    expect(fake.pushStats().amqp).toEqual({ sent: 0, failed: 0, dropped: 0, lastError: null });
  });

  it('counts a publish to an exchange that is not there as failed, and publishes again after it', async () => {
    await post('subscribe_amqp', 'prod-key', { connection_string: BROKER_URL, exchange: `${exchange}-missing`, routing_key: routingKey });
    rename(PROD, 'nowhere');
    await waitFor('the failed publish', () => fake.pushStats().amqp.failed === 1);
    expect(fake.pushStats().amqp.lastError).toMatch(/NOT_FOUND/);
    const [subscription] = fake.subscriptionsOf('acme').amqp;
    await call('PATCH', `/cloud/v1/user_actions/amqp_subscriptions/${subscription!.id}`, 'prod-key', { exchange });
    rename(PROD, 'somewhere');
    await waitFor('the publish after it', () => messages.length === 1);
    expect(body(messages[0]!)).toMatchObject({ action_data: { name: 'somewhere' } });
  });

  it('keeps one connection per connection string, opens it again after the broker goes away, and closes it on stop', async () => {
    const proxy = await brokerProxy();
    try {
      await post('subscribe_amqp', 'prod-key', { connection_string: proxy.url, exchange, routing_key: routingKey });
      await post('subscribe_amqp', 'prod-key', { connection_string: proxy.url, exchange, routing_key: routingKey });
      rename(PROD, 'before');
      await waitFor('two copies, one per subscription', () => messages.length === 2);
      expect([proxy.accepted(), fake.pushStats().amqpConnections]).toEqual([1, 1]);

      proxy.cut();
      await waitFor('the fake to see the broker gone', () => fake.pushStats().amqpConnections === 0);
      rename(PROD, 'after');
      await waitFor('the entry published over a new connection', () => messages.length === 4);
      expect(messages.slice(2).map((m) => body(m).action_data)).toEqual([{ name: 'after' }, { name: 'after' }]);
      expect([proxy.accepted(), fake.pushStats().amqp.failed]).toEqual([2, 0]);

      await fake.stop();
      expect(fake.pushStats().amqpConnections).toBe(0);
      await waitFor('the connection closed', () => proxy.live() === 0);
    } finally {
      proxy.cut();
      await proxy.close();
    }
  });
});

describe('fake-api', () => {
  it('--account NAME:KEY:PROJECTS:CLIENT makes accounts of one client share subscriptions; pushes and their faults work across processes', async () => {
    const cli = startCli(
      ['fake-api', '--port', '0', '--account', 'a:a-key:1:acme', '--account', 'b:b-key:2:acme', '--account', 'c:c-key:3'],
      {},
    );
    try {
      await waitFor('fake-api to serve', () => /fake Gcore API on (http:\/\/\S+) /.test(cli.stderr() + cli.stdout()));
      base = /fake Gcore API on (http:\/\/\S+) /.exec(cli.stderr() + cli.stdout())![1]!;
      expect((await post('subscribe', 'a-key', webhook())).status).toBe(204);
      expect((await get('subscriptions_list', 'b-key')).json()).toEqual({ count: 1, results: [{ id: 1, ...webhook() }] });
      expect((await get('subscriptions_list', 'c-key')).json()).toEqual({ count: 0, results: [] });

      // The five demo images: four in project 1 (account a), one in project 2 (account b); every entry is acme's.
      expect((await control('rename-all', { email: alice.email })).json()).toEqual({ renamed: 5 });
      await waitFor('the five pushes', () => receiver.received.length === 5);
      const logged = [...(await logOf('a-key')), ...(await logOf('b-key'))].map((e) => e.id);
      expect(new Set(receiver.ids())).toEqual(new Set(logged));

      expect((await control('push-fault', { mode: 'drop' })).status).toBe(200);
      await control('rename-all', { email: alice.email });
      const stats = (await call('GET', '/__fake/stats', null)).json() as { pushes: unknown; byEndpoint: Record<string, number> };
      expect(stats.pushes).toEqual({
        webhook: { sent: 5, failed: 0, dropped: 5, lastError: null },
        amqp: { sent: 0, failed: 0, dropped: 0, lastError: null },
        held: 0,
        amqpConnections: 0,
      });
      expect(stats.byEndpoint).toMatchObject({ user_actions: 2, 'user_actions/subscribe': 1, 'user_actions/subscriptions_list': 2 });
    } finally {
      await cli.stop();
    }
    expect(receiver.received).toHaveLength(5);
  });
});
