import { parseArgs } from 'node:util';
import { withKeys, type KeyedAccount } from '../config/accounts.js';
import { loadConfig, redactUrl, type Config } from '../config/config.js';
import { whenLost } from '../db/database.js';
import { ConfigError } from '../errors.js';
import { deploymentProblem } from '../queues/deployment-registry.js';
import { startHttpServer, startReceiverServer, type HttpServer } from '../ops/http-server.js';
import { createUi } from '../ui/ui-server.js';
import { behindPassword, uiAccess } from '../ui/ui-access.js';
import { pushReceiver, type PushReceiver } from '../audit-log/push-receiver.js';
import { createMetrics, type WorkerMetrics } from '../ops/metrics.js';
import { queueDashboard } from '../queues/queue-dashboard.js';
import { tickDueGroups, type GroupStart } from '../schedule/catch-up.js';
import { reconcile, scheduleGroups } from '../schedule/reconcile.js';
import { describeSchedule } from '../schedule/schedule.js';
import { holdSchedule, takeSchedule, type HeldSchedule } from '../schedule/schedule-owner.js';
import { openServices, type Services } from '../queues/services.js';
import { onShutdown } from '../ops/signals.js';
import { loadAccounts } from '../sql/accounts.js';
import { loadTargetsFile, type TargetsFile } from '../config/targets.js';
import { startWorker, type RunningWorker } from '../work/worker.js';
import type { CommandContext } from './context.js';

/** What the command has started so far: a stop closes each that is there. */
interface Started {
  services?: Services;
  worker?: RunningWorker;
  http?: HttpServer;
  /** The receiver of audit-log pushes, and its own server when it has a port of its own. */
  receiver?: PushReceiver;
  receiverHttp?: HttpServer;
  schedule?: HeldSchedule;
}

/**
 * The start-up's steps. A signal during start-up waits for the step in flight
 * and starts no other, so whatever that step made (a schedule claim, a
 * connection) is closed by the stop rather than left behind.
 */
class StartupSteps {
  stopping = false;
  private inFlight: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.stopping) return new Promise<T>(() => {});
    const result = task();
    this.inFlight = result.catch(() => {});
    return result;
  }

  /** Starts no further step; resolves once the one in flight has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.inFlight;
  }
}

/** What `start` says of a schedule group at start-up. */
function dueGroupMessage(group: GroupStart): string {
  if (!group.due && !group.failed) return 'schedule: nothing due before its next tick';
  if (!group.tickedNow) return 'schedule: work is due; its scheduler ticks within a minute';
  return group.due
    ? 'schedule: work is due, ticking now'
    : 'schedule: its last attempt failed (API unreachable or failing, or the key refused): trying again now';
}

/** `start`'s first job: take the schedule, load the targets file into the database and tick what is due. */
async function reconcileFile(
  { logger, print }: CommandContext,
  config: Config,
  file: TargetsFile,
  takeOver: boolean,
  started: Started,
  steps: StartupSteps,
): Promise<void> {
  const { sql, queues } = started.services!;
  await steps.run(async () => {
    const claim = await takeSchedule(sql, file, { targetsFile: config.targetsFile, command: 'start', takeOver }, logger, print);
    started.schedule = holdSchedule(sql, claim, logger);
  });
  const result = await steps.run(() =>
    reconcile(sql, queues, file.targets, { snapshot: file.snapshot, scopes: file.scopes, accounts: file.accounts }),
  );
  logger.info({ ...result, targets_file: config.targetsFile }, 'reconciled');
  for (const group of await steps.run(() => tickDueGroups(sql, queues, scheduleGroups([...file.targets, ...file.scopes])))) {
    logger.info(
      { schedule: describeSchedule(group.key), due_now: group.due, last_failed: group.failed, next_tick_at: group.nextTickAt },
      dueGroupMessage(group),
    );
  }
}

/** The accounts the database names, each with its key from the environment (refused when one is missing). */
async function keyedAccounts(config: Config, sql: Services['sql'], steps: StartupSteps): Promise<KeyedAccount[]> {
  return withKeys(
    await steps.run(() => loadAccounts(sql)),
    process.env,
    `the accounts of the targets file last loaded into ${config.databaseUrl ? redactUrl(config.databaseUrl) : 'the embedded PostgreSQL'}`,
  );
}

/**
 * Serves /healthz, /readyz and /metrics (and the queue dashboard when asked
 * for) on HTTP_PORT, and receives Gcore's audit-log pushes (AUDIT_PUSH_URL)
 * there or on AUDIT_PUSH_PORT.
 */
