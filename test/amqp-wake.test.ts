// Audit-log wake-ups over AMQP against a real RabbitMQ: the shared broker on
// 5672 for delivery, acknowledgement, redelivery, an absent exchange and
// competing consumers; a private node (test/support/rabbit-node.ts) for a
// broker that stops and starts again on the same port. Each test has its own
// exchange and queue, deleted after it.
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAmqpWake, type BrokerState } from '../src/audit-log/amqp-wake.js';
import { createLogger } from '../src/ops/logger.js';
import { startRabbitNode, type RabbitNode } from './support/rabbit-node.js';
import { waitFor } from './support/throwaway.js';

const SHARED = 'amqp://guest:guest@127.0.0.1:5672';

interface Names {
  exchange: string;
  routingKey: string;
  queue: string;
}

const newNames = (): Names => {
  const suffix = randomBytes(4).toString('hex');
  return { exchange: `gis-test-audit-${suffix}`, routingKey: `audit.user_actions.${suffix}`, queue: `gis-test-wake-${suffix}` };
};

/** A consumer as a worker runs one, with what it logged, the states it reported and the wakes it took. */
interface Consumer {
  lines: string[];
  states: BrokerState[];
  wakes: () => number;
  stop(): Promise<void>;
}

function startConsumer(url: string, names: Names, wake: () => Promise<void> = async () => {}): Consumer {
  const lines: string[] = [];
  const states: BrokerState[] = [];
  let wakes = 0;
  const consumer = startAmqpWake({
    url,
    ...names,
    logger: createLogger('debug', { write: (line: string) => void lines.push(line) }),
    wake: async () => {
      wakes += 1;
      await wake();
    },
    onState: (state) => void states.push(state),
  });
  return { lines, states, wakes: () => wakes, stop: () => consumer.stop() };
}

const last = (consumer: Consumer) => consumer.states.at(-1);
const connected = (consumer: Consumer) => last(consumer)?.connected === true;

/** Publishes as Gcore does, and looks at the queue as an operator would. */
class Broker {
  private constructor(private readonly model: ChannelModel) {}

  static async open(url: string): Promise<Broker> {
    const model = await connect(url);
    model.on('error', () => {});
    return new Broker(model);
  }

  async publish(names: Names, count = 1): Promise<void> {
    const channel = await this.model.createConfirmChannel();
    for (let i = 0; i < count; i++)
      channel.publish(names.exchange, names.routingKey, Buffer.from(JSON.stringify({ id: i })), { persistent: true });
    await channel.waitForConfirms();
    await channel.close();
  }

