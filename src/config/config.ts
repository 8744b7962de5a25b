// Settings from the environment, validated once with their defaults.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { keyCharacterProblem, KEY_URL_RULE, mayCarryKey } from './accounts.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_HOME_RULE, locateHome, type Home } from './home.js';
import { readWholeNumber } from './input-ranges.js';
import { LOG_FORMATS } from '../ops/log-format.js';

export interface Config {
  baseUrl: string;
  /** Unset: the embedded PostgreSQL under `home` (embedded-postgres.ts). */
  databaseUrl: string | undefined;
  /** Where the embedded PostgreSQL keeps its data, and why there (home.ts: GCORE_IMAGE_SYNC_HOME, else the default). */
  home: Home;
  /** Unset: the queues run on Postgres, in the deployment's own database (backend.ts), or on redisCluster. */
  redisUrl: string | undefined;
  /** Set (REDIS_CLUSTER_NODES): the queues run on this Redis Cluster (redis-keys.ts); never with redisUrl. */
  redisCluster: RedisClusterSettings | undefined;
  targetsFile: string;
  logLevel: string;
  /** Requests per second across every worker process; 0 means no limit. */
  rateLimitPerSecond: number;
  /** The longest wait a 429 may ask for that is honoured; a longer one is a recorded failure. */
  rateLimitMaxWaitMs: number;
  /** Refreshes in flight per worker process. */
  concurrency: number;
  /** Triples per refresh job: fewer, larger jobs cost less per image. */
  batchSize: number;
  /** Attempts per refresh before it is recorded as failed. */
  attempts: number;
  requestTimeoutMs: number;
  /** Largest API answer read, in bytes; a larger one is a failure, not a crash. */
  maxResponseBytes: number;
  /** Largest page of a list read, in bytes (a page holds up to 1,000 images). */
  maxPageBytes: number;
  retentionDays: number;
  /** How long a worker's claim on a job lasts without renewal: after a crash, the job is retried after about this long. */
  jobLockMs: number;
  /** How long SIGTERM waits for jobs in flight before handing them back. */
  shutdownTimeoutMs: number;
  /** Port of /healthz, /readyz and /metrics in start and worker; undefined when off. */
  httpPort: number | undefined;
  /** The address HTTP_PORT (and AUDIT_PUSH_PORT) listen on: loopback unless the operator opens it. */
  httpHost: string;
  /** Gcore pushes the audit log here (AUDIT_PUSH_URL); undefined: polling alone. */
  auditPush: AuditPushSettings | undefined;
  /** Serve the bull-board queue dashboard at /queues on HTTP_PORT. */
  queueDashboard: boolean;
  /** The read-only web view under /ui on HTTP_PORT. */
  ui: UiSettings;
  /** Where change alerts are POSTed; none when unset. */
  alertWebhookUrl: string | undefined;
  /** Signs every change alert (HMAC-SHA256); set exactly when alertWebhookUrl is. Never logged. */
  alertWebhookSecret: string | undefined;
  /** Redis key prefix for every queue, so several deployments can share one Redis; unused with the queues on Postgres. */
  queuePrefix: string;
  /** Seconds between polls of each account's audit log of user actions (audit-follower.ts); 0 turns following off. */
  auditLogPollSeconds: number;
  /** Seconds between the progress lines a worker logs while runs are open; 0 turns them off. */
  logProgressSeconds: number;
}

/** Where a Redis Cluster is and how to log in to it. */
export interface RedisClusterSettings {
  /** The nodes asked for the cluster's layout at start; the client learns the rest from them. */
  seeds: Array<{ host: string; port: number }>;
  /** An ACL user; undefined: the default user. */
  username: string | undefined;
  /** Never logged. */
  password: string | undefined;
  tls: boolean;
}

/** The web view (UI, UI_PASSWORD, UI_OPEN); who may see it is decided in src/ui/ui-access.ts. */
export interface UiSettings {
  /** UI=off turns it off. */
  enabled: boolean;
  /** HTTP basic's password (UI_PASSWORD or UI_PASSWORD_FILE); never logged. */
  password: string | undefined;
  /** UI_OPEN=1: served without a password beyond loopback, as the operator asked. */
  open: boolean;
}

