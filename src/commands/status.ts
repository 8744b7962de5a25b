import { parseArgs } from 'node:util';
import { DEFAULT_ACCOUNT } from '../config/accounts.js';
import { loadConfig } from '../config/config.js';
import { describeData } from '../db/database.js';
import { inert } from '../ops/log-format.js';
import { ConfigError } from '../errors.js';
import { problemOf } from '../queues/deployment-registry.js';
import { liveQueueStores } from '../sql/queueStoreMarks.js';
import { queueDepths, type QueueDepth } from '../queues/queue.js';
import { openServices, type Services } from '../queues/services.js';
import { loadAccounts } from '../sql/accounts.js';
import { describeAhead } from '../audit-log/audit-cursor.js';
import { auditLogStates, type AuditLogState } from '../sql/auditCursor.js';
import { auditPushStates } from '../sql/auditPush.js';
import { describePush } from '../audit-log/push-status.js';
import { describeCounts, describeUnfinished } from '../ops/run-summary.js';
import { describeSchedule } from '../schedule/schedule.js';
import { failingTargets } from '../sql/failingTargets.js';
import { getRun, type RunProgress } from '../sql/getRun.js';
import { lastListings, type ScopeListing } from '../sql/lastListings.js';
import { lastRunId } from '../sql/lastRunId.js';
import { staleTargets } from '../sql/staleTargets.js';
import type { CommandContext } from './context.js';

const LISTED = 20;

/** How to try failed work again without waiting for its schedule, once its cause is fixed. */
const RETRY_NOW =
  'to retry now: `gcore-image-sync sync --wait` (or restart `start`, which at once retries what last failed with the API unreachable, a 5xx or a refused key)';
/** A request timeline further ahead than this means requests are being held back. */
const LIMITED_AFTER_MS = 1000;

function depth(name: string, counts: QueueDepth, width = 9): string {
  return `  ${name.padEnd(width)} ${Object.entries(counts)
    .map(([state, n]) => `${state} ${n}`)
    .join('  ')}`;
}

function describeListing(s: ScopeListing): string {
  const listed = `${s.targets} targets; last listing `;
  if (s.status === null) return `${s.targets} targets; not listed yet`;
  const when = s.started_at ? ` (started ${s.started_at.toISOString()})` : '';
  if (s.status === 'complete')
    return `${listed}complete${when}: ${s.listed} listed, ${s.absent} absent and confirmed by GET${describeUsage(s)}`;
  if (s.status === 'incomplete')
    return `${listed}INCOMPLETE${when}: ${inert(s.error ?? '')}; nothing deleted or confirmed${describeUsage(s)}`;
  return `${listed}${s.status}${when}`;
}

/** What the listing's usage listings came to, when it had any (usage_listings says why one was not whole). */
function describeUsage(s: ScopeListing): string {
  const all = s.usage_complete + s.usage_incomplete;
  if (all === 0) return '';
  const whole = s.usage_incomplete === 0 ? 'complete' : `INCOMPLETE in ${s.usage_incomplete} of ${all} (no consumer changed there)`;
  return `; usage ${whole}, ${s.usage_requests} requests`;
}

/** What an account's log holds from the future, said as `describeAhead` says it (null: nothing, or nothing any more). */
const futureOf = (state: AuditLogState) =>
  describeAhead({ count: state.ahead_count, furthest: state.ahead_at, lookedAt: state.looked_ahead_at }, state.now);

function describeAuditLog(state: AuditLogState | undefined): string {
  if (!state) return 'not followed (AUDIT_LOG_POLL_SECONDS=0, or no worker has started)';
  const read = state.read_to
    ? `read up to ${state.read_to.toISOString()} (the database's clock when the last poll that read it to its end began)`
    : `never read to its end yet, reading from ${state.next_from.toISOString()}`;
  const future = futureOf(state);
  return `${read}${state.last_error ? `; ERROR: the last poll stopped early: ${inert(state.last_error)}` : ''}${future ? `; FUTURE: ${future}` : ''}`;
}

/** Requests of an account held back after a 429 or by its rate limit (how far its request timeline is ahead), until when; null when they are not. */
async function heldUntil(services: Services, account: string): Promise<string | null> {
  const heldMs = await services.backend.timeline(account).aheadMs();
  return heldMs > LIMITED_AFTER_MS ? new Date(Date.now() + heldMs).toISOString() : null;
}

const sum = (depths: QueueDepth[]): QueueDepth =>
  Object.fromEntries(
    Object.keys(depths[0]!).map((state) => [state, depths.reduce((n, d) => n + d[state as keyof QueueDepth], 0)]),
  ) as QueueDepth;

