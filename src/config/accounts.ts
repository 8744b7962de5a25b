// Gcore accounts: each has its own API key (named by an environment variable,
// never written down here), request budget and base URL, and is its own
// failure domain (its own queues, timeline and rejected-key state). A targets
// file without `accounts` has exactly one, the implied account.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

export interface Account {
  name: string;
  /** The environment variable that holds the key, in every process that calls the API. */
  apiKeyEnv: string;
  /** Requests per second across every worker process; undefined: SYNC_RATE_LIMIT_PER_SECOND. */
  rateLimitPerSecond?: number;
  /** undefined: GCORE_BASE_URL. */
  baseUrl?: string;
  /** Gcore pushes the account's audit log to this broker too; undefined: no AMQP push. */
  amqpPush?: AmqpPush;
}

/**
 * An account's AMQP push, as the targets file gives it: the variables holding
 * the broker URLs (secrets: they carry a password), never the URLs.
 */
export interface AmqpPush {
  /** The variable holding the URL this worker consumes from (amqp:// or amqps://). */
  brokerUrlEnv: string;
  /** The variable holding the connection string given to Gcore (the same broker as Gcore reaches it); the broker URL's when absent. */
  connectionStringEnv?: string;
  /** The exchange Gcore publishes to; never the default exchange (""), to which no queue can be bound. */
  exchange: string;
  routingKey: string;
  /** This deployment's queue on the broker; QUEUE_PREFIX, "audit" and the account's name when absent. */
  queue?: string;
}

/** The variables an AMQP URL may come from: whoever edits the targets file cannot have another secret sent to a broker. */
export const AMQP_ENV_NAME = /^AUDIT_AMQP_URL(_[A-Z0-9_]+)?$/;

/** An AMQP push with its URLs from this process's environment. */
export interface AmqpPushUrls extends AmqpPush {
  brokerUrl: string;
  connectionString: string;
}

/** The account of a file that names none; its queues, timeline and schedule keys are those of releases before accounts. */
export const DEFAULT_ACCOUNT = 'default';

export const IMPLIED_ACCOUNT: Account = { name: DEFAULT_ACCOUNT, apiKeyEnv: 'GCORE_API_KEY' };

/** Names that fit a queue name, a Redis key, a metric label and a column alike. */
export const ACCOUNT_NAME = /^[a-z][a-z0-9_-]{0,39}$/;
export const ACCOUNT_NAME_RULE = 'a lowercase letter, then up to 39 lowercase letters, digits, "_" or "-"';

/**
 * The variables a key may come from: GCORE_API_KEY or GCORE_API_KEY_<SUFFIX>.
 * Whoever edits the targets file then cannot have another secret of the
 * process (DATABASE_URL, ALERT_WEBHOOK_SECRET) sent as a key.
 */
export const KEY_ENV_NAME = /^GCORE_API_KEY(_[A-Z0-9_]+)?$/;

/** Hosts that plain http may carry a key to: this machine's (a fake API, a local proxy); the key crosses no network. */
const LOCAL_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

export const KEY_URL_RULE = 'must be an https URL, or http to localhost';

/**
 * Whether an API key may be sent to `text` (GCORE_BASE_URL, an account's
 * base_url): over https, or over plain http only to this machine.
 */
export function mayCarryKey(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOCAL_HOSTS.includes(url.hostname));
  } catch {
    return false;
  }
}

