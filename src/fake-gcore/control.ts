// Bodies of the fake's control endpoints (/__fake/...), read for a fake that
// runs in another process: a slip in a script is answered with 400 and says
// what was wrong, instead of changing the fake in some unintended way.
import type { IncomingMessage } from 'node:http';
import type { Triple } from '../interfaces.js';
import type { Actor } from './audit-log.js';
import { LIST_ENDPOINTS, type ListEndpoint, type ListSelector } from './list-queries.js';
import type { Fault, ListLie } from './faults.js';
import { PUSH_MODES, type PushFault, type PushMode } from './push.js';
import { readJsonObject, type JsonObject } from './request-body.js';

export class ControlError extends Error {
  override name = 'ControlError';
}

type Body = JsonObject;

/** The JSON object a control request carries; an empty body is an empty object. */
export function readBody(req: IncomingMessage): Promise<Body> {
  return readJsonObject(req, (message) => new ControlError(message));
}

function optionalWholeNumber(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < min) throw new ControlError(`${name}: must be a whole number >= ${min}`);
  return value as number;
}

/** {"every": N}, N >= 1. */
export function readEvery(body: Body): number {
  const every = optionalWholeNumber(body.every, 'every', 1);
  if (every === undefined) throw new ControlError('every: required');
  return every;
}

/** {"email": "..."}: who acts (null: Gcore itself). */
export function readActor(body: Body): Actor {
  if (body.email !== null && typeof body.email !== 'string') throw new ControlError('email: must be a string or null');
  return { email: body.email };
}

/** {"email", "action_type", "project_id", "region_id", "image_id", "names_image"}: an action to log incomplete (names_image: false when absent). */
export function readIncompleteAction(body: Body): { actor: Actor; actionType: string; triple: Triple; namesImage: boolean } {
  if (typeof body.action_type !== 'string' || body.action_type === '') throw new ControlError('action_type: must be a string');
  const id = (name: 'project_id' | 'region_id') => {
    const value = optionalWholeNumber(body[name], name, 0);
    if (value === undefined) throw new ControlError(`${name}: required`);
    return value;
  };
  const triple = { projectId: id('project_id'), regionId: id('region_id'), imageId: body.image_id };
  if (typeof triple.imageId !== 'string' || triple.imageId === '') throw new ControlError('image_id: must be a string');
  if (body.names_image !== undefined && typeof body.names_image !== 'boolean') throw new ControlError('names_image: must be true or false');
  return {
    actor: readActor(body),
    actionType: body.action_type,
    triple: { ...triple, imageId: triple.imageId },
    namesImage: body.names_image ?? false,
  };
}

/** {"id": "..."}: an entry of the audit log. */
export function readActionId(body: Body): string {
  if (typeof body.id !== 'string' || body.id === '') throw new ControlError('id: must be a string');
  return body.id;
}

/** {"on": true|false}. */
export function readOn(body: Body): boolean {
  if (typeof body.on !== 'boolean') throw new ControlError('on: must be true or false');
  return body.on;
}

function readSelector(value: unknown): ListSelector {
  const selector = (typeof value === 'object' && value !== null ? value : {}) as Body;
  if (!LIST_ENDPOINTS.includes(selector.endpoint as ListEndpoint))
    throw new ControlError(`selector.endpoint: must be one of ${LIST_ENDPOINTS.join(', ')}`);
  const read = (name: 'projectId' | 'regionId' | 'offset') => optionalWholeNumber(selector[name], `selector.${name}`, 0);
  return { endpoint: selector.endpoint as ListEndpoint, projectId: read('projectId'), regionId: read('regionId'), offset: read('offset') };
}

/** The fields each kind of fault needs, by type. */
const FAULT_FIELDS: Record<Fault['kind'], Record<string, 'number' | 'string'>> = {
  status: { status: 'number' },
  unauthorized: {},
  bare404: {},
  rateLimited: { retryAfter: 'string' },
  malformed: {},
  slow: { ms: 'number' },
};

