// `push list` and `push unsubscribe`: the audit-log push subscriptions of each
// account's Gcore client, and their removal. Gcore's unsubscribe takes no id
// and removes every subscription of the client (of every URL, or every broker
// for AMQP), so it is refused while one that is not this deployment's is
// listed, unless --force. The workers subscribe again while AUDIT_PUSH_URL (or
// the account's broker) is set, so that goes first.
import { parseArgs } from 'node:util';
import { withKeys, type KeyedAccount } from '../config/accounts.js';
import { loadConfig, type Config } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { GcoreClient } from '../gcore/gcore-client.js';
import {
  amqpTarget,
  brokerHost,
  listSubscriptions,
  webhookTarget,
  type ListedSubscription,
  type PushTarget,
} from '../audit-log/push-subscriptions.js';
import { openStore } from '../queues/services.js';
import { loadAccounts } from '../sql/accounts.js';
import { recordSubscriptionCheck } from '../sql/auditPush.js';
import { inert } from '../ops/log-format.js';
import type { CommandContext } from './context.js';

const SUBCOMMANDS = ['list', 'unsubscribe'];

/** One kind of subscription as the command handles it: how to list, read and remove them, and this deployment's target when it has one. */
interface Kind {
  name: 'webhook' | 'amqp';
  listPath: string;
  unsubscribePath: string;
  read(entry: Record<string, unknown>): ListedSubscription;
  configured: PushTarget | undefined;
}

/** The kinds of subscription an account's client may hold, each read as this deployment's or not. */
function kindsOf(config: Config, account: KeyedAccount): Kind[] {
  const push = config.auditPush;
  const webhook = push ? webhookTarget(push.url, push.headerValue) : undefined;
  const amqp = account.amqp ? amqpTarget(account.amqp.connectionString, account.amqp.exchange, account.amqp.routingKey) : undefined;
  const foreign = (target: string): ListedSubscription => ({ target, wanted: false, ours: false });
  return [
    {
      name: 'webhook',
      listPath: 'subscriptions_list',
      unsubscribePath: 'unsubscribe',
      read: (entry) => webhook?.read(entry) ?? foreign(typeof entry.url === 'string' ? entry.url : '(no url)'),
      configured: webhook,
    },
    {
      name: 'amqp',
      listPath: 'amqp_subscriptions_list',
      unsubscribePath: 'unsubscribe_amqp',
      read: (entry) =>
        amqp?.read(entry) ??
        foreign(
          `${typeof entry.connection_string === 'string' ? brokerHost(entry.connection_string) : '(no broker)'} exchange ${String(entry.exchange)}`,
        ),
      configured: amqp,
    },
  ];
}

export async function pushCommand({ args, print }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { account: { type: 'string' }, force: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [sub, ...rest] = positionals;
  if (!sub || !SUBCOMMANDS.includes(sub) || rest.length > 0)
    throw new ConfigError('push arguments', [
      `expected one of: push ${SUBCOMMANDS.join(', push ')} (got ${JSON.stringify(positionals.join(' '))})`,
    ]);
  if (values.force && sub !== 'unsubscribe') throw new ConfigError('push flags', ['--force: only with push unsubscribe']);
  const config = loadConfig();
  const store = await openStore(config, 2, 'read');
  try {
    const configured = await loadAccounts(store.sql);
    const chosen = values.account === undefined ? configured : configured.filter((a) => a.name === values.account);
    if (chosen.length === 0)
      throw new ConfigError('push flags', [
        `--account: no account ${JSON.stringify(values.account)} is configured: one of ${configured.map((a) => a.name).join(', ')}`,
      ]);
    let refused = 0;
    for (const account of withKeys(chosen, process.env, 'the accounts of the targets file last loaded')) {
      const client = new GcoreClient({
        baseUrl: account.baseUrl ?? config.baseUrl,
        apiKey: account.apiKey,
        timeoutMs: config.requestTimeoutMs,
        maxResponseBytes: config.maxResponseBytes,
        sentSecrets: [config.auditPush?.headerValue, account.amqp?.connectionString].filter((s): s is string => s !== undefined),
      });
      try {
        for (const kind of kindsOf(config, account)) {
          const subscriptions = (await listSubscriptions(client, kind.listPath)).map((entry) => kind.read(entry));
          print(`account ${account.name}, ${kind.name}: ${subscriptions.length} subscription(s)`);
          for (const s of subscriptions) print(`  ${inert(s.target)}${s.ours ? ' (this deployment)' : ''}`);
          if (sub !== 'unsubscribe' || subscriptions.length === 0) continue;
          const foreign = subscriptions.filter((s) => !s.ours);
          if (foreign.length > 0 && !values.force) {
            print(
              `  refused: Gcore's unsubscribe removes every ${kind.name} subscription of the client, and ${foreign.length} is not this deployment's; --force removes them all`,
            );
            refused += 1;
            continue;
          }
          await client.subscriptionCall({ method: 'POST', path: kind.unsubscribePath });
          // Said in status; a worker still configured for it subscribes again at its next retry (5 minutes).
          if (kind.configured) {
            await recordSubscriptionCheck(store.sql, account.name, {
              kind: kind.name,
              target: kind.configured.target,
              subscribed: false,
              problem: 'unsubscribed by `push unsubscribe`',
            });
          }
          print(`  unsubscribed: all ${subscriptions.length}`);
        }
      } finally {
        client.close();
      }
    }
    return refused > 0 ? 1 : 0;
  } finally {
    await store.close();
  }
}
