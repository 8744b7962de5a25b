// An account's audit-log follower: reads Gcore's log of user actions about
// images (GET /cloud/v1/user_actions), oldest first, from a cursor in
// Postgres, page by page through the account's rate limit; stores each entry
// once (image_actions) and queues at once a refresh of every image a new
// entry names, so a change is seen within a poll, not at the next tick, and
// its change row can say who made it. Every process runs one per account;
// the cursor's row lock lets one at a time read, and a crashed one's lock
// goes with its connection.
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { epochMicros, isoMicros } from './api-date.js';
import type { Sql } from './db.js';
import { enqueueBatches, type AccountQueues } from './queue.js';
import type { GcoreClient, ListPage } from './gcore-client.js';
import { AuthenticationError, RequestWithheldError } from './gcore-errors.js';
import { contentHash } from './image-diff.js';
import { validateImage } from './image-payload.js';
import { INT4_MAX } from './input-ranges.js';
import type { Triple } from './interfaces.js';
import { PAGE_LIMIT } from './list-query.js';
import type { Logger } from './logger.js';
import { paced, storeObservations, type RefreshDeps } from './refresh.js';
import { coversTriple, matchesFilters } from './scope-match.js';
import { auditPollDue, auditPollFailed, lockAuditCursor, moveAuditCursor, type AuditCursor } from './sql/auditCursor.js';
import { claimActedTargets } from './sql/claimActedTargets.js';
import { recordActions } from './sql/recordActions.js';
import { accountScopes, adoptIntoScope } from './sql/scopeAdoption.js';
import { tripleKey } from './triple.js';
import { InvalidActionError, readUserAction, type UserAction } from './user-action.js';

export interface FollowerDeps extends Pick<RefreshDeps, 'limiter' | 'onAnswer' | 'onRateLimited'> {
  sql: Sql;
  account: string;
  own: AccountQueues;
  client: GcoreClient;
  logger: Logger;
  pollSeconds: number;
  batchSize: number;
  /** The API rejected the key: the account's workers stop, and so does this follower. */
  onKeyRejected(): void;
}

/** The API groups whose entries are about images. */
const API_GROUPS = ['image', 'shared_image'];
/** Actions that change nothing: stored, but no refresh is queued and no change is put down to them. */
const READ_ONLY = new Set(['download']);
/** The longest a poll reads before it lets the cursor's lock go (and another process may go on). */
const MAX_PAGES_PER_POLL = 100;
/** How soon a process looks again when a poll is due but another process holds the cursor. */
const MIN_WAIT_MS = 1000;

/** Where the cursor goes after a page; `skipped` when a server that ignores offset leaves entries of one instant unreadable. */
function nextCursor(cursor: AuditCursor, page: ListPage, actions: UserAction[]): { from: string; offset: number } {
  const anchor = epochMicros(cursor.from);
  const last = actions.reduce((max, a) => (a.micros > max ? a.micros : max), anchor);
  // Entries of the last instant are read again from its start: one that joins them later is not skipped.
  if (last > anchor) return { from: isoMicros(last), offset: 0 };
  return { from: cursor.from, offset: cursor.offset + page.results.length };
}

export interface Follower {
  stop(): Promise<void>;
}

