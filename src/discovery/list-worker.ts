// The BullMQ worker for scope listings: an expand job turns a scope into parts
// (scope-expansion.ts); a page job fetches one page of a part and stores every
// image on it through the same validation and write path as a GET. The
// process that records a listing's last page ends it (sql/finishListing.ts)
// and queues the GETs that confirm absences.
import { DelayedError, type Job, type Worker } from 'bullmq';
import type { AccountContext } from '../work/account-context.js';
import type { ListPage } from '../gcore/gcore-client.js';
import { storeObservations } from '../work/image-store.js';
import type { Triple } from '../interfaces.js';
import { runAgainLater, sweepFailedJobs } from '../queues/job-recovery.js';
import { listedOutcome, listRequestOf, readListedPage, type ListedImage, type PageCounts, type PageReading } from './list-page.js';
import { kindList, kindOfList } from '../images/image-kinds.js';
import { matchesFilters } from './scope-match.js';
import { scopeDefinition } from '../sql/scopeDefinition.js';
import { MAX_PART_COUNT, PAGE_LIMIT } from '../gcore/list-query.js';
import {
  confirmJobPrefix,
  enqueueListJobs,
  jobDeployment,
  MAX_STALLED_COUNT,
  type ExpandJobData,
  type ListJobData,
  type PageJobData,
} from '../queues/queue.js';
import { decide, describeFailure, HAND_BACK, LOST } from '../work/retry-policy.js';
import { finishRunsSaying } from '../ops/run-log.js';
import { expandScope, IncompleteListError, type FetchPage } from './scope-expansion.js';
import type { ScopeDefinition } from '../config/scope.js';
import type { Claim } from '../sql/claimTargets.js';
import { creditRuns } from '../sql/creditRuns.js';
import { abandonExpansion, finishListing, getListing, pendingConfirmations } from '../sql/finishListing.js';
import { finishPage, pagesToQueue, planParts, queuedPage, recordListed, type QueuedPage } from '../sql/listingPages.js';
import { recordFailure } from '../sql/recordFailure.js';
import { runListingOpen } from '../sql/runListings.js';
import { scopeLabel } from '../sql/scopeLabel.js';
import { enqueueClaims, requeueListings } from '../work/fan-out.js';
import { USAGE_PART } from '../usage/usage-parts.js';
import { IncompleteUsageError, listUsage, type RequestCount } from '../usage/usage-listing.js';
import { recordUsage, type UsageOutcome } from '../sql/recordUsage.js';

/** Images of a page stored in one go: a page is stored in a few transactions, never held with the rest of the listing. */
const STORE_CHUNK = 250;

export function startListWorker(ctx: AccountContext): Worker<ListJobData> {
  const listings = new ListingJobs(ctx);
  const worker = ctx.backend.worker<ListJobData>(ctx.own.list, (job, token) => listings.runListJob(job, token), {
    ...ctx.workerOptions,
    name: `list-${ctx.workerId}`,
    maxStalledCount: MAX_STALLED_COUNT,
    // One page is fetched while another is stored.
    concurrency: 2,
  });
  worker.on('failed', (job, error) => {
    ctx.logger.warn({ job_id: job?.id, attempt: job?.attemptsMade, error: error.message }, 'listing job failed');
  });
  sweepFailedJobs(worker, ctx.workerOptions.stalledInterval, () => listings.recoverFailedJobs(), ctx.logger, 'listing jobs');
  return worker;
}

/** What the list worker does with one account's listing jobs; its only state is the account's context. */
class ListingJobs {
  private readonly fetchPage: FetchPage;
  /** The consumer lists' pages: only their ids and strings are read, so their numbers are parsed as doubles. */
  private readonly fetchConsumers: FetchPage;

  constructor(private readonly ctx: AccountContext) {
    this.fetchPage = (request, offset) => ctx.api.listPage(request, offset, PAGE_LIMIT);
    this.fetchConsumers = (request, offset) => ctx.api.listPage(request, offset, PAGE_LIMIT, false);
  }

  /** Runs an expand or page job; Postgres away sends the job back for later without spending an attempt. */
  async runListJob(job: Job<ListJobData>, token?: string): Promise<number> {
    await this.ctx.guard.check(job, token);
    try {
      return job.data.kind === 'expand' ? await this.expand(job, token, job.data) : await this.listPage(job, token, job.data);
    } catch (error) {
      return runAgainLater(job, token, error, this.ctx.logger, 'listing job');
    }
  }

