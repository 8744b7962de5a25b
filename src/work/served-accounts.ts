// The accounts a worker process serves, following the targets file: one it
// gained is served once seen, if this process has its key; one whose key
// variable, limit, base URL or AMQP push changed is served anew with them. One it
// dropped is still served (its queued jobs drain) until the process restarts.
import { keyAccount, type Account, type AmqpPush, type KeyedAccount } from '../config/accounts.js';
import type { ProcessContext } from './account-context.js';
import { startAccountWork, type AccountWork } from './account-work.js';
import { loadAccounts } from '../sql/accounts.js';

/** Whether an account is served as it was: the same key variable, limit, base URL and AMQP push. */
const sameSettings = (a: Account, b: Account) =>
  a.apiKeyEnv === b.apiKeyEnv &&
  a.rateLimitPerSecond === b.rateLimitPerSecond &&
  a.baseUrl === b.baseUrl &&
  sameAmqpPush(a.amqpPush, b.amqpPush);

/** Field by field: the stored setting comes back from jsonb with its keys in another order. */
function sameAmqpPush(a: AmqpPush | undefined, b: AmqpPush | undefined): boolean {
  if (!a || !b) return a === b;
  const fields = ['brokerUrlEnv', 'connectionStringEnv', 'exchange', 'routingKey', 'queue'] as const;
  return fields.every((field) => a[field] === b[field]);
}

export class ServedAccounts {
  private readonly served = new Map<string, AccountWork>();
  /** Accounts of the targets file this process has no key for, and why. */
  private readonly withoutKey = new Map<string, string>();

  constructor(
    private readonly proc: ProcessContext,
    accounts: KeyedAccount[],
    /** Where keys of accounts added later are looked for (the process's environment). */
    private readonly env: Record<string, string | undefined>,
  ) {
    for (const account of accounts) this.served.set(account.name, startAccountWork(account, proc));
  }

  /** Looks at the accounts the targets file names now, and serves those it gained or changed. */
  async follow(): Promise<void> {
    const { sql, logger, config } = this.proc;
    const configured = await loadAccounts(sql);
    for (const name of this.withoutKey.keys()) if (!configured.some((a) => a.name === name)) this.withoutKey.delete(name);
    for (const account of configured) {
      const current = this.served.get(account.name);
      if (current && sameSettings(current.account, account)) continue;
      const read = keyAccount(account, this.env);
      if ('problem' in read) {
        if (this.withoutKey.get(account.name) !== read.problem) {
          logger.error({ account: account.name }, `account ${account.name} is not served by this worker: ${read.problem}`);
        }
        this.withoutKey.set(account.name, read.problem);
        continue;
      }
      this.withoutKey.delete(account.name);
      this.served.delete(account.name);
      // A restart of an account's workers waits for its jobs in flight.
      await current?.close();
      this.served.set(account.name, startAccountWork(read.account, this.proc));
      logger.info(
        { account: account.name, rate_limit_per_second: account.rateLimitPerSecond ?? config.rateLimitPerSecond },
        current ? 'serving an account whose settings the targets file changed' : 'serving an account the targets file gained',
      );
    }
  }

  /** Why accounts get no service from this process: a rejected key, or a key missing here. */
  problems(): string[] {
    return [
      ...[...this.served.values()]
        .filter((work) => work.rejected)
        .map(
          ({ account }) =>
            `rejected: account ${account.name}: the API answered 401 to ${account.apiKeyEnv}; this process takes none of its jobs until restarted with a valid key`,
        ),
      ...[...this.withoutKey].map(([name, problem]) => `no key: account ${name}: ${problem}; this process takes none of its jobs`),
    ];
  }

  async close(): Promise<void> {
    await Promise.all([...this.served.values()].map((work) => work.close()));
  }
}
