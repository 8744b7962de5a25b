// One batch of refreshes: fetch -> validate -> store -> history. Requests go
// out concurrently (bounded per process) through the account's paced client
// (paced-client.ts), which paces them on the shared rate limit; the
// unchanged majority is stored in one statement, the changes in one
// transaction. Errors about one image are returned, not thrown, and never
// touch another image: a write Postgres refuses is split until the image it
// is about is found. An error of the store itself (Postgres unreachable) is
// thrown.
import type { LimitFunction } from 'p-limit';
import type { AccountContext } from './account-context.js';
import type { ImageSnapshot, Observation, RefreshOutcome } from '../interfaces.js';
import type { RefreshItem } from '../queues/queue.js';
import { recordDeletion } from '../sql/recordDeletion.js';
import { storeObservations } from './image-store.js';
import { observe } from '../images/observe.js';
import { kindNamed, ORDINARY, type ImageKind } from '../images/image-kinds.js';
import { UnknownKindError } from '../gcore/gcore-errors.js';
import { tripleKey } from '../images/triple.js';

export type ItemResult =
  /** `gone`: the API answered 404 NotFoundError (whatever that did to the stored state); else `snapshot` is the answer as validated. */
  | { item: RefreshItem; outcome: RefreshOutcome; warnings: string[]; ms: number; gone?: true; snapshot?: ImageSnapshot }
  | { item: RefreshItem; error: unknown; ms: number };

type Fetched =
  | { item: RefreshItem; observation: Observation; ms: number }
  | { item: RefreshItem; kind: ImageKind; goneAt: Date; ms: number }
  | { item: RefreshItem; error: unknown; ms: number };

/** The kind of image `item` is refreshed as, by name (undefined: ordinary); one no definition here knows is never guessed. */
export type KindOf = (item: RefreshItem) => string | undefined;

function kindToAsk(name: string | undefined): ImageKind {
  const kind = name === undefined ? ORDINARY : kindNamed(name);
  if (!kind) throw new UnknownKindError(name!);
  return kind;
}

async function fetchOne(ctx: AccountContext, item: RefreshItem, kindName: string | undefined): Promise<Fetched> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const kind = kindToAsk(kindName);
    const triple = { projectId: item.projectId, regionId: item.regionId, imageId: item.imageId };
    const answer = await ctx.api.getImage(triple, kind);
    if (answer.kind === 'gone') return { item, kind, goneAt: answer.observedAt, ms: elapsed() };
    return { item, observation: observe(ctx.account.name, triple, answer.body, answer.observedAt, kind), ms: elapsed() };
  } catch (error) {
    return { item, error, ms: elapsed() };
  }
}

/** Refreshes `items` of the account of `ctx`, each with its kind's GET, at most `inFlight` requests of this process at once. */
export async function refreshBatch(
  ctx: AccountContext,
  inFlight: LimitFunction,
  items: RefreshItem[],
  kindOf: KindOf = () => undefined,
): Promise<ItemResult[]> {
  const fetched = await Promise.all(items.map((item) => inFlight(() => fetchOne(ctx, item, kindOf(item)))));
  const found = fetched.filter((f): f is Extract<Fetched, { observation: Observation }> => 'observation' in f);
  const stored = await storeObservations(
    ctx.sql,
    found.map((f) => f.observation),
    'answer',
  );
  const results: ItemResult[] = [];
  for (const f of fetched) {
    if ('error' in f) {
      results.push(f);
    } else if ('goneAt' in f) {
      results.push({ item: f.item, outcome: await recordDeletion(ctx.sql, f.item, f.goneAt, f.kind), warnings: [], ms: f.ms, gone: true });
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