  /**
   * Listing jobs that failed for good (crashed every time, or stalled too
   * often), in any process: the page or expansion is recorded as failed, so
   * the listing ends incomplete instead of waiting for ever. Listings open
   * for long get their jobs queued again first.
   */
  async recoverFailedJobs(): Promise<void> {
    const { sql, queues, own } = this.ctx;
    // Listings whose jobs were lost (with Redis's data, or a crash between a commit and a queueing) get them again.
    await requeueListings(sql, queues, { olderThanMs: LOST.listingMs });
    for (const job of await own.list.getFailed(0, 99)) {
      if (!job || (jobDeployment(job) ?? own.list.deployment) !== own.list.deployment) continue;
      const message = `its job failed: ${job.failedReason || 'unknown reason'}`;
      if (job.data.kind === 'expand') await abandonExpansion(sql, job.data.listingId, message);
      else {
        const page = await queuedPage(sql, job.data);
        // A usage part that failed for good is an incomplete usage listing, never a failed page of images.
        if (page?.endpoint === USAGE_PART) await this.endUsagePart(page, { startedAt: new Date(), requests: 0, error: message });
        else if (page) await finishPage(sql, page, { error: message });
      }
      await this.finish(job.data.listingId);
      await job.remove().catch(() => {});
    }
  }

  private async expand(job: Job<ListJobData>, token: string | undefined, data: ExpandJobData): Promise<number> {
    const { sql } = this.ctx;
    const listing = await getListing(sql, data.listingId);
    if (!listing) return 0;
    if (listing.status !== 'expanding') {
      await this.resume(listing.id);
      return 0;
    }
    const abandon = async (message: string) => {
      await abandonExpansion(sql, listing.id, message);
      await this.finish(listing.id);
    };
    if (listing.definition == null) {
      await abandon('its scope is no longer configured');
      return 0;
    }
    let parts;
    try {
      parts = await expandScope(this.fetchPage, listing.definition as ScopeDefinition);
    } catch (error) {
      if (error instanceof IncompleteListError) {
        await abandon(error.message);
        return 0;
      }
      return this.requestFailed(job, token, error, abandon);
    }
    await planParts(sql, listing.id, parts);
    const pages = await pagesToQueue(sql, listing.id);
    await this.queuePages(listing.id, pages);
    // A scope with no project or region to list ends here.
    if (pages.length === 0) await this.finish(listing.id);
    return parts.length;
  }

  /** Fetches one page of a part and stores its images; returns how many images it recorded an attempt for. */
  private async listPage(job: Job<ListJobData>, token: string | undefined, data: PageJobData): Promise<number> {
    const { sql } = this.ctx;
    const page = await queuedPage(sql, data);
    if (!page) {
      await this.resume(data.listingId, data.part);
      return 0;
    }
    const failPage = async (message: string) => {
      await finishPage(sql, page, { error: message });
      await this.finish(page.listingId);
    };
    if (!page.scopeConfigured) {
      await failPage('its scope is no longer configured');
      return 0;
    }
    if (page.endpoint === USAGE_PART) return this.listUsagePart(job, token, page);
    let answer: ListPage;
    try {
      answer = await this.fetchPage(listRequestOf(page), page.page * PAGE_LIMIT);
    } catch (error) {
      return this.requestFailed(job, token, error, failPage);
    }
    if (answer.count > MAX_PART_COUNT) {
      await failPage(`the API counts ${answer.count} images, more than the ${MAX_PART_COUNT} one project and region may hold here`);
      return 0;
    }
    const triples = await this.takePage(page, answer);
    if ((await creditRuns(sql, triples)).length > 0) await finishRunsSaying(sql, this.ctx.queues, this.ctx.logger);
    await this.finish(page.listingId);
    return triples.length;
  }

