// GPU images (the gpu_virtual and gpu_baremetal kinds, src/images/image-kinds.ts)
// through the real worker, against the fake API over HTTP: a scope over every
// region lists them where the regions list says a region has GPU capacity,
// stores them beside ordinary images with their kind, says which images are
// the project's own, records a GPU image's rename as a change, and its
// deletion only once its own GET answers 404 NotFoundError. Attacked with
// HTML and control characters in GPU fields, a GPU list whose count lies,
// and an image both the ordinary and a GPU list return.
import { afterEach, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../src/work/worker.js';
import { sampleGpuImage, sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GPU_BAREMETAL, GPU_VIRTUAL, ORDINARY } from '../src/images/image-kinds.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { capturedLogger, QUIET_SCHEDULE, startPipeline, withWorker, type Pipeline } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

let env: TestEnv | undefined;
let fake: FakeGcore | undefined;
let pipeline: Pipeline | undefined;
let follower: RunningWorker | undefined;

afterEach(async () => {
  await follower?.close();
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
  [env, fake, pipeline, follower] = [undefined, undefined, undefined, undefined];
});

const at = (regionId: number, n: number) => ({ projectId: 1, regionId, imageId: sampleImageId(n) });
/** Region 7 has GPU capacity and bare metal; region 8 neither. */
const OWN = at(7, 1);
const PUBLIC = at(7, 2);
const GPU = at(7, 3);
const GPU_PUBLIC = at(7, 4);
const GPU_BM = at(7, 5);
/** On the ordinary list and the GPU virtual one. */
const BOTH = at(7, 6);
/** An explicit GPU image in a region the scope lists no GPU images in. */
const EXPLICIT = at(8, 7);

const HOSTILE_NAME = '<img src=x onerror=alert(1)>\u0007gpu\u001b[31m';
const HOSTILE_CUDA = '12.4</td>\u0008';

const TARGETS = `${QUIET_SCHEDULE}
targets:
  - { project_id: 1, region_id: all, discover: {} }
  - { project_id: 1, region_id: 8, image_ids: [${EXPLICIT.imageId}], kind: gpu_virtual }
`;

/** BOTH as the GPU list answers it: the fields it shares with the ordinary answer alike, and its own. */
const bothOrdinary = sampleImage(BOTH, { size: 1234 });
const bothAsGpu = Object.fromEntries(Object.keys(sampleGpuImage(BOTH)).map((field) => [field, bothOrdinary[field] ?? null]));
bothAsGpu.cuda_toolkit_version = '13.0.2';

function fakeWithImages(apiKey: string): FakeGcore {
  const api = new FakeGcore({ apiKey });
  api.putProject({ id: 1, name: 'default' });
  api.putRegion({ id: 7, display_name: 'Luxembourg-2', state: 'ACTIVE', has_baremetal: true, has_ai_gpu: true });
  api.putRegion({ id: 8, display_name: 'Frankfurt', state: 'ACTIVE', has_baremetal: false, has_ai_gpu: false });
  api.putImage(OWN, sampleImage(OWN));
  // A public image on the ordinary list: its payload names its owner, another project.
  api.putImage(PUBLIC, sampleImage(PUBLIC, { visibility: 'public', project_id: 500 }));
  api.putImage(GPU, sampleGpuImage(GPU, { name: HOSTILE_NAME, cuda_toolkit_version: HOSTILE_CUDA }), GPU_VIRTUAL);
  api.putImage(GPU_PUBLIC, sampleGpuImage(GPU_PUBLIC, { visibility: 'public', cuda_toolkit_version: '12.8' }), GPU_VIRTUAL);
  api.putImage(GPU_BM, sampleGpuImage(GPU_BM, { cuda_toolkit_version: null }), GPU_BAREMETAL);
  api.putImage(BOTH, bothOrdinary, ORDINARY);
  api.putImage(BOTH, bothAsGpu, GPU_VIRTUAL);
  api.putImage(EXPLICIT, sampleGpuImage(EXPLICIT), GPU_VIRTUAL);
  return api;
}

async function current() {
  return pipeline!.services.sql<
    { image_id: string; kind: string; owned: boolean; name: string; size: string | null; cuda: string | null }[]
  >`
    SELECT image_id, kind, owned, name, size::text AS size, cuda_toolkit_version AS cuda FROM current_images ORDER BY image_id`;
}

async function changesAfter(after: number) {
  return pipeline!.services.sql<{ image_id: string; change_type: string; field: string | null; new_value: unknown; kind: string }[]>`
    SELECT image_id, change_type, field, new_value, kind FROM image_change_log WHERE id > ${after} ORDER BY id`;
}

const lastChange = async () =>
  (await pipeline!.services.sql<{ id: number }[]>`SELECT coalesce(max(id), 0)::int AS id FROM image_changes`)[0]!.id;

describe('GPU images through the worker', () => {
  it('are listed where the region has GPU capacity, stored with their kind and ownership, renamed as a change, deleted only on a 404 NotFoundError', async () => {
    env = await createTestEnv();
    fake = fakeWithImages(env.env.GCORE_API_KEY!);
    await fake.start();
    pipeline = await startPipeline(env, fake.url, TARGETS);
    const { sql, queues } = pipeline.services;

    expect(await pipeline.sync()).toMatchObject({ status: 'finished', failed: 0, listingsFailed: 0 });
    // The HTML and control characters are data, stored as sent.
    expect(await current()).toEqual([
      { image_id: OWN.imageId, kind: 'ordinary', owned: true, name: expect.any(String), size: '2361393152', cuda: null },
      { image_id: PUBLIC.imageId, kind: 'ordinary', owned: false, name: expect.any(String), size: '2361393152', cuda: null },
      { image_id: GPU.imageId, kind: 'gpu_virtual', owned: true, name: HOSTILE_NAME, size: '21474836480', cuda: HOSTILE_CUDA },
      { image_id: GPU_PUBLIC.imageId, kind: 'gpu_virtual', owned: false, name: expect.any(String), size: '21474836480', cuda: '12.8' },
      { image_id: GPU_BM.imageId, kind: 'gpu_baremetal', owned: true, name: expect.any(String), size: '21474836480', cuda: null },
      // One image, one triple: the GPU kind's fields and GET, the ordinary list's owner kept (so ownership by project).
      { image_id: BOTH.imageId, kind: 'gpu_virtual', owned: true, name: expect.any(String), size: '1234', cuda: '13.0.2' },
      { image_id: EXPLICIT.imageId, kind: 'gpu_virtual', owned: true, name: expect.any(String), size: '21474836480', cuda: '13.0.2' },
    ]);
    expect(await sql`SELECT owner_project_id::int, region FROM images WHERE image_id = ${BOTH.imageId}`).toEqual([
      { owner_project_id: 1, region: 'Luxembourg-2' },
    ]);
    // A GPU image names no owner, project or region: those columns stay null, which the CHECK allows for GPU kinds only.
    expect(await sql`SELECT owner_project_id, image_region_id, region FROM images WHERE image_id = ${GPU.imageId}`).toEqual([
      { owner_project_id: null, image_region_id: null, region: null },
    ]);
    // The GPU lists only in region 7; region 8's explicit GPU image by its own GET.
    expect(fake.requestsByEndpoint).toMatchObject({
      regions: 1,
      images: 2,
      bmimages: 1,
      gpu_virtual_images: 1,
      gpu_baremetal_images: 1,
      image: 0,
      'image:gpu_virtual': 1,
    });

    // Nothing changed at the API: no version, the image both lists return included, whichever answers last.
    let before = await lastChange();
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: 0, failed: 0, listingsFailed: 0 });
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: 0, failed: 0, listingsFailed: 0 });
    expect(await changesAfter(before)).toEqual([]);

    // Renamed at the API: a change of the GPU image's name.
    before = await lastChange();
    fake.updateImage(GPU, { name: 'cuda-13 <b>base</b>' }, GPU_VIRTUAL);
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: 1, failed: 0, listingsFailed: 0 });
    expect(await changesAfter(before)).toEqual([
      { image_id: GPU.imageId, change_type: 'updated', field: 'name', new_value: 'cuda-13 <b>base</b>', kind: 'gpu_virtual' },
    ]);

    // A GPU list whose count says one more than it returns: the listing is incomplete, as for ordinary lists.
    fake.setListLie({ endpoint: 'gpu_virtual_images', projectId: 1, regionId: 7 }, { kind: 'countOff', by: 1 });
    before = await lastChange();
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: 0, deleted: 0, listingsFailed: 1 });
    expect(await changesAfter(before)).toEqual([]);
    fake.clearFaults();

    // Gone from its list while a 404 without Gcore's JSON body answers its GET (a proxy, not the API): not deleted.
    fake.deleteImage(GPU_BM, GPU_BAREMETAL);
    fake.setFault(GPU_BM, { kind: 'bare404' });
    const getsBefore = fake.requestsByEndpoint['image:gpu_baremetal'] ?? 0;
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', deleted: 0, listingsFailed: 0 });
    expect(fake.requestsByEndpoint['image:gpu_baremetal']).toBeGreaterThan(getsBefore);
    expect(await sql`SELECT deleted_at FROM images WHERE image_id = ${GPU_BM.imageId}`).toEqual([{ deleted_at: null }]);

    // Its GET answers 404 NotFoundError: deleted, as a change of its kind.
    fake.clearFaults();
    before = await lastChange();
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', deleted: 1, listingsFailed: 0 });
    expect(await changesAfter(before)).toEqual([
      { image_id: GPU_BM.imageId, change_type: 'deleted', field: null, new_value: null, kind: 'gpu_baremetal' },
    ]);
    expect((await current()).map((image) => image.image_id)).not.toContain(GPU_BM.imageId);
    // In the history as of now and in a snapshot's versions, with its kind and ownership.
    expect(await sql`SELECT kind, owned FROM images_as_of(now()) WHERE image_id = ${GPU_PUBLIC.imageId}`).toEqual([
      { kind: 'gpu_virtual', owned: false },
    ]);
    expect(await invariantViolations(sql, queues)).toEqual([]);
  });
});

