// A usage listing: every page of every consumer list of one project and region
// (consumer-lists.ts), fetched in order through the paced client, and the
// consumers they name. It is whole or it is nothing: a count that changes
// between pages, a repeated or missing id, or fewer results than the count
// make it incomplete, and an incomplete listing changes no consumer.
import type { FetchPage } from '../discovery/scope-expansion.js';
import { PAGE_LIMIT } from '../gcore/list-query.js';
import { storableString } from '../images/storable-text.js';
import {
  CONSUMER_LISTS,
  clusterConsumers,
  snapshotConsumers,
  SNAPSHOTS,
  volumeConsumers,
  volumeImage,
  VOLUMES,
  type Consumer,
  type ConsumerList,
} from './consumer-lists.js';

/** The usage listing cannot be trusted to be whole; nothing is changed. */
export class IncompleteUsageError extends Error {
  override name = 'IncompleteUsageError';
}

type Item = Record<string, unknown>;

/** Counts the requests a usage listing sends (sent ones too, when one of them fails). */
export interface RequestCount {
  requests: number;
}

/**
 * Hands `take` every item of one list of a project and region with its id, and checks that they are as many
 * as the list counts, each once; throws IncompleteUsageError. Only the ids are kept: a page's items are
 * read as it comes, so 300,000 volumes never sit in memory at once.
 */
async function listWhole(
  fetchPage: FetchPage,
  list: ConsumerList,
  where: { projectId: number; regionId: number },
  sent: RequestCount,
  take: (item: Item, id: string) => void,
): Promise<void> {
  const items = new Set<string>();
  let count: number | undefined;
  for (let offset = 0; count === undefined || offset < count; offset += PAGE_LIMIT) {
    sent.requests += 1;
    const page = await fetchPage({ endpoint: list.endpoint, ...where, query: list.query }, offset);
    const place = `${list.endpoint} ${where.projectId}/${where.regionId} offset ${offset}`;
    if (count !== undefined && page.count !== count)
      throw new IncompleteUsageError(`${place}: the count changed between pages (${count}, then ${page.count})`);
    count = page.count;
    for (const result of page.results) {
      const id = (result as Item | null)?.id;
      if (typeof id !== 'string' || id === '') throw new IncompleteUsageError(`${place}: a result without a usable id`);
      if (items.has(id)) throw new IncompleteUsageError(`${place}: id ${JSON.stringify(id)} listed twice (does the server honour offset?)`);
      items.add(id);
      take(result as Item, id);
    }
    // A short page before the count is reached: the rest would not be where the offsets say.
    if (offset + PAGE_LIMIT < count && page.results.length < PAGE_LIMIT) break;
  }
  if (items.size !== count)
    throw new IncompleteUsageError(
      `${list.endpoint} ${where.projectId}/${where.regionId}: ${items.size} listed where the API counts ${count}`,
    );
}

/** Each consumer once (an instance two volumes of one image attach to is one consumer), its text storable. */
function distinct(consumers: Consumer[]): Consumer[] {
  const byKey = new Map<string, Consumer>();
  for (const c of consumers) {
    const consumer = {
      ...c,
      imageId: storableString(c.imageId),
      id: storableString(c.id),
      name: c.name === null ? null : storableString(c.name),
    };
    byKey.set(JSON.stringify([consumer.imageId, consumer.kind, consumer.id]), consumer);
  }
  return [...byKey.values()];
}

/** Every consumer of every image of a project and region; throws IncompleteUsageError, or the API's error for a request. */
export async function listUsage(
  fetchPage: FetchPage,
  where: { projectId: number; regionId: number },
  sent: RequestCount,
): Promise<Consumer[]> {
  const consumers: Consumer[] = [];
  const imageOfVolume = new Map<string, string>();
  for (const list of CONSUMER_LISTS) {
    await listWhole(fetchPage, list, where, sent, (item, id) => {
      if (list === VOLUMES) {
        const image = volumeImage(item);
        if (image !== undefined) imageOfVolume.set(id, image);
        consumers.push(...volumeConsumers(item, id));
      } else if (list === SNAPSHOTS) consumers.push(...snapshotConsumers(item, id, imageOfVolume));
      else consumers.push(...clusterConsumers(item, id));
    });
  }
  return distinct(consumers);
}
