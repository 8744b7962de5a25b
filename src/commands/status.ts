import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { problemOf } from '../deployment-registry.js';
import { liveQueueStores } from '../sql/queueStoreMarks.js';
import { queueDepths, refreshPauseMs, type QueueDepth } from '../queue.js';
import { openServices } from '../services.js';
import { describeSchedule } from '../schedule.js';
import { failingTargets } from '../sql/failingTargets.js';
import { getRun } from '../sql/getRun.js';
import { lastListings, type ScopeListing } from '../sql/lastListings.js';
import { lastRunId } from '../sql/lastRunId.js';
import { staleTargets } from '../sql/staleTargets.js';
import type { CommandContext } from './context.js';

const LISTED = 20;
/** A request timeline further ahead than this means requests are being held back. */
const LIMITED_AFTER_MS = 1000;

function depth(name: string, counts: QueueDepth): string {
  return `  ${name.padEnd(9)} ${Object.entries(counts)
    .map(([state, n]) => `${state} ${n}`)
    .join('  ')}`;
}

function describeListing(s: ScopeListing): string {
  const listed = `${s.targets} targets; last listing `;
  if (s.status === null) return `${s.targets} targets; not listed yet`;
  const when = s.started_at ? ` (started ${s.started_at.toISOString()})` : '';
  if (s.status === 'complete') return `${listed}complete${when}: ${s.listed} listed, ${s.absent} absent and confirmed by GET`;
  if (s.status === 'incomplete') return `${listed}INCOMPLETE${when}: ${s.error}; nothing deleted or confirmed`;
  return `${listed}${s.status}${when}`;
}

/** Queues, rate limiting, other deployments on the prefix, the last run, failing and stale triples: what an operator asks first. */
export async function statusCommand({ args }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const config = loadConfig();
  const services = await openServices(config);
  try {
    const [queues, pauseMs, aheadMs, live, stores, runId, failing, stale, scopes, rejections] = await Promise.all([
      queueDepths(services.queues),
      refreshPauseMs(services.queues),
      services.backend.timeline.aheadMs(),
      services.backend.liveDeployments(),
      liveQueueStores(services.sql),
      lastRunId(services.sql),
      failingTargets(services.sql, LISTED),
      staleTargets(services.sql, LISTED),
      lastListings(services.sql),
      services.backend.keyRejections(),
    ]);
    const heldMs = Math.max(pauseMs, aheadMs);
    const rateLimited = heldMs > LIMITED_AFTER_MS ? { until: new Date(Date.now() + heldMs).toISOString() } : null;
    const lastRun = runId === undefined ? null : ((await getRun(services.sql, runId)) ?? null);
    const deployment = {
      id: services.deployment,
      others: live.filter((id) => id !== services.deployment).sort(),
      queue_stores: stores,
      problem: problemOf(services.backend.where, services.deployment, live, stores) ?? null,
    };
    // snake_case throughout, as the tables and the views name the same things.
    const report = {
      queues,
      rate_limited: rateLimited,
      api_key: { rejected_by: rejections },
      deployment,
      last_run: lastRun && {
        id: lastRun.id,
        status: lastRun.status,
        kind: lastRun.kind,
        schedule: describeSchedule(lastRun.scheduleKey),
        started_at: lastRun.startedAt,
        finished_at: lastRun.finishedAt,
        planned: lastRun.planned,
        changed: lastRun.changed,
        unchanged: lastRun.unchanged,
        deleted: lastRun.deleted,
        failed: lastRun.failed,
        listings_failed: lastRun.listingsFailed,
      },
      scopes,
      failing,
      stale,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    const lines = [
      'queues:',
      depth('refresh', queues.refresh),
      depth('schedule', queues.schedule),
      depth('list', queues.list),
      `rate limited: ${rateLimited ? `yes, requests held back until ${rateLimited.until}` : 'no'}`,
      rejections.length > 0
        ? `api key: REJECTED (401) in ${rejections.length} running worker(s), which take no jobs until restarted with a valid key`
        : 'api key: no running worker has had it rejected',
      ...rejections.map((r) => `  worker ${r.worker} on ${r.hostname} (pid ${r.pid}) since ${r.at}`),
      `deployment: database ${deployment.id}${deployment.problem ? `; ERROR: ${deployment.problem}` : `, alone on ${services.backend.where}`}`,
      lastRun
        ? `last run: #${lastRun.id} ${lastRun.status} (${report.last_run!.schedule ?? lastRun.kind}), started ${new Date(lastRun.startedAt).toISOString()}` +
          `${lastRun.finishedAt ? `, finished ${new Date(lastRun.finishedAt).toISOString()}` : ''}: ${lastRun.planned} planned, ` +
          `${lastRun.changed} changed, ${lastRun.unchanged} unchanged, ${lastRun.deleted} deleted, ${lastRun.failed} failed` +
          `${lastRun.listingsFailed > 0 ? `, ${lastRun.listingsFailed} scope listings incomplete` : ''}`
        : 'last run: none yet',
      `scopes: ${scopes.length}`,
      ...scopes.map((s) => `  ${s.scope_key}  ${describeListing(s)}`),
      `failing: ${failing.length}${failing.length === LISTED ? '+' : ''}`,
      ...failing.map((f) => `  ${f.project_id}/${f.region_id}/${f.image_id}  ${f.last_status ?? '-'}  ${f.last_error ?? ''}`),
      `stale: ${stale.total}`,
      ...stale.rows.map((s) => `  ${s.project_id}/${s.region_id}/${s.image_id}  ${s.reason}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await services.close();
  }
}
