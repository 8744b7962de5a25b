#!/usr/bin/env node
// gcore-image-sync <command>: the one entry point. Exit codes: 0 success,
// 1 a sync had failures or an unexpected error, 2 bad usage or configuration,
// 3 Postgres or Redis did not answer.
import { changesCommand } from './commands/changes.js';
import type { CommandContext } from './commands/context.js';
import { fakeApiCommand } from './commands/fake-api.js';
import { migrateCommand } from './commands/migrate.js';
import { reportingRoleCommand } from './commands/reporting-role.js';
import { scheduleCommand } from './commands/schedule.js';
import { snapshotCommand } from './commands/snapshot.js';
import { syncCommand } from './commands/sync.js';
import { workerCommand } from './commands/worker.js';
import { DEFAULTS } from './config.js';
import { ConfigError, ServiceUnavailableError } from './errors.js';
import { createLogger } from './logger.js';

interface Command {
  summary: string;
  run(context: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'migrate, reconcile the targets file, then work the queues until stopped (the main job)', run: (c) => workerCommand(c, true) },
  worker: { summary: 'work the queues until stopped (add more on more machines to scale out)', run: (c) => workerCommand(c) },
  schedule: { summary: 'reconcile the targets file into Postgres and BullMQ job schedulers, then exit', run: scheduleCommand },
  sync: { summary: 'refresh every configured image now; --wait works the queue here and waits for every outcome', run: syncCommand },
  changes: {
    summary: 'list changes: --since 24h (or an ISO time), --project, --region, --field (tags for all tags), --limit, --json',
    run: changesCommand,
  },
  snapshot: { summary: 'take an audit snapshot now (workers take one nightly; see the targets file)', run: snapshotCommand },
  'reporting-role': {
    summary: 'create a read-only role for reports (--role, default image_reporting): reporting views and functions only',
    run: reportingRoleCommand,
  },
  migrate: { summary: 'apply database migrations, then exit', run: migrateCommand },
  'fake-api': { summary: 'serve a fake Gcore API with sample images (--port, default 8089; --api-key, default fake-key)', run: fakeApiCommand },
};

const USAGE = `usage: gcore-image-sync <command> [flags]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join('\n')}

configuration comes from the environment (GCORE_API_KEY, GCORE_BASE_URL, DATABASE_URL,
REDIS_URL, TARGETS_FILE (default ${DEFAULTS.targetsFile}), LOG_LEVEL, SYNC_*); see README.md.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`gcore-image-sync: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  const logger = createLogger(process.env.LOG_LEVEL || DEFAULTS.logLevel);
  const print = (line: string) => process.stderr.write(`${line}\n`);
  try {
    return await command.run({ args, logger, print });
  } catch (error) {
    logger.flush();
    if (error instanceof ConfigError) {
      process.stderr.write(`gcore-image-sync ${name}: configuration error in ${error.message}\n`);
      return 2;
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gcore-image-sync ${name}: ${(error as Error).message}\n`);
      return 2;
    }
    if (error instanceof ServiceUnavailableError) {
      process.stderr.write(`gcore-image-sync ${name}: ${error.message}\n`);
      return 3;
    }
    process.stderr.write(`gcore-image-sync ${name}: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
