import type { Sql } from '../db/db.js';
import { storableString } from '../images/storable-text.js';
import type { Consumer } from '../usage/consumer-lists.js';

/** What a usage listing of one project and region came to: its consumers, or why it is not whole. */
export type UsageOutcome = { startedAt: Date; requests: number } & ({ consumers: Consumer[] } | { error: string });

export interface UsageWhere {
  listingId: number;
  projectId: number;
  regionId: number;
}

/**
 * Records a usage listing. A complete one closes (at its start) the current consumers of its project and
 * region it no longer returned, opens those it returned that were not current (a renamed consumer is
 * closed and opened), and moves usage_coverage; one that started before the last recorded one changes no
 * consumer. An incomplete one changes nothing but its own row. Nothing is written per unchanged consumer.
 */
export async function recordUsage(sql: Sql, where: UsageWhere, outcome: UsageOutcome): Promise<{ opened: number; closed: number }> {
  const { listingId, projectId, regionId } = where;
  return sql.begin(async (tx) => {
    let opened = 0;
    let closed = 0;
    const consumers = 'consumers' in outcome ? outcome.consumers : undefined;
    const at = outcome.startedAt.toISOString();
    if (consumers) {
      const [fresh] = await tx`
        INSERT INTO usage_coverage (project_id, region_id, first_listed_at, listed_at) VALUES (${projectId}, ${regionId}, ${at}, ${at})
        ON CONFLICT DO NOTHING RETURNING 1`;
      // Serialises the listings of one project and region; a later one already recorded wins.
      const [coverage] = await tx<{ later: boolean }[]>`
        SELECT listed_at > ${at}::timestamptz AS later FROM usage_coverage
        WHERE (project_id, region_id) = (${projectId}, ${regionId}) FOR UPDATE`;
      if (fresh || !coverage!.later) {
        await tx`
          CREATE TEMP TABLE listed_consumers ON COMMIT DROP AS
          SELECT * FROM unnest(${consumers.map((c) => c.imageId)}::text[], ${consumers.map((c) => c.kind)}::text[],
            ${consumers.map((c) => c.id)}::text[], ${consumers.map((c) => c.name)}::text[])
            AS x(image_id, consumer_kind, consumer_id, consumer_name)`;
        // Without statistics the planner takes the anti-joins below for nested loops: minutes at 30,000 consumers.
        await tx`ANALYZE listed_consumers`;
        const same = tx`(x.image_id, x.consumer_kind, x.consumer_id) = (h.image_id, h.consumer_kind, h.consumer_id)
          AND x.consumer_name IS NOT DISTINCT FROM h.consumer_name`;
        // Closed first, in a statement of its own: a renamed consumer's new interval needs its old one closed.
        closed = (
          await tx`
          UPDATE image_usage_history h SET valid_to = ${at}
          WHERE (h.project_id, h.region_id) = (${projectId}, ${regionId}) AND h.valid_to IS NULL
            AND NOT EXISTS (SELECT 1 FROM listed_consumers x WHERE ${same})`
        ).count;
        opened = (
          await tx`
          INSERT INTO image_usage_history (project_id, region_id, image_id, consumer_kind, consumer_id, consumer_name, valid_from)
          SELECT ${projectId}, ${regionId}, x.image_id, x.consumer_kind, x.consumer_id, x.consumer_name, ${at} FROM listed_consumers x
          WHERE NOT EXISTS (SELECT 1 FROM image_usage_history h
            WHERE (h.project_id, h.region_id) = (${projectId}, ${regionId}) AND h.valid_to IS NULL AND ${same})`
        ).count;
        await tx`UPDATE usage_coverage SET listed_at = ${at} WHERE (project_id, region_id) = (${projectId}, ${regionId}) AND listed_at <> ${at}`;
      }
    }
    await tx`
      INSERT INTO usage_listings (listing_id, project_id, region_id, started_at, status, error, requests, consumers, opened, closed)
      VALUES (${listingId}, ${projectId}, ${regionId}, ${at}, ${consumers ? 'complete' : 'incomplete'},
        ${'error' in outcome ? storableString(outcome.error) : null}, ${outcome.requests}, ${consumers?.length ?? 0}, ${opened}, ${closed})
      ON CONFLICT DO NOTHING`;
    return { opened, closed };
  });
}
