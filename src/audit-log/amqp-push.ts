// An account's audit-log pushes over AMQP, wired to the follower: each message
// from the account's broker (amqp-wake.ts) asks for the log to be read now, the
// same wake-up a webhook push makes (requestWake: every process's follower is
// woken, the lease holder reads), messages that arrive together sharing one.
// Whether the broker is away is written for status and /readyz as it changes.
import type { AmqpPushUrls } from '../config/accounts.js';
import { Coalescer } from '../ops/coalescer.js';
import { recordBrokerState, requestWake } from '../sql/auditPush.js';
import type { AccountContext } from '../work/account-context.js';
import { startAmqpWake } from './amqp-wake.js';

/** Messages taken within this long of a wake-up share the next one. */
const WAKE_GAP_MS = 250;

/** This deployment's queue on the account's broker when the file names none. */
export function amqpQueueName(queuePrefix: string, account: string): string {
  return `${queuePrefix}.audit.${account}`;
}

export function startAmqpPush(ctx: AccountContext, amqp: AmqpPushUrls, queuePrefix: string): { stop(): Promise<void> } {
  const account = ctx.account.name;
  const wakes = new Coalescer(WAKE_GAP_MS, (count) => requestWake(ctx.sql, 'amqp', [account], count));
  let said: string | null | undefined;
  const consumer = startAmqpWake({
    url: amqp.brokerUrl,
    exchange: amqp.exchange,
    routingKey: amqp.routingKey,
    queue: amqp.queue ?? amqpQueueName(queuePrefix, account),
    logger: ctx.logger,
    async wake() {
      try {
        await wakes.add();
        ctx.metrics?.pushes.inc({ kind: 'amqp', outcome: 'accepted' });
      } catch (error) {
        ctx.metrics?.pushes.inc({ kind: 'amqp', outcome: 'failed' });
        throw error;
      }
    },
    onState(state) {
      const problem = state.connected ? null : state.problem;
      if (problem === said) return;
      said = problem;
      recordBrokerState(ctx.sql, account, problem).catch((error: Error) =>
        ctx.logger.warn({ error: error.message }, "audit log: could not record the AMQP broker's state"),
      );
    },
  });
  return {
    async stop() {
      await consumer.stop();
      await wakes.close().catch(() => {});
    },
  };
}
