// An account's audit-log follower: reads Gcore's log of user actions about
// images (GET /cloud/v1/user_actions), oldest first, from a cursor in
// Postgres up to the database's clock (src/audit-log/audit-cursor.ts decides where the
// cursor goes), page by page through the account's rate limit; stores each
// entry once (image_actions) and queues at once a refresh of every image a
// new entry names, so a change is seen within a poll, not at the next tick,
// and its change row can say who made it. Entries dated ahead of the
// database's clock are looked for apart, now and then. Every process runs one
// per account; a lease on the cursor lets one at a time read (a crashed one's
// runs out), and a page is stored only if the cursor is still where it was
// read from. A push (webhook or AMQP) makes a poll due at once and wakes every
// process's follower of the account; the one that takes the lease reads. The
// lease holder also keeps the account's push subscriptions (push-subscriptions.ts).
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { AccountContext } from '../work/account-context.js';
import { epochMicros, isoMicros } from '../gcore/api-date.js';
import {
  afterPage,
  aheadOf,
  INCOMPLETE_MS,
  incompleteRange,
  lookAheadDue,
  pageRequest,
  repeatsPrevious,
  rereadIncomplete,
  type AuditCursor,
} from './audit-cursor.js';
import { auditLogRequest, checkAuditOrder, imagesActedOn, readAuditEntries, type ActedImage, type AuditOrder } from './audit-page.js';
import type { ListPage } from '../gcore/gcore-client.js';
import { AuthenticationError, RequestWithheldError } from '../gcore/gcore-errors.js';
import { storeObservations } from '../work/image-store.js';
import type { Triple } from '../interfaces.js';
import { writeIsolating } from '../work/isolating-write.js';
import { PAGE_LIMIT } from '../gcore/list-query.js';
import { observe } from '../images/observe.js';
import { enqueueBatches, missingJobs } from '../queues/queue.js';
import { describeFailure, LOST, POLL, auditWaitMs } from '../work/retry-policy.js';
import type { ScopeDefinition } from '../config/scope.js';
import { coversTriple, matchesFilters } from '../discovery/scope-match.js';
import { auditPollDue, auditPollFailed, moveAuditCursor, recordLookAhead, releaseAuditLease, takeAuditLease } from '../sql/auditCursor.js';
import { checkingSubscriptionsAlone, listenForWakes, recordSubscriptionCheck, subscriptionCheckDue } from '../sql/auditPush.js';
import { ensureSubscription, type PushTarget } from './push-subscriptions.js';
import { GcoreApiError } from '../gcore/gcore-errors.js';
import { claimActedTargets } from '../sql/claimActedTargets.js';
import { claimedTriples } from '../sql/claimedTriples.js';
import { incompleteActions, lastWindowBound, type IncompleteActions } from '../sql/incompleteActions.js';
import { listOldClaims } from '../sql/listOldClaims.js';
import { recordActions } from '../sql/recordActions.js';
import { accountScopes, adoptIntoScope } from '../sql/scopeAdoption.js';
import { scopeLabel } from '../sql/scopeLabel.js';
import type { Tx } from '../sql/tripleLock.js';
import { tripleKey } from '../images/triple.js';
import { formatDuration } from '../schedule/schedule.js';
import type { UserAction } from '../gcore/user-action.js';

/** The longest a poll reads before another process may go on (and this one looks again at the next due time). */
const MAX_PAGES_PER_POLL = 100;
/** How long a lease lasts unrenewed (it is renewed with every page): a crashed follower's is taken over after this. */
const LEASE_MS = 60_000;

/** Another follower stored the page (this one's lease ran out meanwhile): this one's copy is rolled back. */
class CursorMovedError extends Error {
  constructor() {
    super('another follower moved the audit-log cursor');
    this.name = 'CursorMovedError';
  }
}

export interface AuditFollowerSettings {
  /** Seconds between polls of the account's log. */
  pollSeconds: number;
  /** Where Gcore pushes the account's log (the webhook, the account's broker): each kept subscribed. */
  pushes: PushTarget[];
}

/** How often a subscription that was in place is checked again (one list request), and one that could not be made retried. */
const SUBSCRIPTION_CHECK_SECONDS = 3600;
const SUBSCRIPTION_RETRY_SECONDS = 300;

/** What one page's entries left to do once stored: the new or changed ones, the images they name, the refreshes claimed for them. */
interface StoredEntries {
  fresh: Set<string>;
  acted: ActedImage[];
  targets: Awaited<ReturnType<typeof claimActedTargets>>;
}

