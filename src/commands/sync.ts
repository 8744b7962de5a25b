import { parseArgs } from 'node:util';
import { loadConfig, requireApiKey } from '../config.js';
import { startManualSync, waitForRun } from '../manual-sync.js';
import { progressReporter } from '../progress.js';
import { openServices } from '../services.js';
import type { RunProgress } from '../sql/getRun.js';
import { replaceTargets } from '../sql/replaceTargets.js';
import { loadTargets } from '../targets.js';
import { startWorker } from '../worker.js';
import type { CommandContext } from './context.js';

function summary(run: RunProgress): string {
  const done = run.unchanged + run.changed + run.deleted + run.failed;
  return `run ${run.id}: ${done}/${run.planned} refreshed: ${run.changed} changed, ${run.unchanged} unchanged, ` +
    `${run.deleted} deleted, ${run.failed} failed`;
}

/**
 * Stores the targets file's triples (schedules are left to `schedule` and
 * `start`), then queues a refresh of every target now.
 * With --wait this process also works the queue (sharing the global rate
 * limit with any other workers) and exits once every refresh has an outcome.
 */
export async function syncCommand({ args, logger, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { wait: { type: 'boolean', default: false } }, strict: true });
  const config = loadConfig();
  const apiKey = values.wait ? requireApiKey(config) : undefined;
  const targets = await loadTargets(config.targetsFile);
  const services = await openServices(config);
  const keyRejected = new AbortController();
  const worker = apiKey
    ? startWorker({ config, apiKey, logger, ...services, onKeyRejected: () => keyRejected.abort() })
    : undefined;
  try {
    await replaceTargets(services.sql, targets);
    const run = await startManualSync(services.sql, services.queues, config.batchSize);
    print(`run ${run.id}: queued ${run.planned} refreshes`);
    if (!values.wait) return 0;
    const progress = progressReporter(process.stderr, `run ${run.id}`);
    const onProgress = (p: RunProgress) => {
      if (p.finishedAt === null) progress.update(p.unchanged + p.changed + p.deleted + p.failed, p.planned);
    };
    let final: RunProgress;
    try {
      final = await waitForRun(services.sql, run.id, onProgress, 250, keyRejected.signal);
    } catch (error) {
      if (!keyRejected.signal.aborted) throw error;
      progress.finish();
      print(`run ${run.id}: the API rejected GCORE_API_KEY (401); the refreshes not yet done stay queued for a worker with a valid key`);
      return 1;
    }
    progress.finish();
    print(summary(final));
    return final.failed > 0 ? 1 : 0;
  } finally {
    await worker?.close();
    await services.close();
  }
}
