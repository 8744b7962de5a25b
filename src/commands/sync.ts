import { parseArgs } from 'node:util';
import { loadConfig, requireApiKey } from '../config.js';
import { startManualSync, waitForRun } from '../manual-sync.js';
import { reconcile } from '../reconcile.js';
import { openServices } from '../services.js';
import type { RunProgress } from '../sql/getRun.js';
import { loadTargets } from '../targets.js';
import { startWorker } from '../worker.js';
import type { CommandContext } from './context.js';

function summary(run: RunProgress): string {
  const done = run.unchanged + run.changed + run.deleted + run.failed;
  return `run ${run.id}: ${done}/${run.planned} refreshed: ${run.changed} changed, ${run.unchanged} unchanged, ` +
    `${run.deleted} deleted, ${run.failed} failed`;
}

/**
 * Reconciles the targets file, then queues a refresh of every target now.
 * With --wait this process also works the queue (sharing the global rate
 * limit with any other workers) and exits once every refresh has an outcome.
 */
export async function syncCommand({ args, logger, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { wait: { type: 'boolean', default: false } }, strict: true });
  const config = loadConfig();
  const apiKey = values.wait ? requireApiKey(config) : undefined;
  const targets = await loadTargets(config.targetsFile);
  const services = await openServices(config);
  const worker = apiKey ? startWorker({ config, apiKey, logger, ...services }) : undefined;
  try {
    await reconcile(services.sql, services.queues, targets);
    const run = await startManualSync(services.sql, services.queues, config.attempts);
    print(`run ${run.id}: queued ${run.planned} refreshes`);
    if (!values.wait) return 0;
    let lastDone = -1;
    const final = await waitForRun(services.sql, run.id, (progress) => {
      const done = progress.unchanged + progress.changed + progress.deleted + progress.failed;
      if (done !== lastDone && progress.finishedAt === null) print(summary(progress));
      lastDone = done;
    });
    print(summary(final));
    return final.failed > 0 ? 1 : 0;
  } finally {
    await worker?.close();
    await services.close();
  }
}