/** What a poll read: entries new or changed, and refreshes queued for them. */
interface PollCounts {
  entries: number;
  queued: number;
}

export function startAuditFollower(ctx: AccountContext, settings: AuditFollowerSettings): { stop(): Promise<void> } {
  return new AuditFollower(ctx, settings.pollSeconds, settings.pushes);
}

class AuditFollower {
  private readonly account: string;
  private readonly pollMs: number;
  /** Names this follower in the cursor's lease. */
  private readonly holder: string;
  private readonly stopping = new AbortController();
  /** Cut short by a push's wake-up: the wait before the next look. */
  private nap = new AbortController();
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly unlisten: Promise<(() => Promise<void>) | undefined>;

  constructor(
    private readonly ctx: AccountContext,
    private readonly pollSeconds: number,
    private readonly pushes: PushTarget[],
  ) {
    this.account = ctx.account.name;
    this.pollMs = pollSeconds * 1000;
    this.holder = `${ctx.workerId}-${randomBytes(3).toString('hex')}`;
    this.unlisten = listenForWakes(
      ctx.sql,
      this.account,
      () => {
        ctx.metrics?.wakeups.inc({ account: this.account });
        this.nap.abort();
      },
      // Listening again after a lost connection: a push announced meanwhile was missed, and its mark is looked at now.
      () => this.nap.abort(),
    ).catch((error: Error) => {
      ctx.logger.warn({ error: error.message }, 'audit log: cannot listen for pushes in this process; its polls still read every entry');
      return undefined;
    });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.loop;
    await (await this.unlisten)?.().catch(() => {});
  }

  /** Polls until stopped or until the API rejects the key. */
  private async run(): Promise<void> {
    const { logger, causes, sql } = this.ctx;
    while (!this.stopped) {
      // A wake-up during the poll cuts the wait after it short: the cursor's mark says whether a read is due.
      this.nap = new AbortController();
      let dueAt = Date.now() + this.pollMs;
      try {
        dueAt = await this.poll();
      } catch (error) {
        if (error instanceof AuthenticationError || error instanceof RequestWithheldError) {
          this.ctx.keyRejected('audit-log polls');
          return;
        }
        const message = (error as Error).message;
        // The API unreachable, failing or refusing the key is said once for the account's refreshes, listings and polls.
        const cause = causes.of(describeFailure(error));
        if (cause) causes.report(cause, ['audit-log poll'], message);
        logger[cause ? 'debug' : 'warn']({ error: message, retry_in_ms: this.pollMs }, 'audit log: poll failed; will try again');
        await auditPollFailed(sql, this.account, message).catch(() => {});
      }
      // Every process wakes when the next poll is due; the one that takes the lease reads.
      const signal = AbortSignal.any([this.stopping.signal, this.nap.signal]);
      await delay(auditWaitMs(dueAt, Date.now(), this.pollMs), undefined, { signal }).catch(() => {});
    }
  }

  /**
   * One poll, if one is due and no other process is reading: pages until the
   * log is read to the database's clock when the poll began, then looks ahead
   * of it if that is due. Returns when the next poll is due.
   */
  private async poll(): Promise<number> {
    const { sql, logger } = this.ctx;
    const lease = await takeAuditLease(sql, this.account, this.holder, LEASE_MS, this.pollSeconds);
    if (!lease) return Date.now() + POLL.auditMinMs;
    const counts: PollCounts = { entries: 0, queued: 0 };
    let checked = true;
    try {
      checked = await this.keepSubscribed();
      if (!lease.due) return await this.nextLook(checked);
      await this.queueUnqueued();
      const bound = epochMicros(lease.now);
      const ended = await this.readWindow(lease, bound, counts);
      if (ended && !this.stopped && lookAheadDue(lease.lookedAheadAt === null ? null : epochMicros(lease.lookedAheadAt), bound)) {
        const ahead = await this.lookAhead(bound);
        counts.entries += ahead?.entries ?? 0;
        counts.queued += ahead?.queued ?? 0;
      }
    } finally {
      await releaseAuditLease(sql, this.account, this.holder);
    }
    if (counts.entries > 0) logger.info({ entries: counts.entries, refreshes_queued: counts.queued }, 'audit log: new entries');
    return this.nextLook(checked);
  }