/** What a character a key must not hold is, for a person to find it in the file. */
function characterName(character: string): string {
  const code = `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const names: Record<string, string> = {
    '\uFEFF': 'a byte-order mark',
    '\0': 'a NUL byte',
    '\n': 'a line break',
    '\r': 'a carriage return',
    ' ': 'a space',
    '\t': 'a tab',
  };
  return `${names[character] ?? 'the character'} (${code})`;
}

/**
 * Why `key` cannot go in the Authorization header as a Gcore key, or
 * undefined when it can: a key is printable ASCII without spaces. Node refuses
 * a header with a NUL or a line break only when the request is sent, so a BOM,
 * a blank line or a NUL left in a secret file would fail every request of the
 * account instead of the start. Names the character and where, never the key.
 */
export function keyCharacterProblem(key: string): string | undefined {
  const characters = [...key];
  const at = characters.findIndex((character) => !/^[\x21-\x7e]$/.test(character));
  if (at < 0) return undefined;
  return `holds ${characterName(characters[at]!)} at character ${at + 1} of ${characters.length}: a key is printable ASCII without spaces`;
}

/** An account with the key its environment variable holds in this process (and its AMQP push's URLs). */
export interface KeyedAccount extends Account {
  apiKey: string;
  amqp?: AmqpPushUrls;
}

type Env = Record<string, string | undefined>;

/**
 * An account's key from `env`: the variable itself, or else the file that
 * `<variable>_FILE` names (a Docker or Kubernetes secret mounted as a file),
 * without its trailing line break; or why there is none usable. A key copied
 * with its header scheme would be sent as "APIKey APIKey ..." and rejected
 * with a bare 401. The key is never quoted.
 */
export function readKey(account: Account, env: Env): { key: string } | { problem: string } {
  return readSecretVariable(account.apiKeyEnv, env, true);
}

/** A secret from the variable `name` or the file `<name>_FILE` names; an API key (`apiKey`) is also checked for its header's sake. */
function readSecretVariable(name: string, env: Env, apiKey: boolean): { key: string } | { problem: string } {
  let key = env[name];
  const file = env[`${name}_FILE`];
  if (!key && file) {
    try {
      key = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      return { problem: `${name}_FILE names ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    if (!key) return { problem: `${name}_FILE names ${file}, which is empty` };
  }
  if (!key) return { problem: `${name} is not set in this process's environment (nor ${name}_FILE)` };
  if (!apiKey)
    return URL.canParse(key) && /^amqps?:$/.test(new URL(key).protocol)
      ? { key }
      : { problem: `${name} must hold an amqp:// or amqps:// URL` };
  if (/^apikey\s/i.test(key))
    return { problem: `${name} holds "APIKey " in front of the key: give the key alone (the Authorization header adds it)` };
  const bad = keyCharacterProblem(key);
  if (bad) return { problem: env[name] ? `${name} ${bad}` : `${name}_FILE names ${file}, whose key ${bad}` };
  return { key };
}

/** An AMQP push's URLs from the environment, or why one is missing (naming the variable, never the URL). */
function readAmqpUrls(push: AmqpPush, env: Env): AmqpPushUrls | { problem: string } {
  const broker = readSecretVariable(push.brokerUrlEnv, env, false);
  if ('problem' in broker) return broker;
  const given = push.connectionStringEnv ? readSecretVariable(push.connectionStringEnv, env, false) : broker;
  if ('problem' in given) return given;
  return { ...push, brokerUrl: broker.key, connectionString: given.key };
}

/**
 * An account with its key and its AMQP push's URLs from `env`, or what is
 * missing, at its place in the account's settings (`api_key_env: ...`).
 */
export function keyAccount(account: Account, env: Env): { account: KeyedAccount } | { problem: string } {
  const read = readKey(account, env);
  if ('problem' in read) return { problem: `api_key_env: ${read.problem}` };
  const amqp = account.amqpPush && readAmqpUrls(account.amqpPush, env);
  if (amqp && 'problem' in amqp) return { problem: `audit_push_amqp: ${amqp.problem}` };
  return { account: { ...account, apiKey: read.key, ...(amqp && { amqp }) } };
}

/**
 * Every account with its key, or a ConfigError naming each account whose key
 * this process lacks: at `accounts.<name>.api_key_env` of `source`, or, for
 * the implied account, at its variable in the environment.
 */
export function withKeys(accounts: Account[], env: Env, source: string): KeyedAccount[] {
  const implied = accounts.length === 1 && accounts[0]!.name === DEFAULT_ACCOUNT && accounts[0]!.apiKeyEnv === IMPLIED_ACCOUNT.apiKeyEnv;
  const keyed: KeyedAccount[] = [];
  const problems: string[] = [];
  for (const account of accounts) {
    const read = keyAccount(account, env);
    if ('account' in read) keyed.push(read.account);
    // The implied account is named in no file: its problem says only the variable.
    else problems.push(implied ? read.problem.replace(/^api_key_env: /, '') : `accounts.${account.name}.${read.problem}`);
  }
  if (problems.length > 0) throw new ConfigError(implied ? 'environment' : source, problems);
  return keyed;
}
