// Audit-log wake-ups over AMQP: Gcore publishes each new entry of an account's
// log to an exchange on a broker the customer runs (subscribe_amqp); this
// consumes from the deployment's own queue, bound to that exchange and routing
// key, and wakes the account's follower once per message. A message is only a
// signal: its body is never read (the follower reads the log from its cursor,
// as a poll does), so the queue is bounded and old signals are dropped. A
// message is acknowledged only once the wake-up is taken, so one delivered to a
// worker that dies first goes to another. Several workers consume the one queue;
// each message wakes one of them. The broker may be away for long: the consumer
// reconnects with backoff for as long as it runs, reports each change of state,
// and never throws; the URL's password never reaches a log line or a state.
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { redactUrl } from '../config/config.js';
import type { Logger } from '../ops/logger.js';
import { secretScrubber } from '../ops/secret-scrub.js';
import { BROKER_BACKOFF, WAKE_REQUEUE_MS, backoffMs } from '../work/retry-policy.js';

/** Whether the consumer is consuming, since when, and if not, the last reason why not. */
export type BrokerState = { connected: true; since: Date } | { connected: false; since: Date; problem: string };

export interface AmqpWakeOptions {
  /** The broker this worker consumes from (amqp: or amqps:, credentials in it). */
  url: string;
  /** The exchange Gcore publishes to; declared (durable, topic) if the broker has none of that name. */
  exchange: string;
  routingKey: string;
  /** This deployment's queue: durable, shared by its workers. */
  queue: string;
  logger: Logger;
  /** Wakes the account's follower; a message is acknowledged once this resolves, and goes back to the queue if it throws. */
  wake(): Promise<void>;
  /** Each change of state (and each new reason while away); never before the first connection attempt has ended. */
  onState(state: BrokerState): void;
}

/**
 * The queue's bounds. A wake-up an hour old, or the hundred-and-first waiting,
 * tells the follower nothing the ones kept (or its next poll) do not, so an
 * idle deployment's queue stays small: expired or overflowing messages are
 * dropped, the oldest first. The broker refuses to declare a queue again with
 * other arguments, so changing these needs the queue deleted first.
 */
const QUEUE_ARGUMENTS = { 'x-message-ttl': 60 * 60_000, 'x-max-length': 100, 'x-overflow': 'drop-head' } as const;
/** Messages a worker holds unacknowledged: a few, so a wake-up in progress does not hold up the next, and the rest stay for other workers. */
const PREFETCH = 4;
/** The socket and the AMQP handshake must answer within this; a host that accepts and says nothing counts as away. */
const CONNECT_TIMEOUT_MS = 15_000;
/** stop() waits this long for the broker to confirm the close; past it the socket is dropped, which the broker also takes as a close. */
const CLOSE_TIMEOUT_MS = 5000;
/** A problem is a line for status and /readyz, not a report: the broker's reason is cut to this. */
const PROBLEM_MAX_CHARS = 300;

/** The exchanges no queue can be bound to (the default exchange and its alias): they would never route a wake-up here. */
const UNBINDABLE_EXCHANGES = new Set(['', 'amq.default']);

/** Consumes wake-ups until stopped: the consumer connects at once, in the background. */
export function startAmqpWake(options: AmqpWakeOptions): { stop(): Promise<void> } {
  if (UNBINDABLE_EXCHANGES.has(options.exchange)) {
    throw new Error(
      `AMQP wake-ups: no queue can be bound to the default exchange ("${options.exchange}"); name the exchange Gcore publishes to`,
    );
  }
  if (options.queue === '')
    throw new Error('AMQP wake-ups: name the queue (the broker would name one per connection, which workers cannot share)');
  return new AmqpWake(options);
}

/** The consumer of one connection: `lost` resolves with why it ended. */
interface Session {
  model: ChannelModel;
  channel?: Channel;
  consumerTag?: string;
  lost: Promise<string>;
}

class AmqpWake {
  private readonly logger: Logger;
  /** The URL's password taken out of any text that leaves this module (amqplib's errors may quote the URL). */
  private readonly scrub: (text: string) => string;
  private readonly where: string;
  private readonly stopping = new AbortController();
  private session: Session | undefined;
  private state: BrokerState | undefined;
  private readonly loop: Promise<void>;