  /** When the next poll is due, or in a moment when a subscription check waited for another account's. */
  private async nextLook(checked: boolean): Promise<number> {
    const due = await auditPollDue(this.ctx.sql, this.account, this.pollSeconds);
    return checked ? due : Math.min(due, Date.now() + POLL.auditMinMs);
  }

  /**
   * Checks each push subscription that is due a check (under the lease, so
   * one process at a time does for the account, and alone in the deployment,
   * as another account may share the Gcore client): what it finds is recorded
   * for status. A refusal (these endpoints may want a user's token) or any
   * other failure is said and retried later; it never counts against the key,
   * and polling goes on. False when a check waits for another account's.
   */
  private async keepSubscribed(): Promise<boolean> {
    let checked = true;
    for (const push of this.pushes) {
      if (!(await subscriptionCheckDue(this.ctx.sql, this.account, push, SUBSCRIPTION_CHECK_SECONDS, SUBSCRIPTION_RETRY_SECONDS))) continue;
      if (!(await checkingSubscriptionsAlone(this.ctx.sql, (tx) => this.checkSubscription(tx, push)))) checked = false;
    }
    return checked;
  }

  private async checkSubscription(tx: Tx, push: PushTarget): Promise<void> {
    const { api, logger } = this.ctx;
    try {
      const { action, ...check } = await ensureSubscription(api, push);
      await recordSubscriptionCheck(tx, this.account, check);
      if (action !== 'keep') logger.info({ push: push.kind, target: push.target, action }, 'audit log: subscribed to pushes');
      if (check.problem) logger.warn({ push: push.kind, problem: check.problem }, 'audit log: push subscription left as it is');
    } catch (error) {
      if (error instanceof AuthenticationError || error instanceof RequestWithheldError || !(error instanceof GcoreApiError)) throw error;
      const problem = error.message;
      await recordSubscriptionCheck(tx, this.account, { kind: push.kind, target: push.target, subscribed: false, problem });
      logger.warn(
        { push: push.kind, error: problem, retry_in_s: SUBSCRIPTION_RETRY_SECONDS },
        'audit log: could not subscribe to pushes; polling goes on',
      );
    }
  }

  /** Reads the window from the cursor up to `bound`, page by page, adding to `counts`; true when it was read to its end. */
  private async readWindow(start: AuditCursor, bound: bigint, counts: PollCounts): Promise<boolean> {
    let cursor = start;
    let previousIds: string[] | undefined;
    for (let page = 0; page < MAX_PAGES_PER_POLL && !this.stopped; page++) {
      const read = await this.readOnePage(cursor, bound, previousIds);
      if (read === null) return false;
      counts.entries += read.entries;
      counts.queued += read.queued;
      if (read.ended) return true;
      cursor = read.next;
      previousIds = read.ids;
    }
    return false;
  }

  /**
   * Reads one page of the window up to `bound` and stores it in one
   * transaction with the cursor's move; its refreshes are queued once that
   * has committed. Null when another follower moved the cursor meanwhile:
   * nothing is stored.
   */
  private async readOnePage(
    cursor: AuditCursor,
    bound: bigint,
    previousIds: string[] | undefined,
  ): Promise<{ next: AuditCursor; ended: boolean; ids: string[]; entries: number; queued: number } | null> {
    const request = pageRequest(cursor, bound);
    const page = await this.fetchPage('asc', request.from, request.to, request.offset);
    const actions = this.entriesOf(request.from, 'asc', page);
    const ids = actions.map((a) => a.id);
    const step = afterPage(
      request,
      {
        instants: actions.map((a) => a.micros),
        size: page.results.length,
        full: page.results.length >= PAGE_LIMIT,
        repeated: repeatsPrevious(previousIds, ids, request.offset),
      },
      bound,
    );
    if (step.passedOver) {
      this.ctx.logger.error(
        { from: request.from, offset: request.offset },
        'audit log: more entries share one instant than a page holds, and the server does not honour offset: the rest of that instant is passed over',
      );
    }
    let incomplete: IncompleteActions | undefined;
    const stored = await this.storeMarking(actions, async (tx) => {
      let next = step.next;
      if (step.ended) {
        // After this page's entries are stored: an entry it holds incomplete is read again too.
        incomplete = await this.incompleteAtEnd(tx, bound);
        next = rereadIncomplete(next, incomplete.oldest === null ? null : epochMicros(incomplete.oldest));
      }
      return moveAuditCursor(tx, this.account, this.holder, LEASE_MS, cursor, next, step.ended ? request.to : null);
    });
    if (stored === null) return null;
    if (incomplete && incomplete.givenUpCount > 0) {
      this.ctx.logger.warn(
        { entries: incomplete.givenUpCount, action_ids: incomplete.givenUp },
        `audit log: entries still incomplete ${formatDuration(INCOMPLETE_MS)} after their time are given up: they stay stored as incomplete and are no longer read again`,
      );
    }
    const queued = await this.actOn(stored, actions);
    return { next: step.next, ended: step.ended, ids, entries: stored.fresh.size, queued };
  }