async function serveHttp(
  { logger }: CommandContext,
  config: Config,
  accounts: KeyedAccount[],
  metrics: WorkerMetrics,
  started: Started,
  steps: StartupSteps,
): Promise<void> {
  const services = started.services!;
  const push = config.auditPush;

  const receiver = push
    ? pushReceiver({
        sql: services.sql,
        path: push.path,
        headerValue: push.headerValue,
        accounts: accounts.map((a) => a.name),
        logger,
        metrics,
      })
    : undefined;
  started.receiver = receiver;
  if (receiver && push?.port !== undefined) {
    started.receiverHttp = await steps.run(() => startReceiverServer({ host: config.httpHost, port: push.port! }, receiver));
    logger.info({ host: config.httpHost, port: started.receiverHttp.port, path: receiver.path }, 'receiving audit-log pushes');
  }
  if (config.httpPort === undefined) return;
  const dashboard = config.queueDashboard
    ? queueDashboard(
        services.queues,
        accounts.map((a) => a.name),
      )
    : undefined;
  const { backend, deployment } = services;
  const access = uiAccess(config.ui, config.httpHost);
  const http = await steps.run(() =>
    startHttpServer(
      { host: config.httpHost, port: config.httpPort! },
      {
        sql: services.sql,
        backend,
        metrics,
        deploymentProblem: () => deploymentProblem(services.sql, backend, deployment),
        lost: services.lost,
        keyProblem: () => {
          const problems = started.worker!.accountProblems();
          return problems.length > 0 ? problems.join('; ') : undefined;
        },
        pushReceiver: push?.port === undefined ? receiver : undefined,
        ui: access.kind === 'off' ? undefined : createUi({ sql: services.sql, access, logger }),
        dashboard: dashboard && access.kind === 'password' ? behindPassword(dashboard, access.password) : dashboard,
      },
    ),
  );
  started.http = http;
  logger.info(
    {
      host: config.httpHost,
      port: http.port,
      queue_dashboard: Boolean(dashboard),
      ...(receiver && push?.port === undefined && { audit_push_path: receiver.path }),
      ui:
        access.kind === 'off'
          ? 'off'
          : access.kind === 'password'
            ? 'with a password (UI_PASSWORD)'
            : access.kind === 'open'
              ? `open (${access.reason})`
              : 'closed',
    },
    access.kind === 'off' ? 'serving /healthz, /readyz and /metrics' : 'serving /healthz, /readyz, /metrics and the web view at /ui',
  );
  if (access.kind === 'closed') logger.warn(`the web view at /ui is closed: ${access.reason}`);
}

/** `worker` works the queues; `start` first reconciles the targets file (the main job). */
export async function workerCommand(context: CommandContext, reconcileFirst = false): Promise<number> {
  const { args, logger } = context;
  // `worker` takes no flags (cli.ts refuses any); `start` takes --take-over.
  const takeOver =
    reconcileFirst && parseArgs({ args, options: { 'take-over': { type: 'boolean', default: false } }, strict: true }).values['take-over'];
  const config = loadConfig();
  // Only the serving commands receive pushes: `status`, `sync` and the rest read the same settings without a port.
  if (config.auditPush && config.auditPush.port === undefined && config.httpPort === undefined)
    throw new ConfigError('environment', ['AUDIT_PUSH_URL: needs HTTP_PORT or AUDIT_PUSH_PORT: the receiver listens there']);
  const file = reconcileFirst ? await loadTargetsFile(config.targetsFile) : undefined;
  // `start` checks the file's keys before it touches anything; `worker` those of the accounts the database names, below.
  if (file) withKeys(file.accounts, process.env, config.targetsFile);
  // Handlers go in before anything starts, so an early signal still stops cleanly.
  const started: Started = {};
  const steps = new StartupSteps();
  onShutdown(logger, config.shutdownTimeoutMs, async () => {
    await steps.stop();
    await started.http?.close();
    await started.receiverHttp?.close();
    await started.receiver?.close();
    await started.worker?.close();
    await started.schedule?.release();
    await started.services?.close();
  });
  const services = await steps.run(() => openServices(config));
  started.services = services;
  if (services.embeddedDataDir !== undefined) {
    logger.info(
      { data_dir: services.embeddedDataDir },
      'data in the embedded PostgreSQL (DATABASE_URL is not set); `gcore-image-sync db` prints a URL for psql',
    );
  }
  let accounts: KeyedAccount[];
  try {
    if (file) await reconcileFile(context, config, file, takeOver, started, steps);
    accounts = await keyedAccounts(config, services.sql, steps);
  } catch (error) {
    // Open connections would keep a refused process alive.
    await started.schedule?.release();
    await services.close();
    throw error;
  }
  const metrics = createMetrics(services.queues, services.sql);
  if (steps.stopping) return new Promise<number>(() => {});
  started.worker = startWorker({ config, accounts, logger, metrics, ...services });
  await serveHttp(context, config, accounts, metrics, started, steps);
  // Runs until stopped, or until its data is gone for good: then nothing here can go on.
  return whenLost(services);
}
