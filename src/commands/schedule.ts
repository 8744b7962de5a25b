import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { reconcile } from '../schedule/reconcile.js';
import { takeSchedule } from '../schedule/schedule-owner.js';
import { openServices } from '../queues/services.js';
import { loadTargetsFile } from '../config/targets.js';
import type { CommandContext } from './context.js';

export async function scheduleCommand({ args, logger, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { 'take-over': { type: 'boolean', default: false } }, strict: true });
  const config = loadConfig();
  const file = await loadTargetsFile(config.targetsFile);
  const services = await openServices(config);
  try {
    await takeSchedule(
      services.sql,
      file,
      { targetsFile: config.targetsFile, command: 'schedule', takeOver: values['take-over'] },
      logger,
      print,
    );
    const result = await reconcile(services.sql, services.queues, file.targets, {
      snapshot: file.snapshot,
      scopes: file.scopes,
      accounts: file.accounts,
    });
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