/** The webhook Gcore pushes each new audit-log entry to, and how this deployment receives it. */
export interface AuditPushSettings {
  /** The public URL given to Gcore. */
  url: string;
  /** The path of `url`, which the receiver answers on. */
  path: string;
  /** The value Gcore is asked to send in the Authorization header (Bearer <AUDIT_PUSH_SECRET>). Never logged or stored. */
  headerValue: string;
  /** A port for the receiver alone (AUDIT_PUSH_PORT); undefined: it answers on HTTP_PORT. */
  port: number | undefined;
}

export const DEFAULTS = {
  baseUrl: 'https://api.gcore.com',
  /** A rule, not one path: it depends on the user (home.ts). */
  home: DEFAULT_HOME_RULE,
  targetsFile: './targets.yaml',
  logLevel: 'info',
  rateLimitPerSecond: 10,
  rateLimitMaxWaitSeconds: 900,
  concurrency: 10,
  batchSize: 50,
  attempts: 3,
  requestTimeoutMs: 30_000,
  maxResponseBytes: 1_048_576,
  maxPageBytes: 33_554_432,
  retentionDays: 30,
  jobLockMs: 30_000,
  shutdownTimeoutMs: 30_000,
  queuePrefix: 'gcore-image-sync',
  logProgressSeconds: 60,
  auditLogPollSeconds: 60,
  httpHost: '127.0.0.1',
} as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Record<string, string | undefined>;

/**
 * A whole-number setting within [min, max]. The bounds keep every value
 * inside what it flows into: timers (at most 2^31 - 1 ms, beyond which Node
 * fires them at once), Postgres integers, Redis and Postgres connections.
 */
function readInt(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  return readWholeNumber(name, text, min, max, problems) ?? fallback;
}

/** The URL in `name`, or `fallback` when unset; a problem naming the variable, never the value, which may hold a password. */
function readUrl(env: Env, name: string, fallback: string, protocols: string[], problems: string[]): string {
  const text = env[name]?.trim() || fallback;
  try {
    const url = new URL(text);
    if (!protocols.includes(url.protocol)) throw new Error();
  } catch {
    problems.push(`${name}: must be a ${protocols.join(' or ')} URL`);
  }
  return text;
}

/** GCORE_BASE_URL: every request carries the API key there, so it follows the rule of an account's base_url. */
function readBaseUrl(env: Env, problems: string[]): string {
  const text = readUrl(env, 'GCORE_BASE_URL', DEFAULTS.baseUrl, ['http:', 'https:'], problems);
  if (URL.canParse(text) && !mayCarryKey(text)) problems.push(`GCORE_BASE_URL: ${KEY_URL_RULE}: the API key is sent with every request`);
  return text.replace(/\/+$/, '');
}

/**
 * Why a webhook URL cannot be used, or undefined. Credentials in it
 * (`user:password@host`) are refused rather than sent: fetch refuses such a
 * URL and quotes it, password and all, in its error at every retry, and the
 * signature (ALERT_WEBHOOK_SECRET) is what proves an alert's origin; a
 * receiver that needs a token can take it in the URL's path or query.
 */
export function webhookUrlProblem(text: string): string | undefined {
  const url = URL.parse(text);
  if (url && (url.username || url.password))
    return 'must not hold a user name or password (user:password@host): the receiver authenticates alerts by their signature (ALERT_WEBHOOK_SECRET); a token it needs can go in the path or query';
  return undefined;
}

/** "1" on, "0" or unset off; anything else ("true", "yes") is a mistake, not silently off. */
function readSwitch(env: Env, name: string, problems: string[]): boolean {
  const text = env[name]?.trim() ?? '';
  if (!['', '0', '1'].includes(text)) problems.push(`${name}: must be 1 (on) or 0 (off) (got "${text}")`);
  return text === '1';
}

const MIN_SECRET_LENGTH = 32;

/**
 * The webhook URL and its signing secret, which go together: an unsigned
 * alert could be forged by anyone who learns the receiver's URL, and a
 * warning about it would go unread in an unattended deployment. Problems
 * name the variable, never the secret's value.
 */