function readFault(value: unknown): Fault {
  const fault = (typeof value === 'object' && value !== null ? value : {}) as Body;
  const fields = Object.hasOwn(FAULT_FIELDS, fault.kind as string) ? FAULT_FIELDS[fault.kind as Fault['kind']] : undefined;
  if (!fields) throw new ControlError(`fault.kind: must be one of ${Object.keys(FAULT_FIELDS).join(', ')}`);
  for (const [name, type] of Object.entries(fields)) {
    if (typeof fault[name] !== type) throw new ControlError(`fault.${name}: must be a ${type}`);
  }
  return fault as unknown as Fault;
}

/** {"selector": {...}, "fault": {...}, "times": n}; without times the fault lasts until cleared. */
export function readListFault(body: Body): { selector: ListSelector; fault: Fault; times: number } {
  return {
    selector: readSelector(body.selector),
    fault: readFault(body.fault),
    times: optionalWholeNumber(body.times, 'times', 1) ?? Infinity,
  };
}

function readLie(value: unknown): ListLie {
  const lie = (typeof value === 'object' && value !== null ? value : {}) as Body;
  switch (lie.kind) {
    case 'shortCount': {
      const count = optionalWholeNumber(lie.count, 'lie.count', 0);
      if (count === undefined) throw new ControlError('lie.count: required');
      return { kind: 'shortCount', count };
    }
    case 'empty':
      return { kind: 'empty' };
    case 'omit': {
      const ids = lie.ids;
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'number' || typeof id === 'string'))
        throw new ControlError('lie.ids: must be an array of ids (numbers or strings)');
      return { kind: 'omit', ids };
    }
    case 'countOff': {
      if (!Number.isSafeInteger(lie.by)) throw new ControlError('lie.by: must be a whole number');
      return { kind: 'countOff', by: lie.by as number };
    }
    default:
      throw new ControlError('lie.kind: must be one of shortCount, empty, omit, countOff');
  }
}

/** {"selector": {...}, "lie": {...}, "times": n}; without times the lie lasts until cleared. */
export function readListLie(body: Body): { selector: ListSelector; lie: ListLie; times: number } {
  return {
    selector: readSelector(body.selector),
    lie: readLie(body.lie),
    times: optionalWholeNumber(body.times, 'times', 1) ?? Infinity,
  };
}

/** A timer longer than 2^31 - 1 ms fires at once; ten minutes is already longer than any test waits for a push. */
const MAX_PUSH_DELAY_MS = 600_000;

/** {"mode": "deliver"|"drop"|"duplicate"|"reorder", "delayMs": n, "hold": n}; hold (at least 1) only with reorder. */
export function readPushFault(body: Body): PushFault {
  if (!PUSH_MODES.includes(body.mode as PushMode)) throw new ControlError(`mode: must be one of ${PUSH_MODES.join(', ')}`);
  const mode = body.mode as PushMode;
  const delayMs = optionalWholeNumber(body.delayMs, 'delayMs', 0);
  if (delayMs !== undefined && delayMs > MAX_PUSH_DELAY_MS) throw new ControlError(`delayMs: must be at most ${MAX_PUSH_DELAY_MS}`);
  const hold = optionalWholeNumber(body.hold, 'hold', 1);
  if (hold !== undefined && mode !== 'reorder') throw new ControlError('hold: only with mode reorder');
  return { mode, ...(delayMs === undefined ? {} : { delayMs }), ...(hold === undefined ? {} : { hold }) };
}

/** {"status": 401|403|null}: how the subscription endpoints answer an API key (null: they accept it). */
export function readKeyRefusal(body: Body): 401 | 403 | null {
  if (body.status !== 401 && body.status !== 403 && body.status !== null) throw new ControlError('status: must be 401, 403 or null');
  return body.status;
}
