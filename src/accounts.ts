// Gcore accounts: each has its own API key (named by an environment variable,
// never written down here), request budget and base URL, and is its own
// failure domain (its own queues, timeline and rejected-key state). A targets
// file without `accounts` has exactly one, the implied account.
import { ConfigError } from './errors.js';

export interface Account {
  name: string;
  /** The environment variable that holds the key, in every process that calls the API. */
  apiKeyEnv: string;
  /** Requests per second across every worker process; undefined: SYNC_RATE_LIMIT_PER_SECOND. */
  rateLimitPerSecond?: number;
  /** undefined: GCORE_BASE_URL. */
  baseUrl?: string;
}

/** The account of a file that names none; its queues, timeline and schedule keys are those of releases before accounts. */
export const DEFAULT_ACCOUNT = 'default';

export const IMPLIED_ACCOUNT: Account = { name: DEFAULT_ACCOUNT, apiKeyEnv: 'GCORE_API_KEY' };

/** Names that fit a queue name, a Redis key, a metric label and a column alike. */
export const ACCOUNT_NAME = /^[a-z][a-z0-9_-]{0,39}$/;
export const ACCOUNT_NAME_RULE = 'a lowercase letter, then up to 39 lowercase letters, digits, "_" or "-"';

/** A POSIX environment variable name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An account with the key its environment variable holds in this process. */
export interface KeyedAccount extends Account {
  apiKey: string;
}

type Env = Record<string, string | undefined>;

/** Why an account's key cannot be used from `env`, or null: unset, empty, or copied with its header scheme. */
export function keyProblem(account: Account, env: Env): string | null {
  const key = env[account.apiKeyEnv];
  if (!key) return `${account.apiKeyEnv} is not set in this process's environment`;
  // A key copied with its header scheme would be sent as "APIKey APIKey ..." and rejected with a bare 401. The key is never quoted.
  if (/^apikey\s/i.test(key))
    return `${account.apiKeyEnv} holds "APIKey " in front of the key: give the key alone (the Authorization header adds it)`;
  return null;
}

/**
 * Every account with its key, or a ConfigError naming each account whose key
 * this process lacks: at `accounts.<name>.api_key_env` of `source`, or, for
 * the implied account, at its variable in the environment.
 */
export function withKeys(accounts: Account[], env: Env, source: string): KeyedAccount[] {
  const implied = accounts.length === 1 && accounts[0]!.name === DEFAULT_ACCOUNT && accounts[0]!.apiKeyEnv === IMPLIED_ACCOUNT.apiKeyEnv;
  const problems = accounts.flatMap((account) => {
    const problem = keyProblem(account, env);
    if (!problem) return [];
    if (implied) return [env[account.apiKeyEnv] ? problem.replace(' holds', ':') : `${account.apiKeyEnv}: required to call the Gcore API`];
    return [`accounts.${account.name}.api_key_env: ${problem}`];
  });
  if (problems.length > 0) throw new ConfigError(implied ? 'environment' : source, problems);
  return accounts.map((account) => ({ ...account, apiKey: env[account.apiKeyEnv]! }));
}
