// An account's audit-log follower: reads Gcore's log of user actions about
// images (GET /cloud/v1/user_actions), oldest first, from a cursor in
// Postgres up to the database's clock (src/audit-cursor.ts decides where the
// cursor goes), page by page through the account's rate limit; stores each
// entry once (image_actions) and queues at once a refresh of every image a
// new entry names, so a change is seen within a poll, not at the next tick,
// and its change row can say who made it. Entries dated ahead of the
// database's clock are looked for apart, now and then. Every process runs one
// per account; a lease on the cursor lets one at a time read (a crashed one's
// runs out), and a page is stored only if the cursor is still where it was
// read from.
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { epochMicros, isoMicros } from './api-date.js';
import { afterPage, aheadOf, lookAheadDue, pageRequest, repeatsPrevious, type AuditCursor, type PageRequest } from './audit-cursor.js';
import type { Sql } from './db.js';
import { enqueueBatches, missingJobs, type AccountQueues } from './queue.js';
import type { GcoreClient, ListPage } from './gcore-client.js';
import { AuthenticationError, RequestWithheldError } from './gcore-errors.js';
import { INT4_MAX } from './input-ranges.js';
import type { Triple } from './interfaces.js';
import { PAGE_LIMIT } from './list-query.js';
import type { Logger } from './logger.js';
import { paced, type RefreshDeps } from './refresh.js';
import { storeObservations } from './image-store.js';
import { observe } from './observe.js';
import { describeFailure } from './refresh-policy.js';
import type { CauseLog } from './repeated-errors.js';
import type { ScopeDefinition } from './scope.js';
import { coversTriple, matchesFilters } from './scope-match.js';
import { auditPollDue, auditPollFailed, moveAuditCursor, recordLookAhead, releaseAuditLease, takeAuditLease } from './sql/auditCursor.js';
import { scopeLabel } from './sql/scopeLabel.js';
import { claimActedTargets } from './sql/claimActedTargets.js';
import { claimedTriples } from './sql/claimedTriples.js';
import { listOldClaims } from './sql/listOldClaims.js';
import { recordActions } from './sql/recordActions.js';
import { accountScopes, adoptIntoScope } from './sql/scopeAdoption.js';
import { isTransientStoreError } from './store-errors.js';
import type { Tx } from './sql/tripleLock.js';
import { tripleKey } from './triple.js';
import { InvalidActionError, readUserAction, type UserAction } from './user-action.js';

export interface FollowerDeps extends Pick<RefreshDeps, 'limiter' | 'onAnswer' | 'onRateLimited'> {
  sql: Sql;
  account: string;
  own: AccountQueues;
  client: GcoreClient;
  logger: Logger;
  /** Says once what fails many of the account's requests (repeated-errors.ts). */
  causes: CauseLog;
  /** Names this follower in the cursor's lease. */
  workerId: string;
  pollSeconds: number;
  batchSize: number;
  /** The API rejected the key: the account's workers stop, and so does this follower. */
  onKeyRejected(): void;
}

/** The API groups whose entries are about images. */
const API_GROUPS = ['image', 'shared_image'];
/** Actions that change nothing: stored, but no refresh is queued and no change is put down to them. */
const READ_ONLY = new Set(['download']);
/** The longest a poll reads before another process may go on (and this one looks again at the next due time). */
const MAX_PAGES_PER_POLL = 100;
/** How soon a process looks again when a poll is due but another process holds the lease. */
const MIN_WAIT_MS = 1000;
/** How long a lease lasts unrenewed (it is renewed with every page): a crashed follower's is taken over after this. */
const LEASE_MS = 60_000;
/** A claim of this follower's this old whose job is not in the queue was never queued (its process died first). */
const UNQUEUED_AFTER_MS = 30_000;

/** Another follower stored the page (this one's lease ran out meanwhile): this one's copy is rolled back. */
class CursorMoved extends Error {}

export interface Follower {
  stop(): Promise<void>;
}

