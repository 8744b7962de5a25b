// The fake's connections to the brokers of AMQP subscriptions: one per
// connection string, opened when a first message is to go there, and dropped
// when the broker closes it (or goes away) or a publish closes its channel, so
// the next message opens it again. Publishes go over a confirm channel: a
// message counts as sent once the broker has taken it.
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';

interface Link {
  connection: ChannelModel;
  channel: ConfirmChannel;
  /** Why the broker closed the channel (a missing exchange...): the publishes it fails say so, not just "channel closed". */
  closedBy?: Error;
}

/** Gcore gives up on a broker that does not answer; a test's unreachable broker fails within this. */
const CONNECT_TIMEOUT_MS = 10_000;

export class AmqpLinks {
  private readonly links = new Map<string, Promise<Link>>();

  /** How many connections are open or opening. */
  get size(): number {
    return this.links.size;
  }

  /** Publishes `content` to the exchange ('' is the default one) with the routing key; rejects when the broker does not take it. */
  async publish(connectionString: string, exchange: string, routingKey: string, content: Buffer): Promise<void> {
    const link = await this.link(connectionString);
    await new Promise<void>((resolve, reject) => {
      // Throws at once on a channel already closed; the callback has the broker's answer (or the channel's closing).
      link.channel.publish(exchange, routingKey, content, { contentType: 'application/json', persistent: true }, (error: Error | null) => {
        // amqplib calls back with an Error: "message nacked", or "channel closed" for each publish the closing fails.
        if (error === null) resolve();
        else reject(link.closedBy ?? error);
      });
    });
  }

  /** Closes every connection; a later publish opens one again. */
  async close(): Promise<void> {
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.allSettled(links.map(async (link) => (await link).connection.close()));
  }

  private link(connectionString: string): Promise<Link> {
    const known = this.links.get(connectionString);
    if (known) return known;
    const forget = () => {
      if (this.links.get(connectionString) === opening) this.links.delete(connectionString);
    };
    const opening = this.open(connectionString, forget);
    this.links.set(connectionString, opening);
    opening.catch(forget);
    return opening;
  }

  private async open(connectionString: string, forget: () => void): Promise<Link> {
    const connection = await connect(connectionString, { timeout: CONNECT_TIMEOUT_MS });
    // An 'error' is followed by 'close'; without a listener it would be thrown, and the fake must never crash on a broker.
    connection.on('error', () => {});
    connection.on('close', forget);
    try {
      const link: Link = { connection, channel: await connection.createConfirmChannel() };
      link.channel.on('error', (error: Error) => (link.closedBy = error));
      // A publish to an exchange that is not there closes the channel: open both again next time.
      link.channel.on('close', () => {
        forget();
        connection.close().catch(() => {});
      });
      return link;
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  }
}
