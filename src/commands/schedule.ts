import { loadConfig } from '../config.js';
import { reconcile } from '../reconcile.js';
import { openServices } from '../services.js';
import { loadTargetsFile } from '../targets.js';
import type { CommandContext } from './context.js';

export async function scheduleCommand({ logger, print }: CommandContext): Promise<number> {
  const config = loadConfig();
  const file = await loadTargetsFile(config.targetsFile);
  const services = await openServices(config);
  try {
    const result = await reconcile(services.sql, services.queues, file.targets, file.snapshot);
    logger.info({ ...result, targets_file: config.targetsFile }, 'reconciled');
    print(
      `${file.targets.length} targets in ${result.schedulers.upserted} schedule group(s): ` +
        `${result.targets.added} added, ${result.targets.rescheduled} rescheduled, ${result.targets.removed} removed; ` +
        `${result.schedulers.removed} stale scheduler(s) removed`,
    );
    return 0;
  } finally {
    await services.close();
  }
}
