// One page of the audit log, read: the request that asks for it, the entries
// it holds that can be stored, the check that the server did what was asked,
// and the images the entries name. Pure: the follower (audit-follower.ts)
// fetches, logs and stores.
import { epochMicros } from '../gcore/api-date.js';
import type { ListRequest } from '../gcore/gcore-client.js';
import { INT4_MAX } from '../config/input-ranges.js';
import type { Triple } from '../interfaces.js';
import { tripleKey } from '../images/triple.js';
import { InvalidActionError, readUserAction, type UserAction } from '../gcore/user-action.js';

/** The API groups whose entries are about images. */
const API_GROUPS = ['image', 'shared_image'];
/** Actions that change nothing: stored, but no refresh is queued and no change is put down to them. */
const READ_ONLY = new Set(['download']);

export type AuditOrder = 'asc' | 'desc';

/** The request for the log from `from` on (up to `to`, when given), oldest or newest first. */
export function auditLogRequest(order: AuditOrder, from: string, to: string | null): ListRequest {
  return {
    endpoint: 'user_actions',
    query: [
      ...API_GROUPS.map((g): [string, string] => ['api_group', g]),
      // `sorting` is the deprecated name of `order_by`: a server that knows only it still answers in the order asked.
      ['order_by', order],
      ['sorting', order],
      ['from_timestamp', from],
      ...(to === null ? [] : [['to_timestamp', to] as [string, string]]),
    ],
  };
}

/** The entries of a page that can be stored, and why each other one cannot (the follower names them in the log and passes them over). */
export function readAuditEntries(results: unknown[]): { actions: UserAction[]; unreadable: string[] } {
  const actions: UserAction[] = [];
  const unreadable: string[] = [];
  for (const result of results) {
    try {
      actions.push(readUserAction(result));
    } catch (error) {
      if (!(error instanceof InvalidActionError)) throw error;
      unreadable.push(error.message);
    }
  }
  return { actions, unreadable };
}

/**
 * Throws when the entries are not what was asked for: a server that does not
 * do what was asked would have the cursor skip entries or go round in
 * circles, so nothing of the page is stored.
 */
export function checkAuditOrder(fromTimestamp: string, order: AuditOrder, actions: UserAction[]): void {
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
}

/** An image an entry names, with the latest entry about it. */
export interface ActedImage {
  triple: Triple;
  action: UserAction;
}

/** The images the entries name, in the ranges targets hold (int), each once, with the latest entry about it. */
export function imagesActedOn(actions: UserAction[]): ActedImage[] {
  const seen = new Map<string, ActedImage>();
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
