// The second kind of image (test/support/second-kind.ts, defined only in the
// tests) through the real worker, in this process, against the fake API: a
// scope lists it from its own endpoint (which takes no filters: the scope's
// filters are applied by the worker), it is stored, an explicit target of it is
// refreshed with its own GET, both are diffed and deleted like ordinary images,
// and an image both kinds' endpoints return is one image with no new version
// per run. A kind this process does not know is never fetched with another
// kind's GET.
import { afterEach, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { ORDINARY } from '../src/images/image-kinds.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { invariantViolations } from './support/invariants.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';
import { acceleratedImage, ACCELERATED } from './support/second-kind.js';

let env: TestEnv | undefined;
let fake: FakeGcore | undefined;
let pipeline: Pipeline | undefined;

afterEach(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
  [env, fake, pipeline] = [undefined, undefined, undefined];
});

const at = (regionId: number, n: number) => ({ projectId: 1, regionId, imageId: sampleImageId(n) });
/** Listed by the scope: ordinary only, the second kind only, both kinds, and one of the second kind the scope's filter leaves out. */
const ORDINARY_ONLY = at(7, 1);
const SECOND_ONLY = at(7, 2);
const BOTH = at(7, 3);
const FILTERED_OUT = at(7, 4);
/** Explicit targets in another region: one of the second kind, one whose kind no definition here knows. */
const EXPLICIT = at(8, 5);
const UNKNOWN = at(8, 6);

const TARGETS = `${QUIET_SCHEDULE}
targets:
  - { project_id: 1, region_id: 7, discover: { kinds: [ordinary, ${ACCELERATED.name}], os_distro: ubuntu, baremetal: false } }
  - { project_id: 1, region_id: 8, image_ids: [${EXPLICIT.imageId}], kind: ${ACCELERATED.name} }
  - { project_id: 1, region_id: 8, image_ids: [${UNKNOWN.imageId}] }
`;

async function images() {
  return pipeline!.services.sql<
    { image_id: string; kind: string; deleted: boolean; versions: number; cuda: string | null; size: number | null }[]
  >`
    SELECT i.image_id, i.kind, i.deleted_at IS NOT NULL AS deleted, i.size,
      (SELECT count(*)::int FROM image_versions v WHERE (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id)) AS versions,
      (SELECT v.state->>'cuda_toolkit_version' FROM image_versions v
        WHERE (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id) ORDER BY v.valid_from DESC LIMIT 1) AS cuda
    FROM images i ORDER BY i.image_id`;
}

/** The changes after change `after`, by image and field. */
async function changes(after = 0) {
  return pipeline!.services.sql<{ image_id: string; change_type: string; field: string | null; kind: string }[]>`
    SELECT image_id, change_type, field, kind FROM image_change_log WHERE id > ${after} ORDER BY image_id, field`;
}

const lastChange = async () =>
  (await pipeline!.services.sql<{ id: number }[]>`SELECT coalesce(max(id), 0)::int AS id FROM image_changes`)[0]!.id;