export function startAuditFollower(deps: FollowerDeps): Follower {
  const { sql, account, logger } = deps;
  const pollMs = deps.pollSeconds * 1000;
  const stopping = new AbortController();
  let stopped = false;

  const fetchPage = (cursor: AuditCursor) =>
    paced(
      deps,
      () =>
        deps.client.listPage(
          {
            endpoint: 'user_actions',
            query: [...API_GROUPS.map((g): [string, string] => ['api_group', g]), ['order_by', 'asc'], ['from_timestamp', cursor.from]],
          },
          cursor.offset,
          PAGE_LIMIT,
        ),
      () => '200',
    );

  /** The entries of a page that can be stored; the others are named in the log and passed over. */
  function readPage(page: ListPage): UserAction[] {
    const actions: UserAction[] = [];
    for (const result of page.results) {
      try {
        const action = readUserAction(result);
        if (action.invalidFields.length > 0) {
          logger.warn(
            { action_id: action.id, fields: action.invalidFields },
            'audit-log entry stored with fields off the contract as null',
          );
        }
        actions.push(action);
      } catch (error) {
        if (!(error instanceof InvalidActionError)) throw error;
        logger.warn({ error: error.message }, 'audit-log entry passed over: it cannot be stored');
      }
    }
    for (let n = 1; n < actions.length; n++) {
      if (actions[n]!.micros < actions[n - 1]!.micros) {
        throw new Error('the audit log answered entries out of time order (order_by=asc not honoured): the cursor stays where it is');
      }
    }
    return actions;
  }

  /** The images the new entries name, in the account's int ranges (targets are int), each once. */
  function actedImages(actions: UserAction[]): Array<{ triple: Triple; action: UserAction }> {
    const seen = new Map<string, { triple: Triple; action: UserAction }>();
    for (const action of actions) {
      const { projectId, regionId } = action;
      if (READ_ONLY.has(action.actionType ?? '') || projectId === null || regionId === null) continue;
      if (projectId < 0 || projectId > INT4_MAX || regionId < 0 || regionId > INT4_MAX) continue;
      for (const imageId of action.imageIds) {
        const triple = { projectId, regionId, imageId };
        // The latest entry decides: an image created and deleted in one page is not taken in.
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
  async function adopt(triple: Triple): Promise<void> {
    const covering = (await accountScopes(sql, account)).filter((scope) => coversTriple(scope.definition, triple));
    if (covering.length === 0) return;
    const answer = await paced(
      deps,
      () => deps.client.getImage(triple),
      (a) => (a.kind === 'found' ? '200' : '404'),
    );
    if (answer.kind === 'gone') return;
    const scope = covering.find((s) => matchesFilters(answer.body as Record<string, unknown>, s.definition.filters));
    if (!scope) return;
    const { snapshot, raw, warnings } = validateImage(answer.body, triple);
    if (!(await adoptIntoScope(sql, scope.key, triple))) return;
    const observation = { triple, account, snapshot, contentHash: contentHash(snapshot), raw, warnings, observedAt: answer.observedAt };
    const stored = (await storeObservations(sql, [observation])).get(tripleKey(triple));
    if (stored instanceof Error) throw stored;
    logger.info(
      { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, scope: scope.key },
      'took in an image the audit log says was made in a scope, before its listing',
    );
  }

  /** Queues refreshes of the tracked images new entries name, ahead of scheduled ones; takes in new images of scopes. */
  async function actOn(actions: UserAction[]): Promise<number> {
    const acted = actedImages(actions);
    const jobPrefix = `audit-${account}-${randomBytes(4).toString('hex')}`;
    const { claims, tracked } = await claimActedTargets(
      sql,
      account,
      acted.map((a) => a.triple),
      jobPrefix,
      deps.batchSize,
    );
    await enqueueBatches(
      deps.own,
      claims.map((claim) => ({ jobId: claim.jobId, items: claim.triples.map((t) => ({ ...t, attempt: 0 })) })),
      0,
      { lifo: true },
    );
    for (const { triple, action } of acted) {
      if (tracked.has(tripleKey(triple)) || action.actionType === 'delete') continue;
      try {
        await adopt(triple);
      } catch (error) {
        if (error instanceof AuthenticationError) throw error;
        logger.warn(
          { project_id: triple.projectId, region_id: triple.regionId, image_id: triple.imageId, error: (error as Error).message },
          'could not take in an image the audit log names; its scope takes it in at its next listing',
        );
      }
    }
    return claims.reduce((n, claim) => n + claim.triples.length, 0);
  }

  /** Reads one page in one transaction: entries, refreshes and the cursor move together. Null when another process holds the cursor or no poll is due. */
  async function readOnePage(pollStart: Date, first: boolean): Promise<{ more: boolean; entries: number; queued: number } | null> {
    return sql.begin(async (tx) => {
      const cursor = await lockAuditCursor(tx, account, deps.pollSeconds);
      if (!cursor || (first && cursor.dueAt > Date.now())) return null;
      const page = await fetchPage(cursor);
      const actions = readPage(page);
      const fresh = await recordActions(tx, account, actions);
      const queued = await actOn(actions.filter((a) => fresh.has(a.id)));
      const more = page.results.length >= PAGE_LIMIT;
      let to = nextCursor(cursor, page, actions);
      if (more && fresh.size === 0 && cursor.offset > 0 && to.offset > 0) {
        // A full page of one instant, past the first, with nothing new: the server repeats its first page.
        const skipped = `more than ${cursor.offset} entries share ${cursor.from} and the server does not honour offset: the rest of that instant is passed over`;
        logger.error({ account }, `audit log: ${skipped}`);
        to = { from: isoMicros(epochMicros(cursor.from) + 1n), offset: 0 };
      }
      await moveAuditCursor(tx, account, to, more ? null : pollStart);
      return { more, entries: fresh.size, queued };
    });
  }

  /** One poll: pages until the log is read to its end. Returns when the next is due. */
  async function poll(): Promise<number> {
    const pollStart = new Date();
    let entries = 0;
    let queued = 0;
    for (let page = 0; page < MAX_PAGES_PER_POLL && !stopped; page++) {
      const read = await readOnePage(pollStart, page === 0);
      if (read === null) break;
      entries += read.entries;
      queued += read.queued;
      if (!read.more) break;
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
        logger.warn({ error: message, retry_in_ms: pollMs }, 'audit log: poll failed; will try again');
        await auditPollFailed(sql, account, message).catch(() => {});
      }
      // Every process wakes when the next poll is due; the one that takes the cursor's lock reads.
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
