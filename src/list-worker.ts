// The BullMQ worker for scope listings: an expand job turns a scope into parts
// (scope-expansion.ts); a page job fetches one page of a part and stores every
// image on it through the same validation and write path as a GET. The
// process that records a listing's last page ends it (sql/finishListing.ts)
// and queues the GETs that confirm absences.
import { DelayedError, type Job, type Worker } from 'bullmq';
import type { ListPage, ListRequest } from './gcore-client.js';
import { imageIdProblem } from './image-id.js';
import type { Observation, Triple } from './interfaces.js';
import { MAX_PART_COUNT, PAGE_LIMIT } from './list-query.js';
import {
  confirmJobPrefix,
  enqueueListJobs,
  jobDeployment,
  MAX_STALLED_COUNT,
  type ExpandJobData,
  type ListJobData,
  type PageJobData,
} from './queue.js';
import { runAgainLater, sweepFailedJobs } from './job-recovery.js';
import { decide, describeFailure } from './refresh-policy.js';
import { paced } from './refresh.js';
import { storeObservations } from './image-store.js';
import { observe } from './observe.js';
import type { RefreshWorkerDeps } from './refresh-worker.js';
import { scopeLabel } from './sql/scopeLabel.js';
import { finishRunsSaying } from './run-log.js';
import { expandScope, IncompleteListError } from './scope-expansion.js';
import type { ScopeDefinition } from './scope.js';
import { creditRuns } from './sql/creditRuns.js';
import type { Claim } from './sql/claimTargets.js';
import { abandonExpansion, finishListing, getListing, pendingConfirmations } from './sql/finishListing.js';
import { finishPage, pagesToQueue, planParts, queuedPage, recordListed, type QueuedPage } from './sql/listingPages.js';
import { recordFailure } from './sql/recordFailure.js';
import { enqueueClaims, requeueListings } from './fan-out.js';
import type { RateLimitedError } from './gcore-errors.js';
import { tripleKey } from './triple.js';

/** What the refresh worker is given (batchSize: images per confirming GET batch), less its own concurrency. */
export interface ListWorkerDeps extends Omit<RefreshWorkerDeps, 'concurrency' | 'onKeyRejected'> {
  /** The API answered 429: hold back every process's requests. */
  onRateLimited(error: RateLimitedError): Promise<void>;
  /** The API rejected the key: this process stops sending. */
  onKeyRejected(): void;
}

/** Images of a page stored in one go: a page is stored in a few transactions, never held with the rest of the listing. */
const STORE_CHUNK = 250;
/** A listing open this long may have lost its jobs: they are queued again (a job that exists is not added twice). */
const STUCK_AFTER_MS = 5 * 60_000;
/** How long a request withheld by this process (its key was rejected) waits before another process may take it. */
const HAND_BACK_MS = 2000;

/** A listed image, validated or not: a bad image is recorded as its own failure and never blocks the page. */
type Listed = { triple: Triple; observation: Observation } | { triple: Triple; error: unknown };

/** The images of one page: those with a usable id, each id once, and how many results had none or repeated one on the page. */
function readPage(account: string, page: QueuedPage, answer: ListPage): { listed: Listed[]; unusable: number; repeatedOnPage: number } {
  const listed: Listed[] = [];
  const ids = new Set<string>();
  let unusable = 0;
  let repeatedOnPage = 0;
  for (const result of answer.results) {
    const id = (result as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || imageIdProblem(id)) {
      unusable += 1;
      continue;
    }
    if (ids.has(id)) {
      repeatedOnPage += 1;
      continue;
    }
    ids.add(id);
    const triple = { projectId: page.projectId, regionId: page.regionId, imageId: id };
    try {
      listed.push({ triple, observation: observe(account, triple, result, answer.observedAt) });
    } catch (error) {
      listed.push({ triple, error });
    }
  }
  return { listed, unusable, repeatedOnPage };
}