describe('a second kind, defined only in the tests, through the worker', () => {
  it('is listed by a scope, stored, refreshed with its own GET, diffed and deleted like the first; one image both kinds return is one image', async () => {
    env = await createTestEnv();
    fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
    fake.serveKind(ACCELERATED);
    fake.putImage(ORDINARY_ONLY, sampleImage(ORDINARY_ONLY));
    fake.putImage(SECOND_ONLY, acceleratedImage(SECOND_ONLY), ACCELERATED);
    // The image both kinds return is on the ordinary list first; the second kind's list gains it after the first run.
    fake.putImage(BOTH, sampleImage(BOTH, { size: 1234 }), ORDINARY);
    fake.putImage(FILTERED_OUT, acceleratedImage(FILTERED_OUT, { os_distro: 'debian' }), ACCELERATED);
    fake.putImage(EXPLICIT, acceleratedImage(EXPLICIT), ACCELERATED);
    fake.putImage(UNKNOWN, sampleImage(UNKNOWN));
    await fake.start();
    pipeline = await startPipeline(env, fake.url, TARGETS);
    const { sql, queues } = pipeline.services;
    // A target stored by a process that defines a kind this one does not (a newer release).
    await sql`UPDATE targets SET kind = 'retired_kind' WHERE image_id = ${UNKNOWN.imageId}`;

    const first = await pipeline.sync();
    expect(first).toMatchObject({ status: 'finished', failed: 1, listingsFailed: 0 });
    expect(await images()).toEqual([
      { image_id: ORDINARY_ONLY.imageId, kind: 'ordinary', deleted: false, versions: 1, cuda: null, size: expect.any(Number) },
      { image_id: SECOND_ONLY.imageId, kind: ACCELERATED.name, deleted: false, versions: 1, cuda: '12.4', size: null },
      { image_id: BOTH.imageId, kind: 'ordinary', deleted: false, versions: 1, cuda: null, size: 1234 },
      { image_id: EXPLICIT.imageId, kind: ACCELERATED.name, deleted: false, versions: 1, cuda: '12.4', size: null },
    ]);
    // The scope's filter, applied here to a list that takes none: the debian image is no target.
    expect(await sql`SELECT image_id, kind FROM targets WHERE image_id = ${FILTERED_OUT.imageId}`).toEqual([]);
    // The explicit image of the second kind took its own GET; the unknown kind took none.
    expect(fake.requestsByEndpoint).toMatchObject({ image: 0, [`image:${ACCELERATED.name}`]: 1, images: 1, accelerated_images: 1 });
    const [failure] = await sql<{ error_class: string; message: string }[]>`
      SELECT error_class, message FROM sync_failures WHERE image_id = ${UNKNOWN.imageId}`;
    expect(failure).toMatchObject({ error_class: 'UnknownKindError', message: expect.stringContaining('"retired_kind"') });
    // The views say the kind: a failed target never seen has its target's.
    expect(await sql`SELECT kind FROM stale_images WHERE image_id = ${UNKNOWN.imageId}`).toEqual([{ kind: 'retired_kind' }]);
    const [listing] = await sql`SELECT status, expected, listed FROM listings`;
    expect(listing).toEqual({ status: 'complete', expected: 4, listed: 4 });

    // The second kind's list gains the image the ordinary list returns: it stays one image, now of the more specific
    // kind, with both endpoints' fields (the ordinary list's kept, the second kind's added), whichever list's answer
    // is stored first.
    fake.putImage(BOTH, acceleratedImage(BOTH), ACCELERATED);
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', failed: 1, listingsFailed: 0, changed: 1 });
    expect((await images()).find((i) => i.image_id === BOTH.imageId)).toEqual({
      image_id: BOTH.imageId,
      kind: ACCELERATED.name,
      deleted: false,
      versions: 2,
      cuda: '12.4',
      size: 1234,
    });
    const [current] = await sql`SELECT kind FROM current_images WHERE image_id = ${BOTH.imageId}`;
    expect(current).toEqual({ kind: ACCELERATED.name });

    // Nothing changed: no new version, the image both kinds return included.
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', failed: 1, listingsFailed: 0, changed: 0 });
    expect((await images()).map((i) => i.versions)).toEqual([1, 1, 2, 1]);

    // Its own fields change, as its list and its GET see them: one change row each.
    const before = await lastChange();
    fake.updateImage(SECOND_ONLY, { cuda_toolkit_version: '12.6' }, ACCELERATED);
    fake.updateImage(EXPLICIT, { accelerator_count: 4 }, ACCELERATED);
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', changed: 2, listingsFailed: 0 });
    expect(await changes(before)).toEqual([
      { image_id: SECOND_ONLY.imageId, change_type: 'updated', field: 'cuda_toolkit_version', kind: ACCELERATED.name },
      { image_id: EXPLICIT.imageId, change_type: 'updated', field: 'accelerator_count', kind: ACCELERATED.name },
    ]);

    // Deleted: gone from its list (confirmed by its own GET's 404 NotFoundError), and its GET answering 404.
    fake.deleteImage(SECOND_ONLY, ACCELERATED);
    fake.deleteImage(EXPLICIT, ACCELERATED);
    expect(await pipeline.sync()).toMatchObject({ status: 'finished', deleted: 2, listingsFailed: 0 });
    expect((await images()).filter((i) => i.deleted).map((i) => i.image_id)).toEqual([SECOND_ONLY.imageId, EXPLICIT.imageId]);
    const deleted = await lastChange();
    expect(await changes(before)).toHaveLength(4);
    expect(await changes(deleted - 2)).toEqual([
      { image_id: SECOND_ONLY.imageId, change_type: 'deleted', field: null, kind: ACCELERATED.name },
      { image_id: EXPLICIT.imageId, change_type: 'deleted', field: null, kind: ACCELERATED.name },
    ]);
    expect(fake.requestsByEndpoint.image).toBe(0);
    expect(await invariantViolations(sql, queues)).toEqual([]);
  });
});