  /** Messages ready in the queue: one taken and not acknowledged is counted again once its consumer is gone. */
  async ready(queue: string): Promise<number> {
    const channel = await this.model.createChannel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close();
    }
  }

  /** Whether the exchange exists (a failed look closes its channel, so each look has its own). */
  async hasExchange(exchange: string): Promise<boolean> {
    const channel = await this.model.createChannel();
    channel.on('error', () => {});
    try {
      await channel.checkExchange(exchange);
      await channel.close();
      return true;
    } catch {
      return false;
    }
  }

  async declareExchange(exchange: string): Promise<void> {
    const channel = await this.model.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.close();
  }

  async remove(names: Names): Promise<void> {
    const channel = await this.model.createChannel();
    await channel.deleteQueue(names.queue);
    await channel.deleteExchange(names.exchange);
    await channel.close();
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

describe('AMQP wake-ups on the shared broker', () => {
  let broker: Broker;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await Broker.open(SHARED);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Names whose exchange exists (as the customer's does), removed after the test. */
  async function customerExchange(): Promise<Names> {
    const names = newNames();
    await broker.declareExchange(names.exchange);
    cleanups.push(() => broker.remove(names));
    return names;
  }

  function consumer(names: Names, wake?: () => Promise<void>, url = SHARED): Consumer {
    const started = startConsumer(url, names, wake);
    cleanups.push(() => started.stop());
    return started;
  }

  it('wakes once per message and acknowledges it', async () => {
    const names = await customerExchange();
    const worker = consumer(names);
    await waitFor('the consumer to consume', () => connected(worker));
    await broker.publish(names);
    await waitFor('the wake-up', () => worker.wakes() === 1);
    await worker.stop();
    // Unacknowledged, the message would be back in the queue once its consumer is gone.
    expect(await broker.ready(names.queue)).toBe(0);
    expect(worker.wakes()).toBe(1);
    expect(worker.states.map((state) => state.connected)).toEqual([true]);
    expect(worker.lines.some((line) => line.includes('consuming wake-ups'))).toBe(true);
  });

  it('sends a message whose wake-up failed back to the queue, and acknowledges it once taken', async () => {
    const names = await customerExchange();
    let failures = 1;
    const worker = consumer(names, async () => {
      if (failures-- > 0) throw new Error('the follower is busy');
    });
    await waitFor('the consumer to consume', () => connected(worker));
    await broker.publish(names);
    await waitFor('the wake-up again', () => worker.wakes() === 2);
    await worker.stop();
    expect(await broker.ready(names.queue)).toBe(0);
    expect(worker.wakes()).toBe(2);
    const warning = worker.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.error === 'the follower is busy');
    expect(warning).toMatchObject({ level: 40, msg: 'audit push (AMQP): the wake-up failed; the message goes back to the queue' });
  });

  it('declares an exchange the broker does not have, and says so', async () => {
    const names = newNames();
    cleanups.push(() => broker.remove(names));
    expect(await broker.hasExchange(names.exchange)).toBe(false);
    const worker = consumer(names);
    await waitFor('the consumer to consume', () => connected(worker));
    expect(await broker.hasExchange(names.exchange)).toBe(true);
    expect(worker.lines.some((line) => line.includes('the exchange was not on the broker; declared it (durable, topic)'))).toBe(true);
    await broker.publish(names);
    await waitFor('the wake-up', () => worker.wakes() === 1);
  });

  it('shares one queue between workers: each message wakes exactly one', async () => {
    const names = await customerExchange();
    const workers = [consumer(names), consumer(names)];
    await waitFor('both consumers to consume', () => workers.every(connected));
    await broker.publish(names, 20);
    const total = () => workers.reduce((sum, worker) => sum + worker.wakes(), 0);
    await waitFor('20 wake-ups', () => total() === 20);
    for (const worker of workers) await worker.stop();
    expect(total()).toBe(20);
    expect(await broker.ready(names.queue)).toBe(0);
    // The broker hands messages to its consumers in turn.
    for (const worker of workers) expect(worker.wakes()).toBeGreaterThan(0);
  });

  it('keeps the password out of its logs and states when the broker refuses it', async () => {
    const names = await customerExchange();
    const password = `wrong-${randomBytes(6).toString('hex')}`;
    const worker = consumer(names, undefined, `amqp://guest:${password}@127.0.0.1:5672`);
    await waitFor('the refusal', () => last(worker)?.connected === false);
    await worker.stop();
    const state = last(worker);
    expect(state).toMatchObject({ connected: false, problem: expect.stringContaining('ACCESS-REFUSED') });
    expect(worker.lines.length).toBeGreaterThan(0);
    for (const text of [...worker.lines, JSON.stringify(worker.states)]) expect(text).not.toContain(password);
    expect(worker.lines.some((line) => line.includes('amqp://guest:***@127.0.0.1:5672'))).toBe(true);
  });

  it('refuses the default exchange, to which no queue can be bound', () => {
    const names = { ...newNames(), exchange: '' };
    expect(() => startConsumer(SHARED, names)).toThrow(/default exchange/);
  });
});

describe('AMQP wake-ups across a restart of the broker', () => {
  let node: RabbitNode;

  beforeAll(async () => {
    const begun = Date.now();
    node = await startRabbitNode();
    process.stderr.write(`amqp-wake: a private RabbitMQ node started in ${Date.now() - begun} ms\n`);
  });

  afterAll(async () => {
    await node?.remove();
  });

  it('says the broker is away while it is, consumes again once it is back, and stops while it is away', async () => {
    // An account of its own, with a password that must show nowhere.
    const password = `pw-${randomBytes(8).toString('hex')}`;
    await node.ctl('add_user', 'gis-wake', password);
    await node.ctl('set_permissions', '-p', '/', 'gis-wake', '.*', '.*', '.*');
    const url = `amqp://gis-wake:${password}@127.0.0.1:${node.port}`;
    const names = newNames();
    let failures = 1;
    // A wake that fails once with the URL in its message, as an error from a library may quote it.
    const worker = startConsumer(url, names, async () => {
      if (failures-- > 0) throw new Error(`could not wake through ${url}`);
    });
    try {
      await waitFor('the consumer to consume', () => connected(worker));
      let broker = await Broker.open(url);
      await broker.publish(names);
      await waitFor('the wake-up, taken the second time', () => worker.wakes() === 2);
      await broker.close();

      await node.stop();
      await waitFor('the broker reported away', () => last(worker)?.connected === false);
      // A broker shutting down closes its connections saying so: that reason is the one reported first.
      expect(worker.states.find((state) => !state.connected)).toMatchObject({ problem: expect.stringContaining('CONNECTION-FORCED') });

      await node.start();
      await waitFor('the consumer to consume again', () => connected(worker), 120_000);
      broker = await Broker.open(url);
      // The queue, its binding and the declared exchange outlived the restart (all durable).
      await broker.publish(names);
      await waitFor('the wake-up after the restart', () => worker.wakes() === 3);
      expect(await broker.ready(names.queue)).toBe(0);
      await broker.close();

      await node.stop();
      await waitFor('the broker reported away again', () => last(worker)?.connected === false);
      await worker.stop();
      const states = worker.states.map((state) => state.connected);
      expect(states[0]).toBe(true);
      expect(states.filter((up, i) => up !== states[i - 1])).toEqual([true, false, true, false]);
      for (const text of [...worker.lines, JSON.stringify(worker.states)]) expect(text).not.toContain(password);
      expect(worker.lines.some((line) => line.includes('could not wake through amqp://gis-wake:'))).toBe(true);
    } finally {
      // The node goes with its exchange and queue (afterAll).
      await worker.stop();
    }
  }, 600_000);
});
