import { loadConfig, requireApiKey } from '../config.js';
import { deploymentProblem } from '../deployment-registry.js';
import { startHttpServer, type HttpServer } from '../http-server.js';
import { createMetrics } from '../metrics.js';
import { queueDashboard } from '../queue-dashboard.js';
import { reconcile } from '../reconcile.js';
import { openServices, type Services } from '../services.js';
import { onShutdown } from '../signals.js';
import { loadTargetsFile } from '../targets.js';
import { startWorker, type RunningWorker } from '../worker.js';
import type { CommandContext } from './context.js';

/** `worker` works the queues; `start` first reconciles the targets file (the main job). */
export async function workerCommand({ logger }: CommandContext, reconcileFirst = false): Promise<number> {
  const config = loadConfig();
  const apiKey = requireApiKey(config);
  const file = reconcileFirst ? await loadTargetsFile(config.targetsFile) : undefined;
  // Handlers go in before anything starts, so an early signal still stops cleanly.
  let services: Services | undefined;
  let worker: RunningWorker | undefined;
  let http: HttpServer | undefined;
  onShutdown(logger, config.shutdownTimeoutMs, async () => {
    await http?.close();
    await worker?.close();
    await services?.close();
  });
  services = await openServices(config);
  if (file) {
    const result = await reconcile(services.sql, services.queues, file.targets, file.snapshot);
    logger.info({ ...result, targets_file: config.targetsFile }, 'reconciled');
  }
  const metrics = createMetrics(services.queues);
  worker = startWorker({ config, apiKey, logger, metrics, ...services });
  if (config.httpPort !== undefined) {
    const dashboard = config.queueDashboard ? queueDashboard(services.queues) : undefined;
    const { redis, deployment } = services;
    http = await startHttpServer(config.httpPort, {
      sql: services.sql,
      redis,
      metrics,
      dashboard,
      deploymentProblem: () => deploymentProblem(redis, config.queuePrefix, deployment),
    });
    logger.info({ port: http.port, queue_dashboard: Boolean(dashboard) }, 'serving /healthz, /readyz and /metrics');
  }
  return new Promise<number>(() => {});
}