  /** The account's entries stored incomplete, at the end of a window bounded by `bound`: the oldest still read again, and those given up now. */
  private async incompleteAtEnd(tx: Tx, bound: bigint): Promise<IncompleteActions> {
    const previous = await lastWindowBound(tx, this.account);
    return incompleteActions(tx, this.account, incompleteRange(bound, previous === null ? null : epochMicros(previous)));
  }

  /**
   * Looks for entries dated ahead of the database's clock (`bound`), newest
   * first, one page: stores them (acting on the new ones now, not when their
   * time comes) and notes how many there are and how far the furthest is, for
   * status and /readyz. The cursor does not move.
   */
  private async lookAhead(bound: bigint): Promise<PollCounts | null> {
    const from = isoMicros(bound + 1n);
    const page = await this.fetchPage('desc', from, null, 0);
    const actions = this.entriesOf(from, 'desc', page);
    const ahead = aheadOf(
      actions.map((a) => a.micros),
      page.count,
      bound,
    );
    const furthest = ahead.furthest === null ? null : isoMicros(ahead.furthest);
    const stored = await this.storeMarking(actions, (tx) =>
      recordLookAhead(tx, this.account, this.holder, LEASE_MS, isoMicros(bound), { count: ahead.count, furthest }),
    );
    if (stored === null) return null;
    if (ahead.furthest !== null) {
      this.ctx.logger.warn(
        { entries: ahead.count, furthest: isoMicros(ahead.furthest) },
        "audit log: entries dated ahead of the database's clock: stored, but the cursor does not follow them",
      );
    }
    return { entries: stored.fresh.size, queued: await this.actOn(stored, actions) };
  }

  /** A page of the log from `from` on (up to `to`, when given), oldest or newest first. */
  private fetchPage(order: AuditOrder, from: string, to: string | null, offset: number): Promise<ListPage> {
    return this.ctx.api.listPage(auditLogRequest(order, from, to), offset, PAGE_LIMIT);
  }

  /** The entries of a page that can be stored (the others are named in the log and passed over), checked against what was asked. */
  private entriesOf(fromTimestamp: string, order: AuditOrder, page: ListPage): UserAction[] {
    const { actions, unreadable } = readAuditEntries(page.results);
    for (const message of unreadable) this.ctx.logger.warn({ error: message }, 'audit-log entry passed over: it cannot be stored');
    checkAuditOrder(fromTimestamp, order, actions);
    return actions;
  }

  /**
   * Stores a page's entries and, in the same transaction, marks what was read
   * (`mark` answers false where the lease was lost meanwhile): null when
   * another follower stored it, and this copy is rolled back.
   */
  private async storeMarking(actions: UserAction[], mark: (tx: Tx) => Promise<boolean>): Promise<StoredEntries | null> {
    return this.ctx.sql
      .begin(async (tx) => {
        const entries = await this.storeEntries(tx, actions);
        if (!(await mark(tx))) throw new CursorMovedError();
        return entries;
      })
      .catch((error: unknown) => {
        if (error instanceof CursorMovedError) return null;
        throw error;
      });
  }

  /**
   * Stores entries in the transaction the cursor's move (or the look ahead's
   * note) is made in, with the claims of the refreshes the new or changed ones
   * call for.
   */
  private async storeEntries(tx: Tx, actions: UserAction[]): Promise<StoredEntries> {
    const fresh = await this.storeApart(tx, actions);
    const acted = imagesActedOn(actions.filter((a) => fresh.has(a.id)));
    const jobPrefix = `audit-${this.account}-${randomBytes(4).toString('hex')}`;
    const targets = await claimActedTargets(
      tx,
      this.account,
      acted.map((a) => a.triple),
      jobPrefix,
      this.ctx.batchSize,
    );
    return { fresh, acted, targets };
  }