/** What `status` reports about an account's audit log (null while no worker has followed it). */
function auditLogReport(state: AuditLogState | undefined) {
  if (!state) return null;
  const future = futureOf(state);
  return {
    read_to: state.read_to,
    next_read_from: state.next_from,
    last_error: state.last_error,
    // Entries dated ahead of the database's clock at the last look; null when none is ahead (any more).
    future:
      future !== null
        ? {
            entries: state.ahead_count,
            furthest: state.ahead_at,
            ahead_seconds: Math.ceil((state.ahead_at!.getTime() - state.now.getTime()) / 1000),
            looked_at: state.looked_ahead_at,
            text: future,
          }
        : null,
  };
}

/** The last run as `status --json` names its fields. */
function lastRunReport(lastRun: RunProgress) {
  return {
    id: lastRun.id,
    status: lastRun.status,
    kind: lastRun.kind,
    account: lastRun.account,
    schedule: describeSchedule(lastRun.scheduleKey),
    started_at: lastRun.startedAt,
    finished_at: lastRun.finishedAt,
    planned: lastRun.planned,
    discovered: lastRun.discovered,
    changed: lastRun.changed,
    created: lastRun.created,
    unchanged: lastRun.unchanged,
    deleted: lastRun.deleted,
    failed: lastRun.failed,
    listed: lastRun.listed,
    marked_left: lastRun.markedLeft,
    listings_failed: lastRun.listingsFailed,
    unattempted: lastRun.unattempted,
    listings_unfinished: lastRun.listingsUnfinished,
    error: lastRun.error,
  };
}

/** The accounts to report on: every configured one, or the one `--account` names (refused when it is not configured). */
async function reportedAccounts(services: Services, only: string | undefined): Promise<string[]> {
  const configured = (await loadAccounts(services.sql)).map((a) => a.name);
  if (only !== undefined && !configured.includes(only)) {
    throw new ConfigError('status flags', [`--account: no account ${JSON.stringify(only)} is configured: one of ${configured.join(', ')}`]);
  }
  return only === undefined ? configured : [only];
}

/** Everything `status` reads, at once: from the queues, the queue store and the database. */
async function readFacts(services: Services, accounts: string[], only: string | undefined) {
  const [depths, held, live, stores, runId, failing, stale, scopes, allRejections, auditLogs, allPushes] = await Promise.all([
    queueDepths(services.queues, accounts),
    Promise.all(accounts.map((account) => heldUntil(services, account))),
    services.backend.liveDeployments(),
    liveQueueStores(services.sql),
    lastRunId(services.sql, only),
    failingTargets(services.sql, LISTED, only),
    staleTargets(services.sql, LISTED, only),
    lastListings(services.sql, only),
    services.backend.keyRejections(),
    auditLogStates(services.sql, only),
    auditPushStates(services.sql),
  ]);
  const pushes = allPushes.filter((p) => accounts.includes(p.account));
  const lastRun = runId === undefined ? null : ((await getRun(services.sql, runId)) ?? null);
  const rejections = allRejections.filter((r) => only === undefined || r.account === only);
  return { accounts, depths, held, live, stores, lastRun, failing, stale, scopes, rejections, auditLogs, pushes };
}

type StatusFacts = Awaited<ReturnType<typeof readFacts>>;

/** The report `status --json` prints, and the plain text is read from: snake_case throughout, as the tables and the views name the same things. */
function buildReport(services: Services, facts: StatusFacts) {
  const { accounts, depths, held, live, stores, lastRun, rejections, auditLogs, pushes } = facts;
  const perAccount = Object.fromEntries(
    accounts.map((account, n) => [
      account,
      {
        queues: depths.accounts[account]!,
        rate_limited: held[n] === null ? null : { until: held[n] },
        api_key: { rejected_by: rejections.filter((r) => r.account === account) },
        // Null while no worker has followed the account's audit log (AUDIT_LOG_POLL_SECONDS=0, or none started).
        audit_log: auditLogReport(auditLogs.find((s) => s.account === account)),
        // Each push Gcore is to make of the account's log (webhook, amqp), as the workers last found it; empty: polling alone.
        audit_push: pushes
          .filter((p) => p.account === account)
          .map(({ account: _, ...push }) => ({ ...push, said: describePush({ account, ...push }) })),
      },
    ]),
  );
  const limited = accounts.filter((_, n) => held[n] !== null);
  const latest = limited
    .map((a) => perAccount[a]!.rate_limited!.until!)
    .sort()
    .at(-1);
  return {
    queues: {
      refresh: sum(accounts.map((a) => depths.accounts[a]!.refresh)),
      schedule: depths.schedule,
      list: sum(accounts.map((a) => depths.accounts[a]!.list)),
    },
    rate_limited: latest === undefined ? null : { until: latest, accounts: limited },
    api_key: { rejected_by: rejections },
    accounts: perAccount,
    deployment: {
      id: services.deployment,
      others: live.filter((id) => id !== services.deployment).sort(),
      queue_stores: stores,
      problem: problemOf(services.backend.where, services.deployment, live, stores) ?? null,
    },
    last_run: lastRun && lastRunReport(lastRun),
    scopes: facts.scopes,
    failing: facts.failing,
    stale: facts.stale,
  };
}

