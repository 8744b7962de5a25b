import { IMPLIED_ACCOUNT, type Account, type AmqpPush } from '../config/accounts.js';
import type { Sql } from '../db/db.js';

/** The accounts the last reconcile configured, by name; the implied account before any reconcile wrote one. */
export async function loadAccounts(sql: Sql): Promise<Account[]> {
  const rows = await sql<
    Array<{ name: string; apiKeyEnv: string; rateLimitPerSecond: number | null; baseUrl: string | null; amqpPush: AmqpPush | null }>
  >`
    SELECT name, api_key_env AS "apiKeyEnv", rate_limit_per_second AS "rateLimitPerSecond", base_url AS "baseUrl",
      audit_push_amqp AS "amqpPush"
    FROM accounts ORDER BY name`;
  if (rows.length === 0) return [IMPLIED_ACCOUNT];
  return rows.map((row) => ({
    name: row.name,
    apiKeyEnv: row.apiKeyEnv,
    rateLimitPerSecond: row.rateLimitPerSecond ?? undefined,
    baseUrl: row.baseUrl ?? undefined,
    amqpPush: row.amqpPush ?? undefined,
  }));
}