  /**
   * A usage part: every consumer list of its project and region, recorded whole or as incomplete (which
   * changes no consumer). Its page answers with no image either way, so the scope's images are judged by
   * their own pages alone; a failed request is retried by the policy, the whole usage listing again.
   */
  private async listUsagePart(job: Job<ListJobData>, token: string | undefined, page: QueuedPage): Promise<number> {
    const where = { projectId: page.projectId, regionId: page.regionId };
    const sent: RequestCount = { requests: 0 };
    const startedAt = new Date();
    const record = (outcome: UsageOutcome) => this.endUsagePart(page, outcome);
    let consumers;
    try {
      consumers = await listUsage(this.fetchConsumers, where, sent);
    } catch (error) {
      if (error instanceof IncompleteUsageError) {
        await record({ startedAt, requests: sent.requests, error: error.message });
        return 0;
      }
      return this.requestFailed(job, token, error, (message) => record({ startedAt, requests: sent.requests, error: message }));
    }
    await record({ startedAt, requests: sent.requests, consumers });
    return 0;
  }

  /** Records what a usage part came to, and answers its page with no image; the listing ends if it was the last. */
  private async endUsagePart(page: QueuedPage, outcome: UsageOutcome): Promise<void> {
    const { sql, logger } = this.ctx;
    const where = { listingId: page.listingId, projectId: page.projectId, regionId: page.regionId };
    const written = await recordUsage(sql, where, outcome);
    const fields = { listing_id: page.listingId, project_id: page.projectId, region_id: page.regionId, requests: outcome.requests };
    if ('error' in outcome) logger.warn({ ...fields, error: outcome.error }, 'usage listing incomplete: no consumer changed');
    else logger.debug({ ...fields, consumers: outcome.consumers.length, ...written }, 'usage listing complete');
    await finishPage(sql, page, { answer: { count: 0, results: 0, repeated: 0, unusable: 0, shared: 0 }, pageLimit: PAGE_LIMIT });
    await this.finish(page.listingId);
  }

  /** How a page's images are read: as its list's kind; the images of a list that takes no filters kept where its scope's filters say. */
  private async pageReading(page: QueuedPage): Promise<Required<PageReading>> {
    // The page was fetched, so a kind of this process lists its endpoint.
    const kind = kindOfList(page.endpoint)!;
    if (kindList(page.endpoint)!.filters) return { kind, keep: () => true };
    const definition = (await scopeDefinition(this.ctx.sql, page.scopeKey)) as ScopeDefinition | undefined;
    return { kind, keep: (snapshot) => definition === undefined || matchesFilters(snapshot, definition.filters) };
  }

