// Who uses an image, end to end: a scope's listing also lists its project and
// region's volumes, GPU clusters and snapshots from the fake API (over HTTP,
// shaped by Gcore's contract), through the real workers into the real
// Postgres and Redis; image_usage, unused_images and image_usage_history say
// what they found, and an incomplete usage listing changes nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { sampleBaremetalCluster, sampleSnapshot, sampleVirtualCluster, sampleVolume } from '../src/fake-gcore/consumers.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GPU_BAREMETAL_CLUSTERS, GPU_VIRTUAL_CLUSTERS, SNAPSHOTS, VOLUMES } from '../src/usage/consumer-lists.js';
import { deliverChanges, type DeliveredChange } from '../src/sql/deliverChanges.js';
import { takeSnapshot } from '../src/sql/takeSnapshot.js';
import { lastListings } from '../src/sql/lastListings.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, syncThroughKilledWorker, type Pipeline } from './support/pipeline.js';

interface World {
  env: TestEnv;
  fake: FakeGcore;
  pipeline: Pipeline;
}

let world: World | undefined;

afterEach(async () => {
  await world?.pipeline.close();
  await world?.fake.stop();
  await world?.env.cleanup();
  world = undefined;
});

const P = 1;
const R = 7;
const at = { projectId: P, regionId: R };
const image = (n: number) => ({ projectId: P, regionId: R, imageId: sampleImageId(n) });
const volumeId = (n: number) => `10000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const ATTACHED = 1;
const UNATTACHED = 2;
const UNUSED = 3;
const BAREMETAL = 4;
const PUBLIC = 5;
/** A volume names it; the project lists no such image. */
const ELSEWHERE = sampleImageId(99);

/** Five images and what uses them; HTML and a control character in names, which are data. */
function world0(fake: FakeGcore): void {
  for (const n of [ATTACHED, UNATTACHED, UNUSED]) fake.putImage(image(n), sampleImage(image(n)));
  fake.putImage(image(BAREMETAL), sampleImage(image(BAREMETAL), { is_baremetal: true }));
  fake.putImage(image(PUBLIC), sampleImage(image(PUBLIC), { visibility: 'public' }));
  const server = { serverId: 'a0000000-0000-4000-8000-000000000001', name: '<b>web</b>\u0007' };
  fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(1), name: 'root-1' }, image(ATTACHED).imageId, [server]));
  fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(2), name: '<script>x</script>' }, image(UNATTACHED).imageId));
  fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(3), name: 'blank' }, null));
  fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(4), name: 'stray' }, ELSEWHERE));
  fake.putConsumer(SNAPSHOTS, P, R, sampleSnapshot({ ...at, id: volumeId(10), name: 'nightly' }, volumeId(1)));
  fake.putConsumer(GPU_VIRTUAL_CLUSTERS, P, R, sampleVirtualCluster(volumeId(20), 'vgpu', image(ATTACHED).imageId));
  // Managed Kubernetes' cluster: the list answers it only when asked for managed_by=k8s too.
  fake.putConsumer(GPU_BAREMETAL_CLUSTERS, P, R, sampleBaremetalCluster(volumeId(30), 'k8s-gpu', image(BAREMETAL).imageId, 'k8s'));
}

async function begin(setUp: (fake: FakeGcore) => void, scope = '{}', env: Record<string, string> = {}, noWorker = false): Promise<World> {
  const testEnv = await createTestEnv();
  const fake = new FakeGcore({ apiKey: testEnv.env.GCORE_API_KEY });
  setUp(fake);
  await fake.start();
  const yaml = `${QUIET_SCHEDULE}\ntargets:\n  - { project_id: ${P}, region_id: ${R}, discover: ${scope} }\n`;
  const pipeline = await startPipeline(testEnv, fake.url, yaml, { env, noWorker });
  world = { env: testEnv, fake, pipeline };
  return world;
}

async function usage(w: World) {
  return w.pipeline.services.sql`
    SELECT image_id, consumer_kind, consumer_id, consumer_name FROM image_usage ORDER BY image_id, consumer_kind, consumer_id`;
}

async function unused(w: World) {
  return (await w.pipeline.services.sql<{ image_id: string }[]>`SELECT image_id FROM unused_images ORDER BY image_id`).map(
    (r) => r.image_id,
  );
}

/** Whether an image is in use, unused or unknown, and why unknown. */
async function statusOf(w: World, n: number) {
  const [row] = await w.pipeline.services.sql`
    SELECT usage_status, usage_unknown_because FROM image_usage_status WHERE image_id = ${image(n).imageId}`;
  return row;
}

async function usageListings(w: World) {
  return w.pipeline.services.sql`SELECT status, error, requests, consumers, opened, closed FROM usage_listings ORDER BY listing_id`;
}

const CURRENT = [
  { image_id: image(ATTACHED).imageId, consumer_kind: 'gpu_cluster', consumer_id: volumeId(20), consumer_name: 'vgpu' },
  {
    image_id: image(ATTACHED).imageId,
    consumer_kind: 'instance',
    consumer_id: 'a0000000-0000-4000-8000-000000000001',
    consumer_name: '<b>web</b>\u0007',
  },
  { image_id: image(ATTACHED).imageId, consumer_kind: 'snapshot', consumer_id: volumeId(10), consumer_name: 'nightly' },
  { image_id: image(UNATTACHED).imageId, consumer_kind: 'volume', consumer_id: volumeId(2), consumer_name: '<script>x</script>' },
  { image_id: image(BAREMETAL).imageId, consumer_kind: 'gpu_cluster', consumer_id: volumeId(30), consumer_name: 'k8s-gpu' },
  { image_id: ELSEWHERE, consumer_kind: 'volume', consumer_id: volumeId(4), consumer_name: 'stray' },
];

describe('image usage', () => {
  it('names the instance a volume is attached to and the unattached volume; lists the unused; closes an interval once a complete listing lacks it', async () => {
    const w = await begin(world0);
    const { sql } = w.pipeline.services;
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await usage(w)).toEqual(CURRENT);
    // The floor: one request of each consumer list, the bare-metal clusters of both managers in it.
    expect(w.fake.requestsByEndpoint).toMatchObject({ volumes: 1, snapshots: 1, gpu_virtual_clusters: 1, gpu_baremetal_clusters: 1 });
    expect(await usageListings(w)).toEqual([{ status: 'complete', error: null, requests: 4, consumers: 6, opened: 6, closed: 0 }]);
    expect(await lastListings(sql)).toMatchObject([{ status: 'complete', usage_complete: 1, usage_incomplete: 0, usage_requests: 4 }]);
    expect(await unused(w)).toEqual([image(UNUSED).imageId]);
    const status = await sql`SELECT image_id, usage_status, consumers, usage_unknown_because FROM image_usage_status ORDER BY image_id`;
    expect(status).toEqual([
      { image_id: image(ATTACHED).imageId, usage_status: 'in use', consumers: 3, usage_unknown_because: null },
      { image_id: image(UNATTACHED).imageId, usage_status: 'in use', consumers: 1, usage_unknown_because: null },
      { image_id: image(UNUSED).imageId, usage_status: 'unused', consumers: 0, usage_unknown_because: null },
      {
        image_id: image(BAREMETAL).imageId,
        usage_status: 'in use',
        consumers: 1,
        usage_unknown_because: 'bare-metal servers are not listed',
      },
      {
        image_id: image(PUBLIC).imageId,
        usage_status: 'unknown',
        consumers: 0,
        usage_unknown_because: 'a public image may be used by projects not listed',
      },
    ]);

    // Nothing changed: the listing writes no consumer row.
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect((await usageListings(w))[1]).toMatchObject({ status: 'complete', opened: 0, closed: 0 });
    const [rows] = await sql`SELECT count(*)::int AS n FROM image_usage_history`;
    expect(rows!.n).toBe(6);

    // The unattached volume is deleted; a failed volumes page (every attempt) removes no consumer.
    w.fake.deleteConsumer(VOLUMES, P, R, volumeId(2));
    w.fake.setListFault({ endpoint: 'volumes' }, { kind: 'status', status: 503 });
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect((await usageListings(w))[2]).toMatchObject({ status: 'incomplete', opened: 0, closed: 0, consumers: 0 });
    expect((await usageListings(w))[2]!.error).toMatch(/^503: injected 503$/);
    // The scope's listing of images is complete all the same; status says where usage was not.
    expect(await lastListings(sql)).toMatchObject([{ status: 'complete', usage_complete: 0, usage_incomplete: 1 }]);
    expect(await usage(w)).toEqual(CURRENT);
    expect(await unused(w)).toEqual([image(UNUSED).imageId]);

    // The next complete listing closes its interval, at its start: the image is unused since then.
    w.fake.clearFaults();
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect(await usage(w)).toEqual(CURRENT.filter((c) => c.image_id !== image(UNATTACHED).imageId));
    expect(await unused(w)).toEqual([image(UNATTACHED).imageId, image(UNUSED).imageId].sort());
    const [closed] = await sql`
      SELECT h.consumer_id, h.valid_to = l.started_at AS closed_at_listing, u.unused_since = h.valid_to AS unused_since_then
      FROM image_usage_history h JOIN usage_listings l ON l.status = 'complete' AND l.closed = 1
      JOIN unused_images u ON u.image_id = h.image_id
      WHERE h.image_id = ${image(UNATTACHED).imageId}`;
    expect(closed).toEqual({ consumer_id: volumeId(2), closed_at_listing: true, unused_since_then: true });
    const asOf = await sql`
      SELECT count(*)::int AS n FROM image_usage_as_of((SELECT valid_from FROM image_usage_history WHERE consumer_id = ${volumeId(2)}))
      WHERE consumer_id = ${volumeId(2)}`;
    expect(asOf[0]!.n).toBe(1);
  });

  it('a count that changes between pages, or ids repeated by a server ignoring offset, make the usage listing incomplete', async () => {
    const w = await begin((fake) => {
      world0(fake);
      for (let n = 100; n < 1100; n++) fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(n), name: `v${n}` }, null));
    });
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect(await usage(w)).toEqual(CURRENT);
    expect(w.fake.requestsByEndpoint.volumes).toBe(2);

    // Between the pages the unattached volume goes and another comes: the second page's count is not the first's.
    w.fake.afterListPage({ endpoint: 'volumes', offset: 0 }, () => {
      w.fake.deleteConsumer(VOLUMES, P, R, volumeId(2));
      w.fake.deleteConsumer(VOLUMES, P, R, volumeId(100));
      w.fake.deleteConsumer(VOLUMES, P, R, volumeId(101));
    });
    await w.pipeline.sync();
    expect((await usageListings(w))[1]).toMatchObject({
      status: 'incomplete',
      error: `volumes ${P}/${R} offset 1000: the count changed between pages (1004, then 1001)`,
    });
    expect(await usage(w)).toEqual(CURRENT);

    w.fake.ignoreOffset = true;
    await w.pipeline.sync();
    expect((await usageListings(w))[2]).toMatchObject({ status: 'incomplete' });
    expect((await usageListings(w))[2]!.error).toMatch(/listed twice \(does the server honour offset\?\)$/);
    expect(await usage(w)).toEqual(CURRENT);
  });

  it('a usage listing whose worker is killed with SIGKILL mid-way is listed whole by another worker, each consumer once', async () => {
    const many = (n: number) => sampleVolume({ ...at, id: volumeId(n), name: `v${n}` }, image(UNATTACHED).imageId);
    const w = await begin(
      (fake) => {
        world0(fake);
        for (let n = 100; n < 3100; n++) fake.putConsumer(VOLUMES, P, R, many(n));
      },
      '{}',
      { SYNC_JOB_LOCK_MS: '2000' },
      true,
    );
    const env = { ...w.env.env, GCORE_BASE_URL: w.fake.url, SYNC_JOB_LOCK_MS: '2000' };
    // Killed between two pages of volumes: the usage listing it began is recorded nowhere.
    const done = await syncThroughKilledWorker(w.pipeline, w.fake, env, () => (w.fake.requestsByEndpoint.volumes ?? 0) >= 2);
    expect(done).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await usageListings(w)).toEqual([{ status: 'complete', error: null, requests: 7, consumers: 3006, opened: 3006, closed: 0 }]);
    const [rows] = await w.pipeline.services.sql`
      SELECT count(*)::int AS n, count(DISTINCT (image_id, consumer_kind, consumer_id))::int AS distinct_consumers FROM image_usage_history`;
    expect(rows).toEqual({ n: 3006, distinct_consumers: 3006 });
    expect(await unused(w)).toEqual([image(UNUSED).imageId]);
  });

  it('a scope with usage: false lists none, and its images are usage unknown, never unused', async () => {
    const w = await begin(world0, '{ usage: false }');
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect(Object.keys(w.fake.requestsByEndpoint).filter((e) => /volumes|snapshots|clusters/.test(e))).toEqual([]);
    expect(await usage(w)).toEqual([]);
    expect(await unused(w)).toEqual([]);
    expect(await statusOf(w, UNUSED)).toEqual({
      usage_status: 'unknown',
      usage_unknown_because: 'its scope lists no usage (usage: false)',
    });
  });

  it('an image whose answer does not say whether it is bare metal is usage unknown, never unused', async () => {
    // is_baremetal is optional (older answers omit it): a bare-metal image in use by servers nothing lists may be one.
    const w = await begin((fake) => {
      world0(fake);
      fake.updateImage(image(UNUSED), { is_baremetal: null });
    });
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await unused(w)).toEqual([]);
    expect(await statusOf(w, UNUSED)).toEqual({
      usage_status: 'unknown',
      usage_unknown_because: 'whether it is a bare-metal image is not said',
    });
  });

  it('an image no scope listing usage covers any more is usage unknown, not unused on an old listing', async () => {
    const w = await begin(world0);
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', listingsFailed: 0 });
    expect(await unused(w)).toEqual([image(UNUSED).imageId]);
    // The scope now covers another region; the image stays, refreshed as an explicit target, and comes into use.
    await w.pipeline.close();
    const yaml = `${QUIET_SCHEDULE}\ntargets:\n  - { project_id: ${P}, region_id: 8, discover: {} }\n  - { project_id: ${P}, region_id: ${R}, image_ids: [${image(UNUSED).imageId}] }\n`;
    w.pipeline = await startPipeline(w.env, w.fake.url, yaml);
    w.fake.putConsumer(VOLUMES, P, R, sampleVolume({ ...at, id: volumeId(50), name: 'late' }, image(UNUSED).imageId));
    expect(await w.pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    expect(await unused(w)).toEqual([]);
    expect(await statusOf(w, UNUSED)).toEqual({ usage_status: 'unknown', usage_unknown_because: 'no scope listing usage covers it' });
  });

  it('alerts when an image in use changes visibility or is deleted, and keeps usage in the audit snapshots', async () => {
    const w = await begin(world0);
    const { sql } = w.pipeline.services;
    await w.pipeline.sync();
    const sent: DeliveredChange[] = [];
    const deliver = () => deliverChanges(sql, 100, async (changes) => void sent.push(...changes));
    // The first delivery starts from the newest change.
    await deliver();
    const snapshot = await takeSnapshot(sql, 'test:usage');
    expect(await sql`SELECT * FROM snapshot_usage(${snapshot.id})`).toEqual(
      CURRENT.map((c) => ({ project_id: P, region_id: R, ...c })).sort((a, b) =>
        a.image_id === b.image_id ? a.consumer_kind.localeCompare(b.consumer_kind) : a.image_id.localeCompare(b.image_id),
      ),
    );

    w.fake.updateImage(image(ATTACHED), { visibility: 'shared', updated_at: '2026-06-01T00:00:00+0000' });
    w.fake.deleteImage(image(UNATTACHED));
    w.fake.deleteImage(image(UNUSED));
    await w.pipeline.sync();
    await deliver();
    const alerts = sent.map((c) => ({ image_id: c.image_id, change_type: c.change_type, field: c.field, in_use_alert: c.in_use_alert }));
    expect(alerts.filter((a) => a.field !== 'updated_at')).toEqual([
      {
        image_id: image(ATTACHED).imageId,
        change_type: 'updated',
        field: 'visibility',
        in_use_alert: {
          event: 'visibility_changed_in_use',
          consumers: 3,
          examples: [
            { kind: 'gpu_cluster', id: volumeId(20), name: 'vgpu' },
            { kind: 'instance', id: 'a0000000-0000-4000-8000-000000000001', name: '<b>web</b>\u0007' },
            { kind: 'snapshot', id: volumeId(10), name: 'nightly' },
          ],
        },
      },
      {
        image_id: image(UNATTACHED).imageId,
        change_type: 'deleted',
        field: null,
        in_use_alert: {
          event: 'deleted_in_use',
          consumers: 1,
          examples: [{ kind: 'volume', id: volumeId(2), name: '<script>x</script>' }],
        },
      },
      { image_id: image(UNUSED).imageId, change_type: 'deleted', field: null, in_use_alert: null },
    ]);
  });
});