function readAlertWebhook(env: Env, problems: string[]): Pick<Config, 'alertWebhookUrl' | 'alertWebhookSecret'> {
  const url = env.ALERT_WEBHOOK_URL?.trim() ? readUrl(env, 'ALERT_WEBHOOK_URL', '', ['http:', 'https:'], problems) : undefined;
  const urlProblem = url && webhookUrlProblem(url);
  if (urlProblem) problems.push(`ALERT_WEBHOOK_URL: ${urlProblem}`);
  const secret = env.ALERT_WEBHOOK_SECRET || undefined;
  if (url && !secret) {
    problems.push(
      'ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URL is set, to sign the alerts (e.g. the output of `openssl rand -hex 32`)',
    );
  } else if (secret && !url) {
    problems.push('ALERT_WEBHOOK_SECRET: set without ALERT_WEBHOOK_URL; set both or neither');
  } else if (secret && secret.length < MIN_SECRET_LENGTH) {
    problems.push(`ALERT_WEBHOOK_SECRET: must be at least ${MIN_SECRET_LENGTH} characters (has ${secret.length})`);
  }
  return { alertWebhookUrl: url, alertWebhookSecret: secret };
}

/** host:port, or [v6 address]:port; undefined when it is neither. */
function parseSeed(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : 0;
  if (!match || port < 1 || port > 65_535) return undefined;
  return { host: (match[1] ?? match[2])!, port };
}

/**
 * REDIS_CLUSTER_NODES and the settings that go with it. A cluster and one Redis
 * are different stores: both set would leave it to chance which one a process
 * uses. The prefix becomes a hash tag, so it cannot hold one of its own.
 */
function readRedisCluster(env: Env, problems: string[]): RedisClusterSettings | undefined {
  const nodes = env.REDIS_CLUSTER_NODES?.trim() ?? '';
  const username = env.REDIS_CLUSTER_USERNAME || undefined;
  const password = env.REDIS_CLUSTER_PASSWORD || undefined;
  const tls = readSwitch(env, 'REDIS_CLUSTER_TLS', problems);
  if (nodes === '') {
    const stray = [username && 'REDIS_CLUSTER_USERNAME', password && 'REDIS_CLUSTER_PASSWORD', tls && 'REDIS_CLUSTER_TLS'].filter(Boolean);
    if (stray.length > 0) problems.push(`${stray.join(', ')}: set without REDIS_CLUSTER_NODES`);
    return undefined;
  }
  const seeds = nodes.split(',').map((node) => node.trim());
  const bad = seeds.filter((node) => parseSeed(node) === undefined);
  if (bad.length > 0)
    problems.push(`REDIS_CLUSTER_NODES: must be host:port seeds separated by commas (not ${bad.map((b) => `"${b}"`).join(', ')})`);
  if (env.REDIS_URL?.trim()) problems.push('REDIS_CLUSTER_NODES: set together with REDIS_URL; set one (a Redis Cluster, or one Redis)');
  if (/[{}]/.test(env.QUEUE_PREFIX ?? ''))
    problems.push('QUEUE_PREFIX: must not hold "{" or "}" with REDIS_CLUSTER_NODES: the prefix becomes part of each key\'s hash tag');
  return { seeds: seeds.flatMap((node) => parseSeed(node) ?? []), username, password, tls };
}

