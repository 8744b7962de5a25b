import { parseArgs } from 'node:util';
import { withKeys } from '../accounts.js';
import { loadConfig, redactUrl } from '../config.js';
import { whenLost } from '../database.js';
import { deploymentProblem } from '../deployment-registry.js';
import { startHttpServer, type HttpServer } from '../http-server.js';
import { createMetrics } from '../metrics.js';
import { queueDashboard } from '../queue-dashboard.js';
import { tickDueGroups } from '../catch-up.js';
import { reconcile, scheduleGroups } from '../reconcile.js';
import { describeSchedule } from '../schedule.js';
import { holdSchedule, takeSchedule, type HeldSchedule } from '../schedule-owner.js';
import { openServices, type Services } from '../services.js';
import { onShutdown } from '../signals.js';
import { loadAccounts } from '../sql/accounts.js';
import { loadTargetsFile } from '../targets.js';
import { startWorker, type RunningWorker } from '../worker.js';
import type { CommandContext } from './context.js';

/** `worker` works the queues; `start` first reconciles the targets file (the main job). */
export async function workerCommand({ args, logger, print }: CommandContext, reconcileFirst = false): Promise<number> {
  // `worker` takes no flags (cli.ts refuses any); `start` takes --take-over.
  const takeOver =
    reconcileFirst && parseArgs({ args, options: { 'take-over': { type: 'boolean', default: false } }, strict: true }).values['take-over'];
  const config = loadConfig();
  const file = reconcileFirst ? await loadTargetsFile(config.targetsFile) : undefined;
  // `start` checks the file's keys before it touches anything; `worker` those of the accounts the database names, below.
  if (file) withKeys(file.accounts, process.env, config.targetsFile);
  // Handlers go in before anything starts, so an early signal still stops cleanly.
  let services: Services | undefined;
  let worker: RunningWorker | undefined;
  let http: HttpServer | undefined;
  let schedule: HeldSchedule | undefined;
  // A signal during start-up waits for the step in flight and starts no other, so whatever that step
  // made (a schedule claim, a connection) is closed by the stop rather than left behind.
  let stopping = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  const step = <T>(run: () => Promise<T>): Promise<T> => {
    if (stopping) return new Promise<T>(() => {});
    const result = run();
    inFlight = result.catch(() => {});
    return result;
  };
  onShutdown(logger, config.shutdownTimeoutMs, async () => {
    stopping = true;
    await inFlight;
    await http?.close();
    await worker?.close();
    await schedule?.release();
    await services?.close();
  });
  services = await step(() => openServices(config));
  const { sql, queues } = services;
  if (services.embeddedDataDir !== undefined) {
    logger.info(
      { data_dir: services.embeddedDataDir },
      'data in the embedded PostgreSQL (DATABASE_URL is not set); `gcore-image-sync db` prints a URL for psql',
    );
  }
  if (file) {
    try {
      await step(async () => {
        const claim = await takeSchedule(sql, file, { targetsFile: config.targetsFile, command: 'start', takeOver }, logger, print);
        schedule = holdSchedule(sql, claim, logger);
      });
      const result = await step(() =>
        reconcile(sql, queues, file.targets, { snapshot: file.snapshot, scopes: file.scopes, accounts: file.accounts }),
      );
      logger.info({ ...result, targets_file: config.targetsFile }, 'reconciled');
      for (const group of await step(() => tickDueGroups(sql, queues, scheduleGroups([...file.targets, ...file.scopes])))) {
        logger.info(
          { schedule: describeSchedule(group.key), due_now: group.due, last_failed: group.failed, next_tick_at: group.nextTickAt },
          !group.due && !group.failed
            ? 'schedule: nothing due before its next tick'
            : group.tickedNow
              ? group.due
                ? 'schedule: work is due, ticking now'
                : 'schedule: its last attempt failed (API unreachable or failing, or the key refused): trying again now'
              : 'schedule: work is due; its scheduler ticks within a minute',
        );
      }
    } catch (error) {
      // Open connections would keep a refused process alive.
      await schedule?.release();
      await services.close();
      throw error;
    }
  }
  let accounts;
  try {
    accounts = withKeys(
      await step(() => loadAccounts(sql)),
      process.env,
      `the accounts of the targets file last loaded into ${config.databaseUrl ? redactUrl(config.databaseUrl) : 'the embedded PostgreSQL'}`,
    );
  } catch (error) {
    await schedule?.release();
    await services.close();
    throw error;
  }
  const metrics = createMetrics(services.queues, sql);
  if (stopping) return new Promise<number>(() => {});
  worker = startWorker({ config, accounts, logger, metrics, ...services });
  if (config.httpPort !== undefined) {
    const dashboard = config.queueDashboard
      ? queueDashboard(
          services.queues,
          accounts.map((a) => a.name),
        )
      : undefined;
    const { backend, deployment } = services;
    http = await step(() =>
      startHttpServer(config.httpPort!, {
        sql: services.sql,
        backend,
        metrics,
        dashboard,
        deploymentProblem: () => deploymentProblem(services.sql, backend, deployment),
        lost: services.lost,
        keyProblem: () => {
          const problems = worker.accountProblems();
          return problems.length > 0 ? problems.join('; ') : undefined;
        },
      }),
    );
    logger.info({ port: http.port, queue_dashboard: Boolean(dashboard) }, 'serving /healthz, /readyz and /metrics');
  }
  // Runs until stopped, or until its data is gone for good: then nothing here can go on.
  return whenLost(services);
}
