// What a command costs before it does anything: `--help` and `status` against `node -e 0` measured
// in the same run (rounds interleaved, medians compared, so a busy machine slows all three alike),
// the peak RSS of each, and an idle worker's RSS once started.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openContext, startFakeApi, startWorkerProcess, type QueueStore } from './harness.js';
import type { Row } from './scenarios.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/** GNU time reports a finished child's peak RSS (its wait4 rusage), which Node cannot read for a child. */
const GNU_TIME = '/usr/bin/time';

/**
 * An idle worker's RSS once started, before commands were loaded on demand and migrations ran
 * without drizzle-orm (2026-12-06, 2-core machine of bench/README.md, Node 24.21, median of five:
 * 131.7-135.2 MB): the row's bound.
 */
const WORKER_RSS_BEFORE_MB = 132;

interface Measured {
  ms: number;
  /** Peak RSS in MB; undefined without GNU time. */
  peakMb: number | undefined;
}

/** Runs `args` to its end: wall time from spawn to exit, and peak RSS through GNU time when there is one. */
async function measure(args: string[], env: Record<string, string>): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'gis-startup-'));
  const out = join(dir, 'rss');
  const timed = existsSync(GNU_TIME);
  const [program, argv] = timed ? [GNU_TIME, ['-f', '%M', '-o', out, process.execPath, ...args]] : [process.execPath, args];
  try {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(program, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`))));
    });
    const ms = performance.now() - started;
    return { ms, peakMb: timed ? Number((await readFile(out, 'utf8')).trim()) / 1024 : undefined };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mb = (value: number | undefined) => (value === undefined ? 'not measured (no GNU time)' : `${value.toFixed(0)} MB`);
/** A row's numbers are all measured ones: a peak without GNU time is left out. */
const peakValue = (value: number | undefined): Record<string, number> => (value === undefined ? {} : { peakMb: value });

function peakOf(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

export async function startUp(rounds: number, store: QueueStore): Promise<Row[]> {
  const ctx = await openContext(store);
  try {
    const commands = { node: ['-e', '0'], help: [CLI, '--help'], status: [CLI, 'status'] };
    const runs: Record<keyof typeof commands, Measured[]> = { node: [], help: [], status: [] };
    // The first round warms the file cache and the database's; it is not counted.
    for (let round = 0; round <= rounds; round++) {
      for (const [name, args] of Object.entries(commands) as [keyof typeof commands, string[]][]) {
        const result = await measure(args, ctx.env);
        if (round > 0) runs[name].push(result);
      }
    }
    const ms = (name: keyof typeof commands) => median(runs[name].map((r) => r.ms));
    const peak = (name: keyof typeof commands) =>
      runs[name][0]?.peakMb === undefined ? undefined : Math.max(...runs[name].map((r) => r.peakMb!));
    const [node, help, status] = [ms('node'), ms('help'), ms('status')];
    const helpPeak = peak('help');
    const fake = await startFakeApi(1);
    const worker = await startWorkerProcess(ctx, fake.url, {});
    const workerMb = peakOf(worker.pid, 'VmRSS');
    const workerPeakMb = peakOf(worker.pid, 'VmHWM');
    await worker.stop();
    await fake.stop();
    const times = `median of ${rounds}`;
    return [
      {
        scenario: 'start-up: node -e 0',
        measured: `${node.toFixed(0)} ms, peak ${mb(peak('node'))} (${times})`,
        target: '- (the unit of the two below)',
        met: null,
        values: { ms: node, ...peakValue(peak('node')) },
      },
      {
        scenario: 'start-up: gcore-image-sync --help',
        measured: `${help.toFixed(0)} ms = ${(help / node).toFixed(1)}x node -e 0, peak ${mb(helpPeak)} (${times})`,
        target: '<= 5x node -e 0; peak RSS < 100 MB',
        met: help <= 5 * node && (helpPeak === undefined || helpPeak < 100),
        values: { ms: help, ratio: help / node, ...peakValue(helpPeak) },
      },
      {
        scenario: `start-up: gcore-image-sync status (database running, queues on ${store === 'redis' ? 'Redis' : 'Postgres'})`,
        measured: `${status.toFixed(0)} ms = ${(status / node).toFixed(1)}x node -e 0, peak ${mb(peak('status'))} (${times})`,
        target: '<= 10x node -e 0',
        met: status <= 10 * node,
        values: { ms: status, ratio: status / node, ...peakValue(peak('status')) },
      },
      {
        scenario: 'start-up: idle worker RSS once started',
        measured: `${workerMb.toFixed(0)} MB (peak ${workerPeakMb.toFixed(0)} MB)`,
        target: `<= ${WORKER_RSS_BEFORE_MB} MB (before issue 24)`,
        met: workerMb <= WORKER_RSS_BEFORE_MB,
        values: { rssMb: workerMb, peakMb: workerPeakMb },
      },
    ];
  } finally {
    await ctx.close();
  }
}
