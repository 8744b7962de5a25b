// Issue 27's row: who uses each image, listed beside the images. Every discovery scope also lists its
// project and region's volumes, GPU clusters and snapshots (src/usage/); a refresh that finds nothing
// changed, images or usage, must cost little more than its requests take at the default rate, and write
// no usage row.
import type { Sql } from '../src/db/db.js';
import { CONSUMER_LISTS } from '../src/usage/consumer-lists.js';
import { startFakeApi, type QueueStore } from './harness.js';
import { configureScopes, measure, SampledWorker, withContext } from './million.js';
import type { ManyConsumers, Row } from './scenarios.js';

const n = (count: number) => count.toLocaleString('en-US');

const USAGE_ENDPOINTS = new Set(CONSUMER_LISTS.map((list) => list.endpoint));

/** A sync's requests: those of the usage listings (the consumer lists), and the rest (images, projects, regions). */
function split(byEndpoint: Record<string, number>): { images: number; usage: number } {
  const counts = { images: 0, usage: 0 };
  for (const [endpoint, requests] of Object.entries(byEndpoint)) counts[USAGE_ENDPOINTS.has(endpoint) ? 'usage' : 'images'] += requests;
  return counts;
}

interface UsageRows {
  rows: number;
  /** The newest transaction that wrote a row (xmin): a row inserted or updated after it is newer. */
  newest: number;
}

async function usageRows(sql: Sql): Promise<UsageRows> {
  const [row] = await sql<UsageRows[]>`
    SELECT count(*)::float8 AS rows, coalesce(max(xmin::text::bigint), 0)::float8 AS newest FROM image_usage_history`;
  return row!;
}

/** Rows of image_usage_history inserted, updated or deleted since `before` was read. */
async function usageWritten(sql: Sql, before: UsageRows): Promise<number> {
  const [row] = await sql<{ rows: number; written: number }[]>`
    SELECT count(*)::float8 AS rows, count(*) FILTER (WHERE xmin::text::bigint > ${before.newest})::float8 AS written
    FROM image_usage_history`;
  return row!.written + Math.max(0, before.rows - (row!.rows - row!.written));
}

/** Throws unless every usage listing was complete and opened one consumer per volume. */
async function checkFirstUsage(sql: Sql, volumes: number): Promise<number> {
  const [row] = await sql<{ consumers: number; incomplete: number }[]>`
    SELECT (SELECT count(*) FROM image_usage_history)::float8 AS consumers,
      (SELECT count(*) FROM usage_listings WHERE status <> 'complete')::float8 AS incomplete`;
  if (row!.incomplete > 0 || row!.consumers !== volumes)
    throw new Error(
      `the first sync opened ${row!.consumers} consumers (expected ${volumes}); ${row!.incomplete} usage listings incomplete`,
    );
  return row!.consumers;
}

/**
 * One worker at `rate`, images and volumes in region scopes of project 1 (usage on, as by default): the
 * first sync, then a refresh with nothing changed, its time against 1.2x its requests' time at the rate,
 * and the usage rows it wrote (none may be); the worker's RSS through both.
 */
export async function usageRefresh({ images, volumes, scopes, rate }: ManyConsumers, store: QueueStore): Promise<Row[]> {
  return withContext(store, async (ctx): Promise<Row[]> => {
    const { sql } = ctx.services;
    const fake = await startFakeApi(images, 0, { projects: 1, regions: scopes, volumes });
    const worker = new SampledWorker(ctx, fake.url);
    try {
      await configureScopes(ctx, scopes);
      await worker.start(rate);
      const first = await measure(ctx, fake);
      if (first.changed !== images) throw new Error(`the first sync created ${first.changed} images, expected ${images}`);
      const consumers = await checkFirstUsage(sql, volumes);
      const before = await usageRows(sql);
      const refresh = await measure(ctx, fake);
      const written = await usageWritten(sql, before);
      await worker.stop();
      const label = `${n(images)} images and ${n(volumes)} volumes in ${scopes} region scopes, one worker, ${rate} req/s`;
      const requests = (m: typeof first) => {
        const { images: imageRequests, usage } = split(m.byEndpoint);
        return `${m.requests} requests (${imageRequests} images, ${usage} usage)`;
      };
      // Requests at the rate take requests / rate seconds: the refresh may take a fifth longer.
      const bound = (1.2 * refresh.requests) / rate;
      const ratio = (rate * refresh.seconds) / refresh.requests;
      const { images: imageRequests, usage: usageRequests } = split(refresh.byEndpoint);
      return [
        {
          scenario: `usage: first sync, ${label}`,
          measured: `${first.seconds.toFixed(1)} s, ${requests(first)}, ${n(first.changed)} images created, ${n(consumers)} consumers opened`,
          target: '-',
          met: null,
          values: { seconds: first.seconds, requests: first.requests, created: first.changed, consumers },
        },
        {
          scenario: `usage: refresh with no change (images and usage), ${label}`,
          measured: `${refresh.seconds.toFixed(1)} s, ${requests(refresh)}: ${ratio.toFixed(2)}x their time at ${rate} req/s; ${n(written)} usage rows written`,
          target: `<= 1.2x the requests' time at ${rate} req/s (${bound.toFixed(1)} s); no usage row written`,
          met: refresh.seconds <= bound && written === 0 && refresh.unchanged === images,
          values: { seconds: refresh.seconds, requests: refresh.requests, imageRequests, usageRequests, ratio, usageRowsWritten: written },
        },
        {
          scenario: 'usage: worker RSS through both',
          measured: `peak ${worker.peakMb.toFixed(0)} MB`,
          target: '<= 250 MB',
          met: worker.peakMb <= 250,
          values: { peakMb: worker.peakMb },
        },
      ];
    } finally {
      await worker.close();
      await fake.stop();
    }
  });
}