  /** Records and stores the images of a page's answer, queues the part's other pages, and says what came of it; returns the triples whose attempt it recorded. */
  private async takePage(page: QueuedPage, answer: ListPage): Promise<Triple[]> {
    const { sql, logger } = this.ctx;
    const reading = await this.pageReading(page);
    const read = readListedPage(this.ctx.account.name, page, answer, reading);
    const { unusable } = read;
    const recorded = await recordListed(
      sql,
      page,
      read.listed.map((l) => l.triple),
      reading.kind,
      read.passedOver,
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
    const { counts, attempted } = await this.storePage(page, listed);
    const next = await finishPage(sql, page, {
      answer: { count: answer.count, results: answer.results.length, repeated, unusable, shared: recorded.shared },
      pageLimit: PAGE_LIMIT,
    });
    await this.queuePages(page.listingId, next);
    this.countPage(counts);
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
    return attempted;
  }

  /** Stores the images of a page, a chunk at a time; a listed image that cannot be stored is recorded as its own failure. */
  private async storePage(page: QueuedPage, listed: ListedImage[]): Promise<{ counts: PageCounts; attempted: Triple[] }> {
    const counts: PageCounts = { unchanged: 0, changed: 0, failed: 0, warnings: 0 };
    // What the page recorded an attempt for: a change or a failure (an unchanged image's sighting is its listing's).
    const attempted: Triple[] = [];
    for (let start = 0; start < listed.length; start += STORE_CHUNK) {
      const chunk = listed.slice(start, start + STORE_CHUNK);
      const valid = chunk.flatMap((l) => ('observation' in l ? [l.observation] : []));
      const stored = await storeObservations(this.ctx.sql, valid, 'listing');
      for (const item of chunk) {
        const outcome = listedOutcome(item, stored);
        const fields = {
          project_id: item.triple.projectId,
          region_id: item.triple.regionId,
          image_id: item.triple.imageId,
          listing_id: page.listingId,
        };
        if (typeof outcome === 'string') {
          counts[outcome] += 1;
          if (outcome === 'changed') attempted.push(item.triple);
          for (const warning of 'observation' in item ? item.observation.warnings : []) {
            counts.warnings += 1;
            this.ctx.logger.warn({ ...fields, warning }, 'stored with a warning');
          }
          continue;
        }
        // What is wrong with one listed image is about that image: the same answer would come again, so it is not retried.
        const failure = describeFailure(outcome.failure);
        await recordFailure(this.ctx.sql, this.ctx.account.name, item.triple, { ...failure, attempts: 1 });
        counts.failed += 1;
        attempted.push(item.triple);
        this.ctx.logger.error(
          { ...fields, outcome: 'failed', status: failure.status, error_class: failure.errorClass, error: failure.message },
          'refresh',
        );
      }
    }
    return { counts, attempted };
  }

  /** A page's outcomes in the account's metrics. */
  private countPage(counts: PageCounts): void {
    const { metrics, account } = this.ctx;
    for (const outcome of ['unchanged', 'changed', 'failed'] as const)
      if (counts[outcome]) metrics?.refreshes.inc({ account: account.name, outcome }, counts[outcome]);
    if (counts.warnings) metrics?.warnings.inc(counts.warnings);
    if (counts.unchanged + counts.changed > 0) metrics?.lastSuccess.set(Date.now() / 1000);
  }

  /** The policy's decision on a failed request: retried later (the job keeps its id), or the page or listing fails. */
  private async requestFailed(
    job: Job<ListJobData>,
    token: string | undefined,
    error: unknown,
    fail: (message: string) => Promise<void>,
  ): Promise<number> {
    const { causes, logger } = this.ctx;
    const decision = decide(error, job.data, this.ctx.policy);
    if (decision.kind === 'fail') {
      await fail(decision.failure.message);
      if (decision.stopWorker) this.ctx.keyRejected('jobs');
      return 0;
    }
    const delayMs = decision.kind === 'retry' ? decision.delayMs : HAND_BACK.withheldListingMs;
    if (decision.kind === 'retry') {
      // A cause that fails the account's requests is said once for them all (repeated-errors.ts).
      const cause = causes.of(decision.failure);
      if (cause) causes.report(cause, [`listing job ${job.id}`], decision.failure.message);
      logger[cause ? 'debug' : 'warn'](
        { job_id: job.id, attempt: decision.item.attempt, error: decision.failure.message, retry_in_ms: delayMs },
        'listing request failed; will retry',
      );
    }
    await job.updateData(decision.item);
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  /** Ends the listing if this was its last page, and queues the GETs that confirm what it did not return. */
  private async finish(listingId: number): Promise<void> {
    const { sql, queues, own, logger, metrics } = this.ctx;
    const jobPrefix = confirmJobPrefix(own.refresh, listingId);
    const done = await finishListing(sql, listingId, { batchSize: this.ctx.batchSize, jobPrefix });
    if (!done) return;
    // A sampled listing is counted once its sample decides it (scope-confirm.ts).
    if (done.sampled === null) metrics?.listings.inc({ account: this.ctx.account.name, status: done.status });
    await this.queueConfirmations(done.scopeKey, done.confirm);
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
    if (!(await runListingOpen(sql, { listingId }))) await finishRunsSaying(sql, queues, logger);
  }

  /** A job that ran before, and may have stopped anywhere after its commit: whatever its listing still waits for is queued again. */
  private async resume(listingId: number, part?: number): Promise<void> {
    const { sql, queues, own, logger } = this.ctx;
    await this.queuePages(listingId, await pagesToQueue(sql, listingId, part));
    await this.finish(listingId);
    const pending = await pendingConfirmations(sql, listingId, confirmJobPrefix(own.refresh, listingId));
    if (pending) {
      await this.queueConfirmations(pending.scopeKey, pending.claims);
      await finishRunsSaying(sql, queues, logger);
    }
  }

  private async queuePages(listingId: number, pages: Array<{ part: number; page: number }>): Promise<void> {
    await enqueueListJobs(
      this.ctx.own.list,
      pages.map(({ part, page }) => ({ kind: 'page', listingId, part, page, attempt: 0 })),
    );
  }

  private async queueConfirmations(scopeKey: string, claims: Claim[]): Promise<void> {
    await enqueueClaims(this.ctx.queues, claims, (t) => ({ ...t, attempt: 0, confirmScope: scopeKey }));
  }
}
