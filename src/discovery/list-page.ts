// One page of a scope's listing, read: the request for it, the images on it
// with a usable id (each once, validated or not), and what became of each once
// stored. Pure: the list worker (list-worker.ts) fetches, stores and logs.
import type { ListPage, ListRequest } from '../gcore/gcore-client.js';
import type { StoredOutcomes } from '../work/image-store.js';
import { imageIdProblem } from '../images/image-id.js';
import { ORDINARY, type ImageKind } from '../images/image-kinds.js';
import type { ImageSnapshot, Observation, Triple } from '../interfaces.js';
import { observe } from '../images/observe.js';
import type { QueuedPage } from '../sql/listingPages.js';
import { tripleKey } from '../images/triple.js';

/** A listed image, validated or not: a bad image is recorded as its own failure and never blocks the page. */
export type ListedImage = { triple: Triple; observation: Observation } | { triple: Triple; error: unknown };

/** What the images of a page came to once stored, and how many warnings they were stored with. */
export interface PageCounts {
  unchanged: number;
  changed: number;
  failed: number;
  warnings: number;
}

/** The request that fetches a queued page (its offset is the page's number times PAGE_LIMIT). */
export function listRequestOf(page: QueuedPage): ListRequest {
  return { endpoint: page.endpoint, projectId: page.projectId, regionId: page.regionId, query: page.query };
}

/** How a page's images are read: as the kind whose list it is, and, for a list that takes no filters, kept where the scope's filters say. */
export interface PageReading {
  kind?: ImageKind;
  /** Whether a validated image is one the scope lists; one it does not is left out, as if not listed. */
  keep?: (snapshot: ImageSnapshot) => boolean;
}

/**
 * The images of one page: those with a usable id, each id once (those the scope's filters leave out apart,
 * passed over), and how many results had none or repeated one on the page.
 */
export function readListedPage(
  account: string,
  where: Pick<QueuedPage, 'projectId' | 'regionId'>,
  answer: ListPage,
  { kind = ORDINARY, keep = () => true }: PageReading = {},
): { listed: ListedImage[]; passedOver: Triple[]; unusable: number; repeatedOnPage: number } {
  const listed: ListedImage[] = [];
  const passedOver: Triple[] = [];
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
    const triple = { projectId: where.projectId, regionId: where.regionId, imageId: id };
    try {
      const observation = observe(account, triple, result, answer.observedAt, kind);
      if (keep(observation.snapshot)) listed.push({ triple, observation });
      else passedOver.push(triple);
    } catch (error) {
      listed.push({ triple, error });
    }
  }
  return { listed, passedOver, unusable, repeatedOnPage };
}

/** What became of a listed image once its chunk was stored: an image the store left out is unchanged. */
export function listedOutcome(item: ListedImage, stored: StoredOutcomes): 'unchanged' | 'changed' | { failure: unknown } {
  const result = 'error' in item ? item.error : stored.get(tripleKey(item.triple));
  if (result === 'unchanged' || result === 'changed') return result;
  if (result === undefined) return 'unchanged';
  return { failure: result };
}
