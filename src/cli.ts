#!/usr/bin/env node
// gcore-image-sync <command>: the one entry point. Exit codes: 0 success,
// 1 a sync had failures or an unexpected error, 2 bad usage or configuration,
// 3 Postgres or Redis did not answer.
//
// Only what every command needs is imported here (a few tens of milliseconds); each command's
// modules are imported when it runs, after a stop signal is handled (signals.ts).
import './ops/node-version.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CommandContext } from './commands/context.js';
import { DEFAULTS, LOG_LEVELS } from './config/config.js';
import { ConfigError, ServiceUnavailableError } from './errors.js';
import { createLogger, type Logger } from './ops/logger.js';
import { exitWhileStarting } from './ops/signals.js';
import { cacheCompiledCode } from './ops/compile-cache.js';

const stopAsOneShot = exitWhileStarting();
cacheCompiledCode();

interface Command {
  summary: string;
  /** Flags, one per line: "--name VALUE  what it does". */
  flags?: string[];
  examples: string[];
  /** Imports the command's module and runs it. */
  run(context: CommandContext): Promise<number>;
  /** Runs until stopped and installs its own stop; the others, once loaded, undo what they started and exit on a stop. */
  serves?: true;
}

const TAKE_OVER_FLAG =
  '--take-over  replace the targets and schedules even though a running `start` with another targets file owns them (it is named when refused)';

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'migrate, reconcile the targets file, then work the queues until stopped (the main job)',
    flags: [TAKE_OVER_FLAG],
    examples: [
      "GCORE_API_KEY='...' npm start     # from a clone: the README's main command",
      "GCORE_API_KEY='...' gcore-image-sync start",
      "GCORE_API_KEY='...' TARGETS_FILE=/etc/gcore-image-sync/targets.yaml gcore-image-sync start --take-over",
    ],
    run: async (c) => (await import('./commands/worker.js')).workerCommand(c, true),
    serves: true,
  },
  worker: {
    summary: 'work the queues until stopped (run more, anywhere, to scale out)',
    examples: ["GCORE_API_KEY='...' REDIS_URL=redis://queue-host:6379 DATABASE_URL=postgres://db-host/inventory gcore-image-sync worker"],
    run: async (c) => (await import('./commands/worker.js')).workerCommand(c),
    serves: true,
  },
  schedule: {
    summary: 'reconcile the targets file into Postgres and BullMQ job schedulers, then exit',
    flags: [TAKE_OVER_FLAG],
    examples: ['TARGETS_FILE=/etc/gcore-image-sync/targets.yaml gcore-image-sync schedule'],
    run: async (c) => (await import('./commands/schedule.js')).scheduleCommand(c),
  },
  sync: {
    summary: 'queue a refresh of every image in the targets file now (or of one)',
    flags: [
      '--wait           also work the queue here, show progress, wait for every outcome, print a summary; exit 1 if any failed',
      '--target P/R/I   only this triple (it must be in the targets file)',
      '--account NAME   only the images of this account of the targets file',
    ],
    examples: [
      "GCORE_API_KEY='...' gcore-image-sync sync --wait",
      "GCORE_API_KEY='...' gcore-image-sync sync --wait --target 1/7/8cab6f28-09ca-4201-b3f7-23c7893f4bd6",
    ],
    run: async (c) => (await import('./commands/sync.js')).syncCommand(c),
  },
  status: {
    summary: 'queue depths, rate limiting, a rejected API key, the deployment, the last run, scopes, failing and stale triples',
    flags: ['--json          JSON instead of text', '--account NAME  only this account'],
    examples: ['gcore-image-sync status', 'gcore-image-sync status --json --account staging'],
    run: async (c) => (await import('./commands/status.js')).statusCommand(c),
  },
  changes: {
    summary: 'list recent changes as a table, or JSON',
    flags: [
      '--since D     a duration back from now (24h, 7d) or an ISO time; default 24h',
      '--project N   only this project',
      '--region N    only this region',
      '--account A   only the images of this account',
      '--field F     only this field; "tags" for every tag',
      '--limit N     at most N rows; default 1000',
      '--json        JSON instead of a table',
    ],
    examples: ['gcore-image-sync changes --since 7d --field tags', 'gcore-image-sync changes --since 2026-11-01T00:00:00Z --json'],
    run: async (c) => (await import('./commands/changes.js')).changesCommand(c),
  },
  snapshot: {
    summary: "take an audit snapshot now (workers also take one on the targets file's snapshot schedule)",
    examples: ['gcore-image-sync snapshot'],
    run: async (c) => (await import('./commands/snapshot.js')).snapshotCommand(c),
  },
  'reporting-role': {
    summary: 'create a read-only role for reports: the reporting views and functions, nothing else',
    flags: ['--role NAME  the role to create or update; default image_reporting'],
    examples: ['gcore-image-sync reporting-role --role auditors'],
    run: async (c) => (await import('./commands/reporting-role.js')).reportingRoleCommand(c),
  },
  push: {
    summary: "list the audit-log push subscriptions of each account's Gcore client, or remove them (see AUDIT_PUSH_URL)",
    flags: [
      '--account NAME  only this account',
      "--force         with unsubscribe: remove them even when one is not this deployment's (Gcore removes every one of the client)",
    ],
    examples: ["GCORE_API_KEY='...' gcore-image-sync push list", "GCORE_API_KEY='...' gcore-image-sync push unsubscribe --account prod"],
    run: async (c) => (await import('./commands/push.js')).pushCommand(c),
  },
  demo: {
    summary: "try it without a Gcore account, in a throwaway database: two syncs around users' changes, and who made each",
    flags: ["--keep  keep the demo's database afterwards, and print where it is and how to look at it"],
    examples: ['gcore-image-sync demo', 'DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres gcore-image-sync demo --keep'],
    run: async (c) => (await import('./commands/demo.js')).demoCommand(c),
  },
  db: {
    summary: 'where the data lives: runs the embedded PostgreSQL (DATABASE_URL unset) and prints a URL for psql until stopped',
    examples: ['gcore-image-sync db', 'GCORE_IMAGE_SYNC_HOME=/var/lib/gcore-image-sync gcore-image-sync db'],
    run: async (c) => (await import('./commands/db.js')).dbCommand(c),
    serves: true,
  },
  migrate: {
    summary: 'apply database migrations, then exit',
    examples: ['gcore-image-sync migrate'],
    run: async (c) => (await import('./commands/migrate.js')).migrateCommand(c),
  },
  'fake-api': {
    summary: 'serve a fake Gcore API, for trying the product without an account',
    flags: [
      '--port N        default 8089',
      '--api-key KEY   the key it accepts; default fake-key',
      '--latency-ms N  delay every answer',
      '--images N      N generated images instead of the five samples, 10 % of them bare-metal',
      '--projects N    with --images: spread them over projects 1..N (default 2), listed with a deleted one',
      '--regions N     with --images: and regions 1..N (default 3), listed with an inactive one',
      '--volumes N     with --images: N volumes spread as they are, made from them, two in three attached to an instance',
      '--account NAME:KEY:P1,P2  instead of --api-key: an account whose key reaches these projects only (repeat for several)',
    ],
    examples: ['gcore-image-sync fake-api --port 8089', 'gcore-image-sync fake-api --images 100000 --projects 1 --regions 10'],
    run: async (c) => (await import('./commands/fake-api.js')).fakeApiCommand(c),
    serves: true,
  },
};

