import { loadConfig, requireApiKey } from '../config.js';
import { reconcile } from '../reconcile.js';
import { openServices } from '../services.js';
import { onShutdown } from '../signals.js';
import { loadTargets } from '../targets.js';
import { startWorker } from '../worker.js';
import type { CommandContext } from './context.js';

const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `worker` works the queues; `start` first reconciles the targets file (the main job). */
export async function workerCommand({ logger }: CommandContext, reconcileFirst = false): Promise<number> {
  const config = loadConfig();
  const apiKey = requireApiKey(config);
  const targets = reconcileFirst ? await loadTargets(config.targetsFile) : undefined;
  const services = await openServices(config);
  if (targets) {
    const result = await reconcile(services.sql, services.queues, targets);
    logger.info({ ...result, targets_file: config.targetsFile }, 'reconciled');
  }
  const worker = startWorker({ config, apiKey, logger, ...services });
  onShutdown(logger, SHUTDOWN_TIMEOUT_MS, async () => {
    await worker.close();
    await services.close();
  });
  return new Promise<number>(() => {});
}
