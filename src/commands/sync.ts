import { parseArgs } from 'node:util';
import { withKeys, type KeyedAccount } from '../config/accounts.js';
import { loadConfig } from '../config/config.js';
import { inert } from '../ops/log-format.js';
import { ConfigError } from '../errors.js';
import { imageIdProblem } from '../images/image-id.js';
import { INT4_MAX, wholeNumber } from '../config/input-ranges.js';
import type { Triple } from '../interfaces.js';
import { startManualSync, waitForRun } from '../work/manual-sync.js';
import { progressReporter } from '../ops/progress.js';
import { closeRunSaying } from '../ops/run-log.js';
import { counted, doneOf, rejectedKeysError, runExitCode, runSummary, totalOf } from '../ops/run-summary.js';
import { takeSchedule } from '../schedule/schedule-owner.js';
import { openServices } from '../queues/services.js';
import { getRun, type RunProgress } from '../sql/getRun.js';
import { tripleKey } from '../images/triple.js';
import { isTarget } from '../sql/isTarget.js';
import { replaceTargets } from '../sql/replaceTargets.js';
import { loadTargetsFile } from '../config/targets.js';
import { startWorker, type RunningWorker } from '../work/worker.js';
import type { CommandContext } from './context.js';

/** `<project_id>/<region_id>/<image_id>`, checked as the targets file checks it. */
function parseTarget(text: string): Triple {
  const [project, region, ...rest] = text.split('/');
  const imageId = rest.join('/');
  const idProblem = imageIdProblem(imageId);
  const problems: string[] = [];
  const projectId = wholeNumber(project ?? '', 1, INT4_MAX);
  const regionId = wholeNumber(region ?? '', 1, INT4_MAX);
  if (projectId === undefined) problems.push(`the project id must be a whole number from 1 to ${INT4_MAX}`);
  if (regionId === undefined) problems.push(`the region id must be a whole number from 1 to ${INT4_MAX}`);
  if (idProblem) problems.push(`the image id ${idProblem}`);
  if (problems.length > 0)
    throw new ConfigError(
      'sync flags',
      problems.map((p) => `--target: ${p} (expected <project_id>/<region_id>/<image_id>, got "${text}")`),
    );
  return { projectId: projectId!, regionId: regionId!, imageId };
}

/**
 * Stores the targets file's triples (schedules are left to `schedule` and
 * `start`), then queues a refresh of every target now.
 * With --wait this process also works the queue (sharing the global rate
 * limit with any other workers) and exits once every refresh has an outcome.
 */
export async function syncCommand({ args, logger, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { wait: { type: 'boolean', default: false }, target: { type: 'string' }, account: { type: 'string' } },
    strict: true,
  });
  const target = values.target === undefined ? undefined : parseTarget(values.target);
  const config = loadConfig();
  const file = await loadTargetsFile(config.targetsFile);
  const names = file.accounts.map((a) => a.name);
  if (values.account !== undefined && !names.includes(values.account)) {
    throw new ConfigError('sync flags', [
      `--account: no account ${JSON.stringify(values.account)} in ${config.targetsFile}: one of ${names.join(', ')}`,
    ]);
  }
  // --wait works the run here, with the key of each account it covers.
  const accounts = values.wait
    ? withKeys(
        file.accounts.filter((a) => values.account === undefined || a.name === values.account),
        process.env,
        config.targetsFile,
      )
    : undefined;
  const listed = target !== undefined && file.targets.some((t) => tripleKey(t) === tripleKey(target));
  if (target && !listed && file.scopes.length === 0) {
    throw new ConfigError('sync flags', [`--target: ${values.target} is not in ${config.targetsFile}`]);
  }
  const services = await openServices(config);
  // Accounts whose key the API rejected: this process serves them no more, and waits only for the others.
  const rejected = new Map<string, KeyedAccount>();
  let worker: RunningWorker | undefined;
  try {
    // sync writes the targets too, so it may not replace those of a running `start` with another file.
    await takeSchedule(services.sql, file, { targetsFile: config.targetsFile, command: 'sync', takeOver: false }, logger, print);
    await replaceTargets(services.sql, file.targets, file.scopes, file.accounts);
    // A triple a scope discovered is a target too, once a listing has found it.
    if (target && !listed && !(await isTarget(services.sql, target))) {
      throw new ConfigError('sync flags', [
        `--target: ${values.target} is not in ${config.targetsFile} and no scope of it has discovered that image`,
      ]);
    }
    // The progress line on stderr says what the worker's progress lines would.
    if (accounts)
      worker = startWorker({
        config: { ...config, logProgressSeconds: 0 },
        accounts,
        logger,
        ...services,
        onKeyRejected: (account) => rejected.set(account.name, account),
      });
    const run = await startManualSync(services.sql, services.queues, config.batchSize, { target, account: values.account });
    // Scopes by their names (made-up ones hold commas, hence the semicolons).
    const scopeNames = file.scopes.filter((s) => values.account === undefined || s.account === values.account).map((s) => s.name);
    const named = scopeNames.length === run.listings.length ? ` (${inert(scopeNames.join('; '))})` : '';
    const listings = run.listings.length > 0 ? ` and ${counted(run.listings.length, 'scope listing')}${named}` : '';
    print(`run ${run.id}: queued ${counted(run.planned, 'refresh', 'refreshes')}${listings}`);
    if (!values.wait) {
      // Without a worker the run stays open: say so now rather than leave it to be found later.
      // A worker serves every account it has a key for: the fewest listening on any account's queue is who can do the whole run.
      const covered = names.filter((a) => values.account === undefined || a === values.account);
      const workers = Math.min(...(await Promise.all(covered.map((a) => services.queues.forAccount(a).refresh.getWorkersCount()))));
      print(
        workers > 0
          ? `${counted(workers, 'worker')} listening on ${services.backend.where}`
          : `no worker is listening on ${services.backend.where}: run \`gcore-image-sync worker\` (or \`start\`) to do them, or \`sync --wait\` to do them here`,
      );
      return 0;
    }
    const progress = progressReporter(process.stderr, `run ${run.id}`);
    const onProgress = (p: RunProgress) => {
      if (p.finishedAt === null) progress.update(doneOf(p), totalOf(p));
    };
    let final = await waitForRun(services.sql, services.queues, run, onProgress, {
      logger,
      batchSize: config.batchSize,
      onNotice: (message) => logger.warn(message),
      stoppedAccounts: () => new Set(rejected.keys()),
    });
    progress.finish();
    if (final.finishedAt === null) {
      // Only the rejected accounts' work is left: what this process has in flight settles first, so the counts are final.
      await worker?.close();
      worker = undefined;
      await closeRunSaying(services.sql, services.queues, logger, run.id, rejectedKeysError([...rejected.values()]));
      final = (await getRun(services.sql, run.id))!;
    }
    print(runSummary(final));
    return runExitCode(final);
  } finally {
    await worker?.close();
    await services.close();
  }
}
