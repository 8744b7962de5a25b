// npm run bench: measures the pipeline against its targets on this machine and
// writes bench/results.json. `--quick` runs every scenario at a small scale
// (the test suite does, so the harness cannot rot); its numbers mean nothing.
// Throughput, the rate limit and reconcile run with the queues on each store;
// the other scenarios on the one a deployment with this environment would use.
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { benchRedisUrl, STORE_NAMES, type QueueStore } from './harness.js';
import { million, millionHistory, unchangedRefresh } from './million.js';
import { pushAgainstPoll } from './push.js';
import { startUp } from './startup.js';
import { uiPages } from './ui.js';
import { usageRefresh } from './usage.js';
import {
  asOf,
  auditBurst,
  baseline,
  discovery,
  FULL,
  latency,
  QUICK,
  rateLimited,
  rateLimitedAccounts,
  reconcileAtScale,
  soak,
  throughput,
  type Row,
} from './scenarios.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results.json' },
    // A comma-separated subset, for profiling one scenario: baseline,throughput,latency,limit,accounts,reconcile,soak,asof,discovery,
    // unchanged,usage,audit,push,startup, and million, million-history and ui (at full scale only when named: they take long).
    only: { type: 'string' },
  },
  strict: true,
});
const scale = values.quick ? QUICK : FULL;

function table(rows: Row[]): string {
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => [r.scenario, r.measured, r.target][c]!.length), 8));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  return [
    line(['scenario', 'measured', 'target', 'met']),
    line(widths.map((w) => '-'.repeat(w)).concat('---')),
    ...rows.map((r) => line([r.scenario, r.measured, r.target, r.met === null ? '-' : r.met ? 'yes' : 'NO'])),
  ].join('\n');
}

const rows: Row[] = [];
const only = values.only?.split(',');
const step = async (name: string, run: () => Promise<Row | Row[]>, { named = false } = {}) => {
  if (only ? !only.includes(name) : named && !values.quick) return;
  process.stderr.write(`bench: ${name}...\n`);
  const result = await run();
  rows.push(...(Array.isArray(result) ? result : [result]));
};

// As backend.ts decides: REDIS_URL set puts the queues on Redis, unset in the database. Without it the
// Redis rows say they were not run.
const store: QueueStore = benchRedisUrl() === undefined ? 'postgres' : 'redis';
const started = new Date();
// Without a baseline run (skipped, or no Redis for its queue) the ratio is against the figure for it (about 2,200/s).
let baselinePerSecond = 2200;
await step('baseline', async () => {
  const row = await baseline(scale);
  baselinePerSecond = row.values.perSecond ?? baselinePerSecond;
  return row;
});
await step('throughput', () => throughput(scale, baselinePerSecond));
await step('latency', () => latency(scale, store));
await step('limit', () => rateLimited(scale));
await step('accounts', () => rateLimitedAccounts(scale));
await step('reconcile', () => reconcileAtScale(scale));
await step('soak', () => soak(scale, store));
await step('asof', () => asOf(scale, store));
await step('discovery', () => discovery(scale, store));
await step('unchanged', () => unchangedRefresh(scale.unchanged, store));
await step('usage', () => usageRefresh(scale.usage, store));
await step('audit', () => auditBurst(scale));
await step('push', () => pushAgainstPoll(scale.push, store));
// Rounds of three short commands: enough for a median that a passing spike of load does not move.
await step('startup', () => startUp(values.quick ? 2 : 15, store));
await step('million', () => million(scale.million, store), { named: true });
await step('million-history', () => millionHistory(scale.million.images, scale.millionVersions, store), { named: true });
await step('ui', () => uiPages(scale.ui, store), { named: true });

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const queues = `queues on ${STORE_NAMES[store]} where a row does not name its store${store === 'postgres' ? ' (REDIS_URL is unset)' : ''}`;
console.log(
  `${table(rows)}\n\nmachine: ${machine}; ${values.quick ? 'quick scale (not a measurement)' : 'full scale'}; ${queues}; ${started.toISOString()}`,
);
await writeFile(
  values.out,
  `${JSON.stringify({ date: started.toISOString(), machine, quick: values.quick, queues: store, rows }, null, 2)}\n`,
);
process.exit(0);