export function startListWorker(deps: ListWorkerDeps): Worker<ListJobData> {
  const { sql, queues, own, logger, metrics } = deps;

  const fetchPage = (request: ListRequest, offset: number) =>
    paced(
      {
        limiter: deps.limiter,
        onRateLimited: deps.onRateLimited,
        onAnswer: deps.onAnswer,
      },
      () => deps.client.listPage(request, offset, PAGE_LIMIT),
      () => '200',
    );

  async function queuePages(listingId: number, pages: Array<{ part: number; page: number }>): Promise<void> {
    await enqueueListJobs(
      own.list,
      pages.map(({ part, page }) => ({ kind: 'page', listingId, part, page, attempt: 0 })),
    );
  }

  async function queueConfirmations(scopeKey: string, claims: Claim[]): Promise<void> {
    await enqueueClaims(queues, claims, (t) => ({ ...t, attempt: 0, confirmScope: scopeKey }));
  }

  /** Ends the listing if this was its last page, and queues the GETs that confirm what it did not return. */
  async function finish(listingId: number): Promise<void> {
    const jobPrefix = confirmJobPrefix(own.refresh, listingId);
    const done = await finishListing(sql, listingId, { batchSize: deps.batchSize, jobPrefix });
    if (!done) return;
    // A sampled listing is counted once its sample decides it (scope-confirm.ts).
    if (done.sampled === null) metrics?.listings.inc({ account: deps.account.name, status: done.status });
    await queueConfirmations(done.scopeKey, done.confirm);
    const absent = done.confirm.reduce((n, c) => n + c.triples.length, 0);
    const fields = {
      listing_id: listingId,
      ...(await scopeLabel(sql, done.scopeKey)),
      expected: done.expected,
      listed: done.listed,
      absent,
    };
    if (done.status === 'incomplete') logger.error({ ...fields, error: done.error }, 'listing incomplete: nothing deleted or confirmed');
    else if (done.sampled !== null) {
      logger.warn(
        { ...fields, suspect: done.suspect, sampled: done.sampled },
        'listing suspect: it contradicts what is stored; a sample of what it did not return is confirmed first, and nothing else until it answers',
      );
    } else logger.info(fields, 'listing complete');
    await finishRunsSaying(sql, queues, logger);
  }

  /** A job that ran before, and may have stopped anywhere after its commit: whatever its listing still waits for is queued again. */
  async function resume(listingId: number, part?: number): Promise<void> {
    await queuePages(listingId, await pagesToQueue(sql, listingId, part));
    await finish(listingId);
    const pending = await pendingConfirmations(sql, listingId, confirmJobPrefix(own.refresh, listingId));
    if (pending) {
      await queueConfirmations(pending.scopeKey, pending.claims);
      await finishRunsSaying(sql, queues, logger);
    }
  }

  /** The policy's decision on a failed request: retried later (the job keeps its id), or the page or listing fails. */
  async function requestFailed(
    job: Job<ListJobData>,
    token: string | undefined,
    error: unknown,
    fail: (message: string) => Promise<void>,
  ): Promise<number> {
    const decision = decide(error, job.data, deps.policy);
    if (decision.kind === 'fail') {
      await fail(decision.failure.message);
      if (decision.stopWorker) deps.onKeyRejected();
      return 0;
    }
    const delayMs = decision.kind === 'retry' ? decision.delayMs : HAND_BACK_MS;
    if (decision.kind === 'retry') {
      // A cause that fails the account's requests is said once for them all (repeated-errors.ts).
      const cause = deps.causes.of(decision.failure);
      if (cause) deps.causes.report(cause, [`listing job ${job.id}`], decision.failure.message);
      logger[cause ? 'debug' : 'warn'](
        { job_id: job.id, attempt: decision.item.attempt, error: decision.failure.message, retry_in_ms: delayMs },
        'listing request failed; will retry',
      );
    }
    await job.updateData(decision.item);
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  async function processExpand(job: Job<ListJobData>, token: string | undefined, data: ExpandJobData): Promise<number> {
    const listing = await getListing(sql, data.listingId);
    if (!listing) return 0;
    if (listing.status !== 'expanding') {
      await resume(listing.id);
      return 0;
    }
    const abandon = async (message: string) => {
      await abandonExpansion(sql, listing.id, message);
      await finish(listing.id);
    };
    if (listing.definition == null) {
      await abandon('its scope is no longer configured');
      return 0;
    }
    let parts;
    try {
      parts = await expandScope(fetchPage, listing.definition as ScopeDefinition);
    } catch (error) {
      if (error instanceof IncompleteListError) {
        await abandon(error.message);
        return 0;
      }
      return requestFailed(job, token, error, abandon);
    }
    await planParts(sql, listing.id, parts);
    const pages = await pagesToQueue(sql, listing.id);
    await queuePages(listing.id, pages);
    // A scope with no project or region to list ends here.
    if (pages.length === 0) await finish(listing.id);
    return parts.length;
  }

  /** Stores the images of a page; returns the triples whose attempt it recorded. */
  async function storePage(page: QueuedPage, listed: Listed[]): Promise<{ triples: Triple[]; counts: Record<string, number> }> {
    const counts: Record<string, number> = { unchanged: 0, changed: 0, failed: 0, warnings: 0 };
    for (let start = 0; start < listed.length; start += STORE_CHUNK) {
      const chunk = listed.slice(start, start + STORE_CHUNK);
      const valid = chunk.flatMap((l) => ('observation' in l ? [l.observation] : []));
      const stored = await storeObservations(sql, valid);
      for (const item of chunk) {
        const result = 'error' in item ? item.error : stored.get(tripleKey(item.triple));
        const fields = {
          project_id: item.triple.projectId,
          region_id: item.triple.regionId,
          image_id: item.triple.imageId,
          listing_id: page.listingId,
        };
        if (result === 'unchanged' || result === 'changed' || result === undefined) {
          counts[result ?? 'unchanged']! += 1;
          for (const warning of 'observation' in item ? item.observation.warnings : []) {
            counts.warnings! += 1;
            logger.warn({ ...fields, warning }, 'stored with a warning');
          }
          continue;
        }
        // What is wrong with one listed image is about that image: the same answer would come again, so it is not retried.
        const failure = describeFailure(result);
        await recordFailure(sql, deps.account.name, item.triple, { ...failure, attempts: 1 });
        counts.failed! += 1;
        logger.error(
          { ...fields, outcome: 'failed', status: failure.status, error_class: failure.errorClass, error: failure.message },
          'refresh',
        );
      }
    }
    return { triples: listed.map((l) => l.triple), counts };
  }

  async function processPage(job: Job<ListJobData>, token: string | undefined, data: PageJobData): Promise<number> {
    const page = await queuedPage(sql, data);
    if (!page) {
      await resume(data.listingId, data.part);
      return 0;
    }
    const failPage = async (message: string) => {
      await finishPage(sql, page, { error: message });
      await finish(page.listingId);
    };
    if (!page.scopeConfigured) {
      await failPage('its scope is no longer configured');
      return 0;
    }
    let answer: ListPage;
    try {
      answer = await fetchPage(
        { endpoint: page.endpoint, projectId: page.projectId, regionId: page.regionId, query: page.query },
        page.page * PAGE_LIMIT,
      );
    } catch (error) {
      return requestFailed(job, token, error, failPage);
    }
    if (answer.count > MAX_PART_COUNT) {
      await failPage(`the API counts ${answer.count} images, more than the ${MAX_PART_COUNT} one project and region may hold here`);
      return 0;
    }
    const read = readPage(deps.account.name, page, answer);
    const { unusable } = read;
    const recorded = await recordListed(
      sql,
      page,
      read.listed.map((l) => l.triple),
    );
    const repeated = read.repeatedOnPage + recorded.repeated;
    // One image, one account: what another account tracks is its key's to fetch and store.
    const listed = read.listed.filter((l) => !recorded.otherAccounts.has(l.triple.imageId));
    if (recorded.otherAccounts.size > 0) {
      logger.warn(
        { listing_id: page.listingId, project_id: page.projectId, region_id: page.regionId, images: recorded.otherAccounts.size },
        'listed images that another account tracks: left to that account',
      );
    }
    const { triples, counts } = await storePage(page, listed);
    const next = await finishPage(sql, page, {
      answer: { count: answer.count, results: answer.results.length, repeated, unusable },
      pageLimit: PAGE_LIMIT,
    });
    await queuePages(page.listingId, next);
    for (const outcome of ['unchanged', 'changed', 'failed'] as const)
      if (counts[outcome]) metrics?.refreshes.inc({ account: deps.account.name, outcome }, counts[outcome]);
    if (counts.warnings) metrics?.warnings.inc(counts.warnings);
    if (counts.unchanged! + counts.changed! > 0) metrics?.lastSuccess.set(Date.now() / 1000);
    logger.debug(
      {
        listing_id: page.listingId,
        part: page.part,
        page: page.page,
        endpoint: page.endpoint,
        project_id: page.projectId,
        region_id: page.regionId,
        count: answer.count,
        results: answer.results.length,
        repeated,
        unusable,
        ...counts,
      },
      'listing page',
    );
    if ((await creditRuns(sql, triples)).length > 0) await finishRunsSaying(sql, queues, logger);
    await finish(page.listingId);
    return triples.length;
  }

  async function process(job: Job<ListJobData>, token?: string): Promise<number> {
    await deps.guard.check(job, token);
    try {
      return job.data.kind === 'expand' ? await processExpand(job, token, job.data) : await processPage(job, token, job.data);
    } catch (error) {
      return runAgainLater(job, token, error, logger, 'listing job');
    }
  }

  /**
   * Listing jobs that failed for good (crashed every time, or stalled too
   * often), in any process: the page or expansion is recorded as failed, so
   * the listing ends incomplete instead of waiting for ever. Listings open
   * for long get their jobs queued again first.
   */
  async function recoverFailedJobs(): Promise<void> {
    // Listings whose jobs were lost (with Redis's data, or a crash between a commit and a queueing) get them again.
    await requeueListings(sql, queues, { olderThanMs: STUCK_AFTER_MS });
    for (const job of await own.list.getFailed(0, 99)) {
      if (!job || (jobDeployment(job) ?? own.list.deployment) !== own.list.deployment) continue;
      const message = `its job failed: ${job.failedReason || 'unknown reason'}`;
      if (job.data.kind === 'expand') await abandonExpansion(sql, job.data.listingId, message);
      else {
        const page = await queuedPage(sql, job.data);
        if (page) await finishPage(sql, page, { error: message });
      }
      await finish(job.data.listingId);
      await job.remove().catch(() => {});
    }
  }

  const worker = deps.backend.worker<ListJobData>(own.list.name, process, {
    ...deps.workerOptions,
    name: `list-${deps.workerId}`,
    maxStalledCount: MAX_STALLED_COUNT,
    // One page is fetched while another is stored.
    concurrency: 2,
  });
  worker.on('failed', (job, error) => {
    logger.warn({ job_id: job?.id, attempt: job?.attemptsMade, error: error.message }, 'listing job failed');
  });
  sweepFailedJobs(worker, deps.workerOptions.stalledInterval, recoverFailedJobs, logger, 'listing jobs');
  return worker;
}