export function startAuditFollower(deps: FollowerDeps): Follower {
  const { sql, account, logger } = deps;
  const pollMs = deps.pollSeconds * 1000;
  const holder = `${deps.workerId}-${randomBytes(3).toString('hex')}`;
  const stopping = new AbortController();
  let stopped = false;

  /** A page of the log from `from` on (up to `to`, when given), oldest or newest first. */
  const fetchPage = (order: 'asc' | 'desc', from: string, to: string | null, offset: number) =>
    paced(
      deps,
      () =>
        deps.client.listPage(
          {
            endpoint: 'user_actions',
            query: [
              ...API_GROUPS.map((g): [string, string] => ['api_group', g]),
              // `sorting` is the deprecated name of `order_by`: a server that knows only it still answers in the order asked.
              ['order_by', order],
              ['sorting', order],
              ['from_timestamp', from],
              ...(to === null ? [] : [['to_timestamp', to] as [string, string]]),
            ],
          },
          offset,
          PAGE_LIMIT,
        ),
      () => '200',
    );

  /** The entries of a page that can be stored (the others are named in the log and passed over), checked against what was asked. */
  function readPage(fromTimestamp: string, order: 'asc' | 'desc', page: ListPage): UserAction[] {
    const actions: UserAction[] = [];
    for (const result of page.results) {
      try {
        actions.push(readUserAction(result));
      } catch (error) {
        if (!(error instanceof InvalidActionError)) throw error;
        logger.warn({ error: error.message }, 'audit-log entry passed over: it cannot be stored');
      }
    }
    // A server that does not do what was asked would have the cursor skip entries or go round in circles: nothing is stored.
    const from = epochMicros(fromTimestamp);
    if (actions.some((a) => a.micros < from)) {
      throw new Error(
        `the audit log answered entries older than from_timestamp ${fromTimestamp}: the cursor stays where it is (is GCORE_BASE_URL, or the account's base_url, Gcore's API?)`,
      );
    }
    for (let n = 1; n < actions.length; n++) {
      const [earlier, later] = order === 'asc' ? [actions[n - 1]!, actions[n]!] : [actions[n]!, actions[n - 1]!];
      if (later.micros < earlier.micros) {
        throw new Error(`the audit log answered entries out of time order (order_by=${order} not honoured): the cursor stays where it is`);
      }
    }
    return actions;
  }

  /**
   * Stores the page's entries; when Postgres refuses the write for a reason
   * that is not about Postgres itself, the halves are written apart until the
   * refused entry stands alone, and it is passed over: it never holds up the log.
   */
  async function storeApart(tx: Tx, actions: UserAction[]): Promise<Set<string>> {
    try {
      return await tx.savepoint((inner) => recordActions(inner, account, actions));
    } catch (error) {
      if (isTransientStoreError(error)) throw error;
      if (actions.length === 1) {
        logger.error({ action_id: actions[0]!.id, error: (error as Error).message }, 'audit-log entry passed over: Postgres refused it');
        return new Set();
      }
      const half = Math.ceil(actions.length / 2);
      return new Set([...(await storeApart(tx, actions.slice(0, half))), ...(await storeApart(tx, actions.slice(half)))]);
    }
  }

  /** The images the new entries name, in the ranges targets hold (int), each once, with the latest entry about it. */
  function actedImages(actions: UserAction[]): Array<{ triple: Triple; action: UserAction }> {
    const seen = new Map<string, { triple: Triple; action: UserAction }>();
    for (const action of actions) {
      const { projectId, regionId } = action;
      if (READ_ONLY.has(action.actionType ?? '') || projectId === null || regionId === null) continue;
      if (projectId < 0 || projectId > INT4_MAX || regionId < 0 || regionId > INT4_MAX) continue;
      for (const imageId of action.imageIds) {
        const triple = { projectId, regionId, imageId };
        seen.set(tripleKey(triple), { triple, action });
      }
    }
    return [...seen.values()];
  }

  /**
   * An image the account does not track, in the project and region of one of
   * its scopes: fetched now, and taken in by the first scope whose filters it
   * matches, stored as its listing would store it.
   */
  async function adopt(triple: Triple, scopes: Array<{ key: string; definition: ScopeDefinition }>): Promise<void> {
    const covering = scopes.filter((scope) => coversTriple(scope.definition, triple));
    if (covering.length === 0) return;
    const answer = await paced(
      deps,
      () => deps.client.getImage(triple),
      (a) => (a.kind === 'found' ? '200' : '404'),
    );
    if (answer.kind === 'gone') return;
    const observation = observe(account, triple, answer.body, answer.observedAt);
    const scope = covering.find((s) => matchesFilters(observation.snapshot, s.definition.filters));
    if (!scope) return;
    if (!(await adoptIntoScope(sql, scope.key, triple))) return;
    const stored = (await storeObservations(sql, [observation])).get(tripleKey(triple));
    if (stored instanceof Error) throw stored;
    logger.info(
      { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, ...(await scopeLabel(sql, scope.key)) },
      'took in an image the audit log says was made in a scope, before its listing',
    );
  }

  /** Takes in the untracked images new entries name that a scope of the account lists (a delete takes in nothing). */
  async function adoptUntracked(acted: Array<{ triple: Triple; action: UserAction }>, tracked: Set<string>): Promise<void> {
    const untracked = acted.filter(({ triple, action }) => !tracked.has(tripleKey(triple)) && action.actionType !== 'delete');
    if (untracked.length === 0) return;
    const scopes = await accountScopes(sql, account);
    for (const { triple } of untracked) {
      try {
        await adopt(triple, scopes);
      } catch (error) {
        if (error instanceof AuthenticationError) throw error;
        logger.warn(
          { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, error: (error as Error).message },
          'could not take in an image the audit log names; its scope takes it in at its next listing',
        );
      }
    }
  }

  /**
   * Stores entries in the transaction the cursor's move (or the look ahead's
   * note) is made in, with the claims of the refreshes the new or changed ones
   * call for.
   */
  async function storeEntries(tx: Tx, actions: UserAction[]) {
    const fresh = await storeApart(tx, actions);
    const acted = actedImages(actions.filter((a) => fresh.has(a.id)));
    const jobPrefix = `audit-${account}-${randomBytes(4).toString('hex')}`;
    const targets = await claimActedTargets(
      tx,
      account,
      acted.map((a) => a.triple),
      jobPrefix,
      deps.batchSize,
    );
    return { fresh, acted, targets };
  }

  /** Once the entries have committed (so the refreshes see them): queues the claimed refreshes (ahead of scheduled ones) and takes in untracked images. Returns how many refreshes were queued. */
  async function actOn(stored: Awaited<ReturnType<typeof storeEntries>>, actions: UserAction[]): Promise<number> {
    // Said once, when stored: the overlap reads each entry again.
    for (const action of actions) {
      if (action.invalidFields.length > 0 && stored.fresh.has(action.id)) {
        logger.warn({ action_id: action.id, fields: action.invalidFields }, 'audit-log entry stored with fields off the contract as null');
      }
    }
    // A crash before these are queued leaves claims without jobs: the next poll queues them (queueUnqueued).
    const { claims, tracked } = stored.targets;
    await queueClaims(claims);
    await adoptUntracked(stored.acted, tracked);
    return claims.reduce((n, claim) => n + claim.triples.length, 0);
  }

  /**
   * Reads one page of the window up to `bound` and stores it in one
   * transaction with the cursor's move; its refreshes are queued once that
   * has committed. Null when another follower moved the cursor meanwhile:
   * nothing is stored.
   */
  async function readOnePage(
    cursor: AuditCursor,
    bound: bigint,
    previousIds: string[] | undefined,
  ): Promise<{ next: AuditCursor; ended: boolean; ids: string[]; entries: number; queued: number } | null> {
    const request: PageRequest = pageRequest(cursor, bound);
    const page = await fetchPage('asc', request.from, request.to, request.offset);
    const actions = readPage(request.from, 'asc', page);
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
      logger.error(
        { from: request.from, offset: request.offset },
        'audit log: more entries share one instant than a page holds, and the server does not honour offset: the rest of that instant is passed over',
      );
    }
    const stored = await storeMarking(actions, (tx) =>
      moveAuditCursor(tx, account, holder, LEASE_MS, cursor, step.next, step.ended ? request.to : null),
    );
    if (stored === null) return null;
    const queued = await actOn(stored, actions);
    return { next: step.next, ended: step.ended, ids, entries: stored.fresh.size, queued };
  }

  /**
   * Stores a page's entries and, in the same transaction, marks what was read
   * (`mark` answers false where the lease was lost meanwhile): null when
   * another follower stored it, and this copy is rolled back.
   */
  async function storeMarking(actions: UserAction[], mark: (tx: Tx) => Promise<boolean>) {
    return sql
      .begin(async (tx) => {
        const entries = await storeEntries(tx, actions);
        if (!(await mark(tx))) throw new CursorMoved();
        return entries;
      })
      .catch((error: unknown) => {
        if (error instanceof CursorMoved) return null;
        throw error;
      });
  }

  /**
   * Looks for entries dated ahead of the database's clock (`bound`), newest
   * first, one page: stores them (acting on the new ones now, not when their
   * time comes) and notes how many there are and how far the furthest is, for
   * status and /readyz. The cursor does not move.
   */
  async function lookAhead(bound: bigint): Promise<{ entries: number; queued: number } | null> {
    const from = isoMicros(bound + 1n);
    const page = await fetchPage('desc', from, null, 0);
    const actions = readPage(from, 'desc', page);
    const ahead = aheadOf(
      actions.map((a) => a.micros),
      page.count,
      bound,
    );
    const furthest = ahead.furthest === null ? null : isoMicros(ahead.furthest);
    const stored = await storeMarking(actions, (tx) =>
      recordLookAhead(tx, account, holder, LEASE_MS, isoMicros(bound), { count: ahead.count, furthest }),
    );
    if (stored === null) return null;
    if (ahead.furthest !== null) {
      logger.warn(
        { entries: ahead.count, furthest: isoMicros(ahead.furthest) },
        "audit log: entries dated ahead of the database's clock: stored, but the cursor does not follow them",
      );
    }
    return { entries: stored.fresh.size, queued: await actOn(stored, actions) };
  }

  async function queueClaims(claims: Array<{ jobId: string; triples: Triple[] }>): Promise<void> {
    await enqueueBatches(
      deps.own,
      claims.map((claim) => ({ jobId: claim.jobId, items: claim.triples.map((t) => ({ ...t, attempt: 0 })) })),
      0,
      { lifo: true },
    );
  }

  /** Refreshes this account's follower claimed and a process that died before queueing them never queued: queued now, under the same ids. */
  async function queueUnqueued(): Promise<void> {
    const prefix = `audit-${account}-`;
    // The account too: another's name may begin with this one's and a hyphen.
    const old = (await listOldClaims(sql, UNQUEUED_AFTER_MS, prefix)).filter((c) => c.account === account);
    if (old.length === 0) return;
    const lost = await missingJobs(
      deps.own.refresh,
      old.map((c) => c.jobId),
    );
    if (lost.length === 0) return;
    const byJob = await claimedTriples(sql, lost);
    await queueClaims([...byJob].map(([jobId, triples]) => ({ jobId, triples })));
    logger.warn({ jobs: byJob.size }, 'audit log: queued refreshes that a stopped process had claimed but not queued');
  }

  /**
   * One poll, if one is due and no other process is reading: pages until the
   * log is read to the database's clock when the poll began, then looks ahead
   * of it if that is due. Returns when the next poll is due.
   */
  async function poll(): Promise<number> {
    const lease = await takeAuditLease(sql, account, holder, LEASE_MS, deps.pollSeconds);
    if (!lease) return Date.now() + MIN_WAIT_MS;
    let entries = 0;
    let queued = 0;
    try {
      if (!lease.due) return await auditPollDue(sql, account, deps.pollSeconds);
      await queueUnqueued();
      const bound = epochMicros(lease.now);
      let cursor: AuditCursor = lease;
      let previousIds: string[] | undefined;
      let ended = false;
      for (let page = 0; page < MAX_PAGES_PER_POLL && !stopped; page++) {
        const read = await readOnePage(cursor, bound, previousIds);
        if (read === null) break;
        entries += read.entries;
        queued += read.queued;
        ended = read.ended;
        if (ended) break;
        cursor = read.next;
        previousIds = read.ids;
      }
      if (ended && !stopped && lookAheadDue(lease.lookedAheadAt === null ? null : epochMicros(lease.lookedAheadAt), bound)) {
        const ahead = await lookAhead(bound);
        entries += ahead?.entries ?? 0;
        queued += ahead?.queued ?? 0;
      }
    } finally {
      await releaseAuditLease(sql, account, holder);
    }
    if (entries > 0) logger.info({ entries, refreshes_queued: queued }, 'audit log: new entries');
    return auditPollDue(sql, account, deps.pollSeconds);
  }

  const loop = (async () => {
    while (!stopped) {
      let dueAt = Date.now() + pollMs;
      try {
        dueAt = await poll();
      } catch (error) {
        if (error instanceof AuthenticationError || error instanceof RequestWithheldError) {
          deps.onKeyRejected();
          return;
        }
        const message = (error as Error).message;
        // The API unreachable, failing or refusing the key is said once for the account's refreshes, listings and polls.
        const cause = deps.causes.of(describeFailure(error));
        if (cause) deps.causes.report(cause, ['audit-log poll'], message);
        logger[cause ? 'debug' : 'warn']({ error: message, retry_in_ms: pollMs }, 'audit log: poll failed; will try again');
        await auditPollFailed(sql, account, message).catch(() => {});
      }
      // Every process wakes when the next poll is due; the one that takes the lease reads.
      const wait = Math.min(Math.max(dueAt - Date.now(), MIN_WAIT_MS), pollMs);
      await delay(wait, undefined, { signal: stopping.signal }).catch(() => {});
    }
  })();

  return {
    async stop() {
      stopped = true;
      stopping.abort();
      await loop;
    },
  };
}
