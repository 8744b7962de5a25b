// The real pipeline wired for a test: targets file -> reconcile -> worker ->
// fake API -> Postgres, with the logs captured.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startManualSync, waitForRun } from '../../src/manual-sync.js';
import { reconcile } from '../../src/reconcile.js';
import { openServices, type Services } from '../../src/services.js';
import type { RunProgress } from '../../src/sql/getRun.js';
import { loadTargets } from '../../src/targets.js';
import { startWorker, type RunningWorker } from '../../src/worker.js';
import type { TestEnv } from './env.js';

/** A schedule that does not fire during a test, so only manual syncs refresh. */
export const QUIET_SCHEDULE = 'schedule: { cron: "0 0 1 1 *", tz: UTC }';

export interface Pipeline {
  config: Config;
  services: Services;
  logLines: string[];
  /** A manual sync through the worker, resolved once every target has an outcome. */
  sync(): Promise<RunProgress>;
  close(): Promise<void>;
}

export async function writeTargetsFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gis-targets-'));
  const path = join(dir, 'targets.yaml');
  await writeFile(path, content);
  return path;
}

export async function startPipeline(env: TestEnv, baseUrl: string, targetsYaml: string, overrides: Record<string, string> = {}): Promise<Pipeline> {
  const config = env.config({ GCORE_BASE_URL: baseUrl, TARGETS_FILE: await writeTargetsFile(targetsYaml), ...overrides });
  const logLines: string[] = [];
  const logger = createLogger('debug', new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  }));
  const services = await openServices(config);
  await reconcile(services.sql, services.queues, await loadTargets(config.targetsFile));
  const worker: RunningWorker = startWorker({ config, apiKey: config.apiKey!, logger, ...services });
  return {
    config,
    services,
    logLines,
    async sync() {
      const run = await startManualSync(services.sql, services.queues, config.attempts);
      return waitForRun(services.sql, run.id, () => {}, 50);
    },
    async close() {
      await worker.close();
      await services.close();
    },
  };
}