const USAGE = `usage: gcore-image-sync <command> [flags]      gcore-image-sync <command> --help

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(15)} ${c.summary}`)
  .join('\n')}

configuration comes from the environment (GCORE_API_KEY, GCORE_BASE_URL, DATABASE_URL (unset: an
embedded PostgreSQL under GCORE_IMAGE_SYNC_HOME, default ${DEFAULTS.home}),
REDIS_URL or REDIS_CLUSTER_NODES (REDIS_CLUSTER_*), QUEUE_PREFIX, TARGETS_FILE (default ${DEFAULTS.targetsFile}), LOG_LEVEL, LOG_FORMAT (LOG_PRETTY),
LOG_PROGRESS_SECONDS, AUDIT_LOG_POLL_SECONDS, AUDIT_PUSH_URL, AUDIT_PUSH_SECRET, AUDIT_PUSH_PORT, HTTP_PORT, HTTP_HOST,
UI, UI_PASSWORD, UI_OPEN, QUEUE_DASHBOARD, ALERT_WEBHOOK_URL, ALERT_WEBHOOK_SECRET, SYNC_*): defaults and ranges in docs/configuration.md.
gcore-image-sync --version prints the version.`;

/** The package's version, read from its package.json (two folders up from dist/src). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function commandHelp(name: string, command: Command): string {
  const flags = command.flags ? `\nflags:\n${command.flags.map((f) => `  ${f}`).join('\n')}\n` : '';
  return `usage: gcore-image-sync ${name}${command.flags ? ' [flags]' : ''}\n\n${command.summary}\n${flags}\nexamples:\n${command.examples.map((e) => `  ${e}`).join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`gcore-image-sync: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(commandHelp(name, command));
    return 0;
  }
  // pino throws on an unknown level before any command has checked the settings; loadConfig reports it with the rest.
  const level = process.env.LOG_LEVEL?.trim() || DEFAULTS.logLevel;
  // Made when a command first logs: one that never does (status, changes) starts without pino.
  let logger: Logger | undefined;
  const context: CommandContext = {
    args,
    get logger() {
      return (logger ??= createLogger(LOG_LEVELS.includes(level) ? level : DEFAULTS.logLevel));
    },
    print: (line: string) => process.stderr.write(`${line}\n`),
  };
  try {
    // A command without flags still refuses any: a mistyped flag must not be silently ignored.
    if (!command.flags) parseArgs({ args, options: {}, strict: true });
    if (!command.serves) stopAsOneShot();
    return await command.run(context);
  } catch (error) {
    logger?.flush();
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

/**
 * After a service did not answer, nothing is left to do, but the clients may still hold a timer or
 * a socket to it (ioredis arms a 2 s disconnect timer when its ready check fails after the socket
 * closed; postgres.js keeps a half-open socket until connect_timeout): exit once output is written.
 */
const EXIT_AFTER_UNAVAILABLE_MS = 200;

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  if (code === 3) setTimeout(() => process.exit(code), EXIT_AFTER_UNAVAILABLE_MS).unref();
});