  constructor(private readonly options: AmqpWakeOptions) {
    this.logger = options.logger.child({ exchange: options.exchange, routing_key: options.routingKey, queue: options.queue });
    this.scrub = passwordScrubber(options.url);
    this.where = this.scrub(redactUrl(options.url));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.stopping.abort();
      const session = this.session;
      if (session) await this.close(session);
    }
    await this.loop;
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Connects, consumes until the connection is lost, and again after a backoff, until stopped. */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let problem: string;
      try {
        const session = await this.open();
        if (this.stopped) break;
        failures = 0;
        this.reportConnected();
        this.logger.info({ broker: this.where }, 'audit push (AMQP): consuming wake-ups');
        problem = await session.lost;
        void this.close(session);
      } catch (error) {
        problem = this.describe(error);
      }
      if (this.stopped) break;
      failures += 1;
      const wait = backoffMs(BROKER_BACKOFF, failures);
      // Said once per reason: a broker away for an hour is tried a hundred times.
      const level = this.reportAway(problem) ? 'warn' : 'debug';
      this.logger[level]({ broker: this.where, problem, retry_in_ms: wait }, 'audit push (AMQP): broker away; will connect again');
      await delay(wait, undefined, { signal: this.stopping.signal }).catch(() => {});
    }
  }

  /** One connection, consuming; it throws if any step fails (and then closes what it opened). */
  private async open(): Promise<Session> {
    const { connect } = await import('amqplib');
    const connecting = connect(this.options.url, { timeout: CONNECT_TIMEOUT_MS });
    const model = await this.unlessStopped(connecting);
    if (!model) {
      // stop() does not wait out a connection attempt: one that ends after it is closed at once.
      connecting
        .then((late) => {
          late.on('error', () => {});
          return late.close();
        })
        .catch(() => {});
      throw new Error('stopped');
    }
    let markLost!: (why: string) => void;
    const lost = new Promise<string>((resolve) => (markLost = resolve));
    // 'error' comes before 'close' and says more; the first reason heard is kept.
    model.on('error', (error: unknown) => markLost(this.describe(error)));
    model.on('close', (error?: unknown) => markLost(error ? this.describe(error) : 'the connection was closed'));
    const session: Session = { model, lost };
    this.session = session;
    try {
      if (this.stopped) throw new Error('stopped');
      const channel = await model.createChannel();
      session.channel = channel;
      channel.on('error', (error: unknown) => markLost(this.describe(error)));
      // A connection closing closes its channels first, and says why only after: its reason is the one to keep.
      channel.on('close', () => setImmediate(() => markLost('the channel was closed')));
      await this.ensureExchange(model, channel);
      const { queue, exchange, routingKey } = this.options;
      await step(`declaring the queue ${queue}`, channel.assertQueue(queue, { durable: true, arguments: QUEUE_ARGUMENTS }));
      await step(`binding the queue to the exchange ${exchange}`, channel.bindQueue(queue, exchange, routingKey));
      await channel.prefetch(PREFETCH);
      const { consumerTag } = await step(
        `consuming from the queue ${queue}`,
        channel.consume(queue, (message) => {
          // The broker cancels a consumer whose queue was deleted: a new connection declares it again.
          if (message === null) markLost('the broker cancelled the consumer (was the queue deleted?)');
          else void this.deliver(channel, message);
        }),
      );
      session.consumerTag = consumerTag;
      return session;
    } catch (error) {
      await this.close(session);
      throw error;
    }
  }

  /** What `promise` resolves to, or undefined as soon as stop() is called. */
  private unlessStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    const { signal } = this.stopping;
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      const onStop = () => resolve(undefined);
      // Removed again: a broker away for days is tried thousands of times, each adding a listener.
      signal.addEventListener('abort', onStop, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onStop));
    });
  }

  /**
   * The exchange is the customer's, and normally there already. Looked for on
   * a channel of its own, since a failed look closes its channel; if absent,
   * declared as a topic exchange (routing keys may then be patterns), durable
   * so that it outlives a broker restart.
   */
  private async ensureExchange(model: ChannelModel, channel: Channel): Promise<void> {
    const { exchange } = this.options;
    const probe = await model.createChannel();
    probe.on('error', () => {});
    try {
      await probe.checkExchange(exchange);
      await probe.close();
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 404) throw new Error(`looking for the exchange ${exchange}: ${(error as Error).message}`);
    }
    await step(`declaring the exchange ${exchange}`, channel.assertExchange(exchange, 'topic', { durable: true }));
    this.logger.info({ broker: this.where }, 'audit push (AMQP): the exchange was not on the broker; declared it (durable, topic)');
  }

  /**
   * Wakes the follower, then acknowledges. A wake that throws sends the
   * message back to the queue after a pause. Nothing here throws: on a channel
   * closed meanwhile the acknowledgement is moot, as the broker has already
   * put the message back for the next consumer.
   */
  private async deliver(channel: Channel, message: ConsumeMessage): Promise<void> {
    // Delivered as the consumer was being cancelled: the close puts it back for another worker.
    if (this.stopped) return;
    try {
      await this.options.wake();
    } catch (error) {
      this.logger.warn(
        { error: this.describe(error), retry_in_ms: WAKE_REQUEUE_MS },
        'audit push (AMQP): the wake-up failed; the message goes back to the queue',
      );
      await delay(WAKE_REQUEUE_MS, undefined, { signal: this.stopping.signal }).catch(() => {});
      settle(() => channel.nack(message, false, true));
      return;
    }
    settle(() => channel.ack(message));
  }

  /** Cancels the consumer and closes the connection, within CLOSE_TIMEOUT_MS: a broker that does not answer has its socket dropped. */
  private async close(session: Session): Promise<void> {
    if (this.session === session) this.session = undefined;
    const { model, channel, consumerTag } = session;
    const graceful = (async () => {
      if (channel && consumerTag !== undefined) await channel.cancel(consumerTag).catch(() => {});
      await channel?.close().catch(() => {});
      await model.close().catch(() => {});
      return 'closed' as const;
    })();
    const timer = new AbortController();
    const late = delay(CLOSE_TIMEOUT_MS, 'late' as const, { signal: timer.signal }).catch(() => 'closed' as const);
    const outcome = await Promise.race([graceful, late]);
    timer.abort();
    // amqplib's socket is not in its types; destroying it ends the connection without the broker's answer.
    if (outcome === 'late') (model.connection as { stream?: Duplex }).stream?.destroy();
  }

  private reportConnected(): void {
    if (this.state?.connected !== true) this.setState({ connected: true, since: new Date() });
  }

  /** Reports the broker away for `problem`, since it went away; false if that was already the state. */
  private reportAway(problem: string): boolean {
    const previous = this.state;
    if (previous?.connected === false && previous.problem === problem) return false;
    this.setState({ connected: false, since: previous?.connected === false ? previous.since : new Date(), problem });
    return true;
  }

  private setState(state: BrokerState): void {
    this.state = state;
    try {
      this.options.onState(state);
    } catch (error) {
      this.logger.warn({ error: this.describe(error) }, 'audit push (AMQP): reporting the broker state failed');
    }
  }

  /** An error as one short line without the URL's password. */
  private describe(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    const line = this.scrub(text).replace(/\s+/g, ' ').trim() || 'unknown error';
    return line.length > PROBLEM_MAX_CHARS ? `${line.slice(0, PROBLEM_MAX_CHARS - 1)}…` : line;
  }
}

/** Takes the URL's password out of a text, in any spelling (as written, decoded, escaped); a URL without one changes nothing. */
function passwordScrubber(url: string): (text: string) => string {
  let password = '';
  try {
    password = new URL(url).password;
  } catch {
    // An unparseable URL fails to connect; its text is never shown (redactUrl).
  }
  if (password === '') return (text) => text;
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // A stray % is taken as written.
  }
  const scrubbers = [secretScrubber(decoded), secretScrubber(password)];
  return (text) => scrubbers.reduce((out, scrub) => scrub(out), text);
}

/** Says which step of the setup failed. */
async function step<T>(what: string, action: Promise<T>): Promise<T> {
  try {
    return await action;
  } catch (error) {
    throw new Error(`${what}: ${(error as Error).message}`);
  }
}

/** An acknowledgement on a channel that may have closed meanwhile (amqplib then throws at once). */
function settle(send: () => void): void {
  try {
    send();
  } catch {
    // The broker put the message back when the channel closed.
  }
}
