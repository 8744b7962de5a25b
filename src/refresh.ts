// One batch of refreshes: fetch -> validate -> store -> history. Requests go
// out concurrently (bounded per process, paced by the shared rate limit); the
// unchanged majority is stored in one statement, the changes in one
// transaction. Errors about one image are returned, not thrown, and never
// touch another image: a write Postgres refuses is split until the image it
// is about is found. An error of the store itself (Postgres unreachable) is
// thrown.
import type { LimitFunction } from 'p-limit';
import type { Sql } from './db.js';
import type { GcoreClient } from './gcore-client.js';
import { GcoreApiError, RateLimitedError, RequestWithheldError } from './gcore-errors.js';
import type { ImageSnapshot, Observation, RefreshOutcome } from './interfaces.js';
import type { RefreshItem } from './queue.js';
import type { ApiRateLimiter } from './rate-limiter.js';
import { recordDeletion } from './sql/recordDeletion.js';
import { storeObservations } from './image-store.js';
import { observe } from './observe.js';
import { tripleKey } from './triple.js';

export interface RefreshDeps {
  sql: Sql;
  /** The account the batch is of, whose client this is. */
  account: string;
  client: GcoreClient;
  limiter: ApiRateLimiter;
  /** Bounds this process's requests in flight, across all its batches. */
  inFlight: LimitFunction;
  /** The API answered 429: hold back every process's requests at once, before the batch settles. */
  onRateLimited(error: RateLimitedError): Promise<void>;
  /** Every answer (or its absence), for metrics: the HTTP status or "none", and how long it took. */
  onAnswer?(status: string, seconds: number): void;
}

export type ItemResult =
  /** `gone`: the API answered 404 NotFoundError (whatever that did to the stored state); else `snapshot` is the answer as validated. */
  | { item: RefreshItem; outcome: RefreshOutcome; warnings: string[]; ms: number; gone?: true; snapshot?: ImageSnapshot }
  | { item: RefreshItem; error: unknown; ms: number };

type Fetched =
  | { item: RefreshItem; observation: Observation; ms: number }
  | { item: RefreshItem; goneAt: Date; ms: number }
  | { item: RefreshItem; error: unknown; ms: number };

async function fetchOne(deps: RefreshDeps, item: RefreshItem): Promise<Fetched> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const answer = await getImage(deps, item);
    if (answer.kind === 'gone') return { item, goneAt: answer.observedAt, ms: elapsed() };
    const triple = { projectId: item.projectId, regionId: item.regionId, imageId: item.imageId };
    return { item, observation: observe(deps.account, triple, answer.body, answer.observedAt), ms: elapsed() };
  } catch (error) {
    return { item, error, ms: elapsed() };
  }
}

async function getImage(deps: RefreshDeps, item: RefreshItem) {
  return paced(
    deps,
    () => deps.client.getImage(item),
    (answer) => (answer.kind === 'found' ? '200' : '404'),
  );
}

/**
 * One request on the shared rate limit, its answer (or its absence) reported
 * for metrics, and a 429 turned into a pause of every process's requests.
 */
export async function paced<T>(
  { limiter, onAnswer, onRateLimited }: Pick<RefreshDeps, 'limiter' | 'onAnswer' | 'onRateLimited'>,
  call: () => Promise<T>,
  statusOf: (answer: T) => string,
): Promise<T> {
  await limiter.acquire();
  const sent = performance.now();
  try {
    const answer = await call();
    onAnswer?.(statusOf(answer), (performance.now() - sent) / 1000);
    return answer;
  } catch (error) {
    const status = error instanceof GcoreApiError ? error.status : undefined;
    if (!(error instanceof RequestWithheldError))
      onAnswer?.(status === undefined ? 'none' : String(status), (performance.now() - sent) / 1000);
    if (error instanceof RateLimitedError) await onRateLimited(error);
    throw error;
  }
}

export async function refreshBatch(deps: RefreshDeps, items: RefreshItem[]): Promise<ItemResult[]> {
  const fetched = await Promise.all(items.map((item) => deps.inFlight(() => fetchOne(deps, item))));
  const found = fetched.filter((f): f is Extract<Fetched, { observation: Observation }> => 'observation' in f);
  const stored = await storeObservations(
    deps.sql,
    found.map((f) => f.observation),
  );
  const results: ItemResult[] = [];
  for (const f of fetched) {
    if ('error' in f) {
      results.push(f);
    } else if ('goneAt' in f) {
      results.push({ item: f.item, outcome: await recordDeletion(deps.sql, f.item, f.goneAt), warnings: [], ms: f.ms, gone: true });
    } else {
      const result = stored.get(tripleKey(f.item)) ?? 'unchanged';
      results.push(
        result instanceof Error
          ? { item: f.item, error: result, ms: f.ms }
          : { item: f.item, outcome: result, warnings: f.observation.warnings, ms: f.ms, snapshot: f.observation.snapshot },
      );
    }
  }
  return results;
}