  /**
   * Stores the page's entries; when Postgres refuses the write for a reason
   * that is not about Postgres itself, the halves are written apart until the
   * refused entry stands alone, and it is passed over: it never holds up the log.
   */
  private async storeApart(tx: Tx, actions: UserAction[]): Promise<Set<string>> {
    const { written, refused } = await writeIsolating(actions, async (batch) => [
      ...(await tx.savepoint((inner) => recordActions(inner, this.account, batch))),
    ]);
    for (const { item, error } of refused) {
      this.ctx.logger.error({ action_id: item.id, error: (error as Error).message }, 'audit-log entry passed over: Postgres refused it');
    }
    return new Set(written);
  }

  /** Once the entries have committed (so the refreshes see them): queues the claimed refreshes (ahead of scheduled ones) and takes in untracked images. Returns how many refreshes were queued. */
  private async actOn(stored: StoredEntries, actions: UserAction[]): Promise<number> {
    // Said once, when stored: the overlap reads each entry again.
    for (const action of actions) {
      if (action.invalidFields.length > 0 && stored.fresh.has(action.id)) {
        this.ctx.logger.warn(
          { action_id: action.id, fields: action.invalidFields },
          'audit-log entry stored with fields off the contract as null',
        );
      }
    }
    // A crash before these are queued leaves claims without jobs: the next poll queues them (queueUnqueued).
    const { claims, tracked } = stored.targets;
    await this.queueClaims(claims);
    await this.adoptUntracked(stored.acted, tracked);
    return claims.reduce((n, claim) => n + claim.triples.length, 0);
  }

  private async queueClaims(claims: Array<{ jobId: string; triples: Triple[] }>): Promise<void> {
    await enqueueBatches(
      this.ctx.own,
      claims.map((claim) => ({ jobId: claim.jobId, items: claim.triples.map((t) => ({ ...t, attempt: 0 })) })),
      0,
      { lifo: true },
    );
  }

  /** Refreshes this account's follower claimed and a process that died before queueing them never queued: queued now, under the same ids. */
  private async queueUnqueued(): Promise<void> {
    const { sql, own, logger } = this.ctx;
    const prefix = `audit-${this.account}-`;
    // The account too: another's name may begin with this one's and a hyphen.
    const old = (await listOldClaims(sql, LOST.unqueuedClaimMs, prefix)).filter((c) => c.account === this.account);
    if (old.length === 0) return;
    const lost = await missingJobs(
      own.refresh,
      old.map((c) => c.jobId),
    );
    if (lost.length === 0) return;
    const byJob = await claimedTriples(sql, lost);
    await this.queueClaims([...byJob].map(([jobId, triples]) => ({ jobId, triples })));
    logger.warn({ jobs: byJob.size }, 'audit log: queued refreshes that a stopped process had claimed but not queued');
  }

  /** Takes in the untracked images new entries name that a scope of the account lists (a delete takes in nothing). */
  private async adoptUntracked(acted: ActedImage[], tracked: Set<string>): Promise<void> {
    const untracked = acted.filter(({ triple, action }) => !tracked.has(tripleKey(triple)) && action.actionType !== 'delete');
    if (untracked.length === 0) return;
    const scopes = await accountScopes(this.ctx.sql, this.account);
    for (const { triple } of untracked) {
      try {
        await this.adopt(triple, scopes);
      } catch (error) {
        if (error instanceof AuthenticationError) throw error;
        this.ctx.logger.warn(
          { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, error: (error as Error).message },
          'could not take in an image the audit log names; its scope takes it in at its next listing',
        );
      }
    }
  }

  /**
   * An image the account does not track, in the project and region of one of
   * its scopes: fetched now, and taken in by the first scope whose filters it
   * matches, stored as its listing would store it.
   */
  private async adopt(triple: Triple, scopes: Array<{ key: string; definition: ScopeDefinition }>): Promise<void> {
    const { sql, logger } = this.ctx;
    const covering = scopes.filter((scope) => coversTriple(scope.definition, triple));
    if (covering.length === 0) return;
    const answer = await this.ctx.api.getImage(triple);
    if (answer.kind === 'gone') return;
    const observation = observe(this.account, triple, answer.body, answer.observedAt);
    const scope = covering.find((s) => matchesFilters(observation.snapshot, s.definition.filters));
    if (!scope) return;
    if (!(await adoptIntoScope(sql, scope.key, triple))) return;
    const stored = (await storeObservations(sql, [observation], 'answer')).get(tripleKey(triple));
    if (stored instanceof Error) throw stored;
    logger.info(
      { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, ...(await scopeLabel(sql, scope.key)) },
      'took in an image the audit log says was made in a scope, before its listing',
    );
  }
}