/** A secret from `name`, or the file `<name>_FILE` names (without its trailing line break); problems name the variable and file, never the value. */
function readSecret(env: Env, name: string, problems: string[]): string | undefined {
  const file = env[`${name}_FILE`]?.trim();
  if (env[name] && file) problems.push(`${name}: set together with ${name}_FILE; set one`);
  if (env[name] || !file) return env[name] || undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '') || undefined;
  } catch (error) {
    problems.push(`${name}_FILE names ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

const MIN_UI_PASSWORD_LENGTH = 12;

/** UI, UI_PASSWORD (or _FILE) and UI_OPEN; a password and an explicit opening contradict each other. */
function readUi(env: Env, problems: string[]): UiSettings {
  const text = env.UI?.trim() ?? '';
  if (!['', 'on', 'off'].includes(text)) problems.push(`UI: must be on or off (got "${text.slice(0, 100)}")`);
  const password = readSecret(env, 'UI_PASSWORD', problems);
  const open = readSwitch(env, 'UI_OPEN', problems);
  if (password !== undefined) {
    if (password.length < MIN_UI_PASSWORD_LENGTH)
      problems.push(`UI_PASSWORD: must be at least ${MIN_UI_PASSWORD_LENGTH} characters (has ${password.length})`);
    const bad = keyCharacterProblem(password);
    if (bad) problems.push(`UI_PASSWORD ${bad.replace('a key is', 'a password is')}`);
    if (open) problems.push('UI_OPEN: set together with UI_PASSWORD; set one (a password, or open to anyone who reaches HTTP_HOST)');
  }
  return { enabled: text !== 'off', password, open };
}

/** Paths HTTP_PORT answers itself, which a push receiver's path must not take. */
const OWN_PATHS = ['/healthz', '/readyz', '/metrics', '/queues', '/ui'];

/** HTTP_HOST: an IP address or a host name the server can bind. */
function readHttpHost(env: Env, problems: string[]): string {
  const host = env.HTTP_HOST?.trim() || DEFAULTS.httpHost;
  if (isIP(host) === 0 && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/.test(host))
    problems.push(`HTTP_HOST: must be an IP address (0.0.0.0 or :: for every interface) or a host name (got "${host.slice(0, 100)}")`);
  return host;
}

/**
 * AUDIT_PUSH_URL and what goes with it: the secret Gcore sends back (Bearer,
 * compared in constant time), a listening receiver, and a follower to wake. A
 * push is only a signal to read the log, but the secret keeps anyone who
 * learns the URL from making every worker read it at will.
 */
function readAuditPush(env: Env, pollSeconds: number, httpPort: number | undefined, problems: string[]): AuditPushSettings | undefined {
  const text = env.AUDIT_PUSH_URL?.trim() ?? '';
  const secret = readSecret(env, 'AUDIT_PUSH_SECRET', problems);
  const port = env.AUDIT_PUSH_PORT?.trim() ? readInt(env, 'AUDIT_PUSH_PORT', 0, 1, 65_535, problems) : undefined;
  if (text === '') {
    const stray = [secret && 'AUDIT_PUSH_SECRET', port && 'AUDIT_PUSH_PORT'].filter(Boolean);
    if (stray.length > 0) problems.push(`${stray.join(', ')}: set without AUDIT_PUSH_URL`);
    return undefined;
  }
  const url = URL.parse(text);
  if (!url || !mayCarryKey(text)) problems.push(`AUDIT_PUSH_URL: ${KEY_URL_RULE}: Gcore sends the push secret there`);
  else if (url.username || url.password)
    problems.push('AUDIT_PUSH_URL: must not hold a user name or password: pushes are proven by AUDIT_PUSH_SECRET');
  if (!secret)
    problems.push(
      'AUDIT_PUSH_SECRET: required with AUDIT_PUSH_URL (or AUDIT_PUSH_SECRET_FILE): Gcore sends it with each push (e.g. `openssl rand -hex 32`)',
    );
  else if (secret.length < MIN_SECRET_LENGTH)
    problems.push(`AUDIT_PUSH_SECRET: must be at least ${MIN_SECRET_LENGTH} characters (has ${secret.length})`);
  else {
    const bad = keyCharacterProblem(secret);
    if (bad) problems.push(`AUDIT_PUSH_SECRET ${bad.replace('a key is', 'a secret is')}`);
  }
  if (url && OWN_PATHS.some((own) => url.pathname === own || url.pathname.startsWith(`${own}/`)))
    problems.push(
      `AUDIT_PUSH_URL: its path ${url.pathname} is one the HTTP server answers itself (${OWN_PATHS.join(', ')}): give the receiver a path of its own`,
    );
  if (pollSeconds === 0)
    problems.push('AUDIT_PUSH_URL: set while AUDIT_LOG_POLL_SECONDS is 0: a push wakes the audit-log follower, which is off');
  if (port !== undefined && port === httpPort)
    problems.push('AUDIT_PUSH_PORT: the same as HTTP_PORT; leave it unset to receive on HTTP_PORT');
  return { url: text, path: url?.pathname ?? '/', headerValue: `Bearer ${secret ?? ''}`, port };
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const logLevel = env.LOG_LEVEL?.trim() || DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  const logFormat = env.LOG_FORMAT?.trim();
  if (logFormat && !(LOG_FORMATS as readonly string[]).includes(logFormat))
    problems.push(
      `LOG_FORMAT: must be ${LOG_FORMATS.join(' or ')}, or unset for pretty on a terminal and JSON otherwise (got "${logFormat}")`,
    );
  const config: Config = {
    baseUrl: readBaseUrl(env, problems),
    databaseUrl: env.DATABASE_URL?.trim() ? readUrl(env, 'DATABASE_URL', '', ['postgres:', 'postgresql:'], problems) : undefined,
    home: locateHome(env),
    redisUrl: env.REDIS_URL?.trim() ? readUrl(env, 'REDIS_URL', '', ['redis:', 'rediss:'], problems) : undefined,
    redisCluster: readRedisCluster(env, problems),
    targetsFile: env.TARGETS_FILE?.trim() || DEFAULTS.targetsFile,
    logLevel,
    rateLimitPerSecond: readInt(env, 'SYNC_RATE_LIMIT_PER_SECOND', DEFAULTS.rateLimitPerSecond, 0, 10_000, problems),
    // The wait becomes a timer: a day keeps it far inside 2^31 - 1 ms, and a longer ask is better recorded as a failure.
    rateLimitMaxWaitMs: 1000 * readInt(env, 'SYNC_RATE_LIMIT_MAX_WAIT_SECONDS', DEFAULTS.rateLimitMaxWaitSeconds, 1, 86_400, problems),
    // Each process opens concurrency + 4 Postgres connections: more than a thousand is past any server's max_connections.
    concurrency: readInt(env, 'SYNC_CONCURRENCY', DEFAULTS.concurrency, 1, 1000, problems),
    batchSize: readInt(env, 'SYNC_BATCH_SIZE', DEFAULTS.batchSize, 1, 1000, problems),
    attempts: readInt(env, 'SYNC_ATTEMPTS', DEFAULTS.attempts, 1, 20, problems),
    requestTimeoutMs: readInt(env, 'SYNC_REQUEST_TIMEOUT_MS', DEFAULTS.requestTimeoutMs, 100, 600_000, problems),
    maxResponseBytes: readInt(env, 'SYNC_MAX_RESPONSE_BYTES', DEFAULTS.maxResponseBytes, 1024, 104_857_600, problems),
    maxPageBytes: readInt(env, 'SYNC_MAX_PAGE_BYTES', DEFAULTS.maxPageBytes, 65_536, 1_073_741_824, problems),
    // make_interval(days => n) takes an int, and now() less a million years is no timestamp.
    retentionDays: readInt(env, 'SYNC_RETENTION_DAYS', DEFAULTS.retentionDays, 1, 36_500, problems),
    jobLockMs: readInt(env, 'SYNC_JOB_LOCK_MS', DEFAULTS.jobLockMs, 1000, 3_600_000, problems),
    shutdownTimeoutMs: readInt(env, 'SYNC_SHUTDOWN_TIMEOUT_MS', DEFAULTS.shutdownTimeoutMs, 0, 3_600_000, problems),
    httpPort: env.HTTP_PORT?.trim() ? readInt(env, 'HTTP_PORT', 0, 1, 65_535, problems) : undefined,
    httpHost: readHttpHost(env, problems),
    auditPush: undefined,
    queueDashboard: readSwitch(env, 'QUEUE_DASHBOARD', problems),
    ui: readUi(env, problems),
    ...readAlertWebhook(env, problems),
    queuePrefix: env.QUEUE_PREFIX?.trim() || DEFAULTS.queuePrefix,
    // A day keeps the timer far inside 2^31 - 1 ms.
    logProgressSeconds: readInt(env, 'LOG_PROGRESS_SECONDS', DEFAULTS.logProgressSeconds, 0, 86_400, problems),
    // A day keeps the timer far inside 2^31 - 1 ms; longer than that, the follower would no longer say "who" of a day's changes.
    auditLogPollSeconds: readInt(env, 'AUDIT_LOG_POLL_SECONDS', DEFAULTS.auditLogPollSeconds, 0, 86_400, problems),
  };
  config.auditPush = readAuditPush(env, config.auditLogPollSeconds, config.httpPort, problems);
  if (problems.length > 0) throw new ConfigError('environment', problems);
  return config;
}

/** A URL safe to print: any password is replaced. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}