type StatusReport = ReturnType<typeof buildReport>;

/** The queue lines: the sums, then each account's own queues when there are several. */
function queueLines(report: StatusReport, facts: StatusFacts, named: boolean): string[] {
  const { accounts, depths } = facts;
  const width = Math.max(...accounts.map((name) => `refresh ${name}`.length));
  return [
    `queues:${named ? ` (accounts ${accounts.join(', ')})` : ''}`,
    depth('refresh', report.queues.refresh),
    depth('schedule', report.queues.schedule),
    depth('list', report.queues.list),
    ...(accounts.length > 1
      ? accounts.flatMap((a) => [
          depth(`refresh ${a}`, depths.accounts[a]!.refresh, width),
          depth(`list ${a}`, depths.accounts[a]!.list, width),
        ])
      : []),
  ];
}

/** The rate-limit, API-key and audit-log lines. */
function accountLines(report: StatusReport, facts: StatusFacts, named: boolean): string[] {
  const { accounts, rejections } = facts;
  const whose = (account: string) => (named ? ` of account ${account}` : '');
  const limited = report.rate_limited?.accounts ?? [];
  return [
    `rate limited: ${limited.length > 0 ? `yes, ${limited.map((a) => `requests${whose(a)} held back until ${report.accounts[a]!.rate_limited!.until}`).join('; ')}` : 'no'}`,
    rejections.length > 0
      ? `api key: REJECTED (401) in ${rejections.length} running worker(s), which take ${named ? "none of that account's" : 'no'} jobs until restarted with a valid key`
      : 'api key: no running worker has had it rejected',
    ...rejections.map((r) => `  worker ${r.worker} on ${r.hostname} (pid ${r.pid})${whose(r.account)} since ${r.at}`),
    ...accounts.map((a) => `audit log${whose(a)}: ${describeAuditLog(facts.auditLogs.find((s) => s.account === a))}`),
    ...facts.pushes.map((p) => `audit-log push${whose(p.account)} (${p.kind}): ${inert(describePush(p))}`),
  ];
}

/** The deployment, last-run, scope, failing and stale lines. */
function workLines(services: Services, report: StatusReport, facts: StatusFacts, named: boolean): string[] {
  const { lastRun, scopes, failing, stale } = facts;
  const { deployment } = report;
  const whose = (account: string) => (named ? ` of account ${account}` : '');
  return [
    `deployment: database ${deployment.id}${deployment.problem ? `; ERROR: ${deployment.problem}` : `, alone on ${services.backend.where}`}`,
    lastRun
      ? `last run: #${lastRun.id} ${lastRun.status} (${report.last_run!.schedule ?? lastRun.kind}${named && lastRun.account ? `, account ${lastRun.account}` : ''}), started ${new Date(lastRun.startedAt).toISOString()}` +
        `${lastRun.finishedAt ? `, finished ${new Date(lastRun.finishedAt).toISOString()}` : ''}: ${lastRun.planned} planned, ` +
        `${describeCounts(lastRun)}${describeUnfinished(lastRun)}`
      : 'last run: none yet',
    `scopes: ${scopes.length}`,
    ...scopes.map((s) => `  ${inert(s.name)}${whose(s.account)}  ${describeListing(s)}`),
    `failing: ${failing.length}${failing.length === LISTED ? '+' : ''}`,
    ...failing.map(
      (f) => `  ${f.project_id}/${f.region_id}/${f.image_id}${whose(f.account)}  ${f.last_status ?? '-'}  ${inert(f.last_error ?? '')}`,
    ),
    ...(failing.length > 0 || scopes.some((s) => s.status === 'incomplete') ? [RETRY_NOW] : []),
    `stale: ${stale.total}`,
    ...stale.rows.map((s) => `  ${s.project_id}/${s.region_id}/${s.image_id}  ${s.reason}`),
  ];
}

/** Queues, rate limiting, other deployments on the prefix, the last run, failing and stale triples: what an operator asks first. */
export async function statusCommand({ args }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean', default: false }, account: { type: 'string' } },
    strict: true,
  });
  const config = loadConfig();
  const services = await openServices(config, 'read');
  try {
    const accounts = await reportedAccounts(services, values.account);
    const facts = await readFacts(services, accounts, values.account);
    const report = buildReport(services, facts);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    // A deployment of the implied account alone reads as it did before accounts.
    const named = !(accounts.length === 1 && accounts[0] === DEFAULT_ACCOUNT);
    const lines = [
      describeData(config),
      ...queueLines(report, facts, named),
      ...accountLines(report, facts, named),
      ...workLines(services, report, facts, named),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await services.close();
  }
}
