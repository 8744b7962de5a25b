import { loadConfig } from '../config.js';
import { openStore } from '../services.js';
import type { CommandContext } from './context.js';

export async function migrateCommand({ logger }: CommandContext): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config, 1);
  await store.close();
  logger.info('migrations applied');
  return 0;
}