describe("a GPU image's audit-log entries", () => {
  it('name it by its triple (api_group image, resource_type image, assumed): its change is put down to who acted, refreshed by its own GET', async () => {
    env = await createTestEnv();
    fake = fakeWithImages(env.env.GCORE_API_KEY!);
    await fake.start();
    // The first sync stores the images by a worker that does not follow the log; then only the follower runs.
    pipeline = await startPipeline(env, fake.url, TARGETS, { noWorker: true });
    await withWorker(pipeline, () => pipeline!.sync());
    fake.resetStats();
    const { sql } = pipeline.services;
    follower = startWorker({
      config: { ...pipeline.config, auditLogPollSeconds: 1 },
      accounts: pipeline.accounts,
      logger: capturedLogger().logger,
      ...pipeline.services,
    });
    await waitFor('the first poll', async () => (await sql`SELECT 1 FROM audit_log_cursors WHERE polled_at IS NOT NULL`).length === 1);

    fake.updateImage(GPU, { name: 'renamed by bob' }, GPU_VIRTUAL);
    fake.logAction({ email: 'bob@example.com' }, 'update', GPU, { name: 'renamed by bob' });
    await waitFor('the rename, put down to bob', async () => {
      const rows = await sql`SELECT 1 FROM image_change_log WHERE image_id = ${GPU.imageId} AND actor_email = 'bob@example.com'`;
      return rows.length > 0;
    });
    expect(
      await sql`SELECT change_type, field, new_value, kind, action_type FROM image_change_log WHERE image_id = ${GPU.imageId}
      AND change_type = 'updated'`,
    ).toEqual([{ change_type: 'updated', field: 'name', new_value: 'renamed by bob', kind: 'gpu_virtual', action_type: 'update' }]);
    // One refresh, by the GPU image's own GET; nothing listed.
    expect(fake.requestsByEndpoint).toMatchObject({ image: 0, 'image:gpu_virtual': 1, gpu_virtual_images: 0, images: 0 });
  });
});
