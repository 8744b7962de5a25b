// One batch of refreshes: fetch -> validate -> store -> history. Requests go
// out concurrently (bounded per process, paced by the shared rate limit); the
// unchanged majority is stored in one statement, the changes in one
// transaction. Errors about one image are returned, not thrown; an error of
// the store itself (Postgres unreachable) is thrown.
import type { LimitFunction } from 'p-limit';
import type { Sql } from './db.js';
import type { GcoreClient } from './gcore-client.js';
import { GcoreApiError, RateLimitedError, RequestWithheldError } from './gcore-errors.js';
import { contentHash } from './image-diff.js';
import { validateImage } from './image-payload.js';
import type { Observation, RefreshOutcome } from './interfaces.js';
import type { RefreshItem } from './queue.js';
import type { ApiRateLimiter } from './rate-limiter.js';
import { recordChanges } from './sql/recordChanges.js';
import { recordDeletion } from './sql/recordDeletion.js';
import { recordUnchanged } from './sql/recordUnchanged.js';
import { tripleKey } from './triple.js';

export interface RefreshDeps {
  sql: Sql;
  client: GcoreClient;
  limiter: ApiRateLimiter;
  /** Bounds this process's requests in flight, across all its batches. */
  inFlight: LimitFunction;
  /** The API answered 429: hold back every process for `ms` before the retry. */
  onRateLimited(ms: number): Promise<void>;
  /** Every answer (or its absence), for metrics: the HTTP status or "none", and how long it took. */
  onAnswer?(status: string, seconds: number): void;
}

/** 429s retried in place (without spending an attempt) before the image is handed back to the queue. */
const RATE_LIMIT_RETRIES = 3;

export type ItemResult =
  | { item: RefreshItem; outcome: RefreshOutcome; ms: number }
  | { item: RefreshItem; error: unknown; ms: number };

type Fetched =
  | { item: RefreshItem; observation: Observation; ms: number }
  | { item: RefreshItem; goneAt: Date; ms: number }
  | { item: RefreshItem; error: unknown; ms: number };

async function fetchOne(deps: RefreshDeps, item: RefreshItem): Promise<Fetched> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const answer = await getImagePatiently(deps, item);
    if (answer.kind === 'gone') return { item, goneAt: answer.observedAt, ms: elapsed() };
    const { snapshot, raw, warnings } = validateImage(answer.body, item);
    const triple = { projectId: item.projectId, regionId: item.regionId, imageId: item.imageId };
    return {
      item,
      observation: { triple, snapshot, contentHash: contentHash(snapshot), raw, warnings, observedAt: answer.observedAt },
      ms: elapsed(),
    };
  } catch (error) {
    return { item, error, ms: elapsed() };
  }
}

async function getImagePatiently({ client, limiter, onRateLimited, onAnswer }: RefreshDeps, item: RefreshItem) {
  for (let tries = 0; ; tries++) {
    await limiter.acquire();
    const sent = performance.now();
    try {
      const answer = await client.getImage(item);
      onAnswer?.(answer.kind === 'found' ? '200' : '404', (performance.now() - sent) / 1000);
      return answer;
    } catch (error) {
      const status = error instanceof GcoreApiError ? error.status : undefined;
      if (!(error instanceof RequestWithheldError)) onAnswer?.(status === undefined ? 'none' : String(status), (performance.now() - sent) / 1000);
      if (!(error instanceof RateLimitedError && error.retryable) || tries >= RATE_LIMIT_RETRIES) throw error;
      await onRateLimited(error.retryAfterMs);
    }
  }
}

export async function refreshBatch(deps: RefreshDeps, items: RefreshItem[]): Promise<ItemResult[]> {
  const fetched = await Promise.all(items.map((item) => deps.inFlight(() => fetchOne(deps, item))));
  const found = fetched.filter((f): f is Extract<Fetched, { observation: Observation }> => 'observation' in f);
  const unchanged = new Set((await recordUnchanged(deps.sql, found.map((f) => f.observation))).map(tripleKey));
  const changed = await recordChanges(deps.sql, found.filter((f) => !unchanged.has(tripleKey(f.item))).map((f) => f.observation));
  const results: ItemResult[] = [];
  for (const f of fetched) {
    if ('error' in f) results.push(f);
    else if ('goneAt' in f) results.push({ item: f.item, outcome: await recordDeletion(deps.sql, f.item, f.goneAt), ms: f.ms });
    else results.push({ item: f.item, outcome: changed.get(tripleKey(f.item)) ?? 'unchanged', ms: f.ms });
  }
  return results;
}
