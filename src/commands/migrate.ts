import { loadConfig } from '../config/config.js';
import { openStore } from '../queues/services.js';
import type { CommandContext } from './context.js';

export async function migrateCommand({ logger }: CommandContext): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config, 1);
  await store.close();
  logger.info('migrations applied');
  return 0;
}
