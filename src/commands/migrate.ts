import { loadConfig } from '../config.js';
import { runMigrations } from '../migrate.js';
import type { CommandContext } from './context.js';

export async function migrateCommand({ logger }: CommandContext): Promise<number> {
  const config = loadConfig();
  await runMigrations(config.databaseUrl);
  logger.info('migrations applied');
  return 0;
}
