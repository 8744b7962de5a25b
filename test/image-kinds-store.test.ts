// The second kind of image (test/support/second-kind.ts), defined only in the
// tests, through the layers that take an answer to history: its own endpoints
// on the fake API, the client, observe(), the store, the diff and deletion.
// And one image that both kinds' endpoints return: one image, one history,
// no new version per run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type Sql } from '../src/db/db.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient } from '../src/gcore/gcore-client.js';
import { ORDINARY, type ImageKind } from '../src/images/image-kinds.js';
import { storeObservations } from '../src/work/image-store.js';
import type { Triple } from '../src/interfaces.js';
import { applyMigrations, migrationsFolder, readMigrations } from '../src/db/migrate.js';
import { observe } from '../src/images/observe.js';
import { recordDeletion } from '../src/sql/recordDeletion.js';
import { tripleKey } from '../src/images/triple.js';
import { createTestEnv, withDatabase } from './support/env.js';
import { acceleratedImage, ACCELERATED } from './support/second-kind.js';

let sql: Sql;
const fake = new FakeGcore();
let client: GcoreClient;

withDatabase((connection) => (sql = connection));
beforeAll(async () => {
  fake.serveKind(ACCELERATED);
  await fake.start();
  client = new GcoreClient({ baseUrl: fake.url, apiKey: fake.apiKey, timeoutMs: 2000, maxResponseBytes: 1 << 20 });
});
afterAll(async () => {
  client.close();
  await fake.stop();
});

/** One refresh of `triple` with `kind`'s GET, as refresh.ts does it: the answer stored, or a 404 recorded. */
async function refresh(triple: Triple, kind: ImageKind): Promise<string> {
  const answer = await client.getImage(triple, kind);
  if (answer.kind === 'gone') return `gone: ${await recordDeletion(sql, triple, answer.observedAt, kind)}`;
  const stored = await storeObservations(sql, [observe('default', triple, answer.body, answer.observedAt, kind)], 'answer');
  return String(stored.get(tripleKey(triple)));
}

async function imageRow(triple: Triple) {
  const [row] = await sql<
    {
      kind: string;
      name: string;
      size: number | null;
      gpu_driver: string | null;
      deleted: boolean;
      versions: number;
      state: Record<string, unknown>;
    }[]
  >`
    SELECT i.kind, i.name, i.size, i.gpu_driver, i.deleted_at IS NOT NULL AS deleted,
      (SELECT count(*)::int FROM image_versions v WHERE (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id)) AS versions,
      (SELECT v.state FROM image_versions v WHERE (v.project_id, v.region_id, v.image_id) = (i.project_id, i.region_id, i.image_id)
        ORDER BY v.valid_from DESC LIMIT 1) AS state
    FROM images i WHERE (i.project_id, i.region_id, i.image_id) = (${triple.projectId}, ${triple.regionId}, ${triple.imageId})`;
  return row;
}

async function changes(triple: Triple) {
  return sql<{ change_type: string; field: string | null; old_value: unknown; new_value: unknown }[]>`
    SELECT change_type, field, old_value, new_value FROM image_changes
    WHERE (project_id, region_id, image_id) = (${triple.projectId}, ${triple.regionId}, ${triple.imageId}) ORDER BY id`;
}

describe('a second kind, defined only in the tests', () => {
  const triple = { projectId: 1, regionId: 7, imageId: sampleImageId(101) };

  it('is listed from its own endpoint (which takes no filters), stored with its kind and its own fields', async () => {
    fake.putImage(triple, acceleratedImage(triple, { gpu_driver: 'nvidia' }), ACCELERATED);
    const page = await client.listPage(
      { endpoint: 'accelerated_images', projectId: 1, regionId: 7, query: [['visibility', 'public']] },
      0,
      1000,
    );
    expect(page.count).toBe(1);
    expect(fake.requestsByEndpoint.accelerated_images).toBe(1);
    const stored = await storeObservations(sql, [observe('default', triple, page.results[0], page.observedAt, ACCELERATED)], 'listing');
    expect(stored.get(tripleKey(triple))).toBe('changed');
    const row = await imageRow(triple);
    expect(row).toMatchObject({ kind: 'test_accelerated', name: acceleratedImage(triple).name, size: null, gpu_driver: 'nvidia' });
    expect(row!.state).toMatchObject({ cuda_toolkit_version: '12.4', accelerator_count: 8 });
    expect((await changes(triple)).map((c) => c.change_type)).toEqual(['created']);
  });

  it("is refreshed with its own GET: unchanged, then a change of its own field diffed as any field's", async () => {
    expect(await refresh(triple, ACCELERATED)).toBe('unchanged');
    expect(fake.requestsByEndpoint['image:test_accelerated']).toBe(1);
    fake.updateImage(triple, { cuda_toolkit_version: '12.6' }, ACCELERATED);
    expect(await refresh(triple, ACCELERATED)).toBe('changed');
    expect((await changes(triple)).slice(1)).toEqual([
      { change_type: 'updated', field: 'cuda_toolkit_version', old_value: '12.4', new_value: '12.6' },
    ]);
    expect((await imageRow(triple))!.versions).toBe(2);
  });

  it("is deleted by its own GET's 404, not by another kind's, and restored like any image", async () => {
    expect(await refresh(triple, ORDINARY)).toBe('gone: unchanged');
    expect((await imageRow(triple))!.deleted).toBe(false);
    fake.deleteImage(triple, ACCELERATED);
    expect(await refresh(triple, ACCELERATED)).toBe('gone: deleted');
    expect((await imageRow(triple))!.deleted).toBe(true);
    fake.putImage(triple, acceleratedImage(triple), ACCELERATED);
    expect(await refresh(triple, ACCELERATED)).toBe('changed');
    expect((await changes(triple)).map((c) => c.change_type)).toEqual(['created', 'updated', 'deleted', 'restored']);
  });
});

describe('one image that both kinds return', () => {
  const triple = { projectId: 1, regionId: 7, imageId: sampleImageId(102) };

  it('is one image of the more specific kind, whose fields join the state without nulling what only the other endpoint says', async () => {
    fake.putImage(triple, sampleImage(triple));
    fake.putImage(triple, acceleratedImage(triple), ACCELERATED);
    expect(await refresh(triple, ORDINARY)).toBe('changed');
    expect(await imageRow(triple)).toMatchObject({ kind: 'ordinary', size: 2361393152, versions: 1 });
    expect(await refresh(triple, ACCELERATED)).toBe('changed');
    const row = await imageRow(triple);
    expect(row).toMatchObject({ kind: 'test_accelerated', size: 2361393152, versions: 2 });
    expect(row!.state).toMatchObject({ architecture: 'x86_64', ssh_key: 'allow', cuda_toolkit_version: '12.4' });
    expect((await changes(triple)).slice(1).map((c) => c.field)).toEqual(['accelerator_count', 'cuda_toolkit_version']);
  });

  it('makes no new version however the two endpoints take turns', async () => {
    for (const kind of [ORDINARY, ORDINARY, ACCELERATED, ORDINARY, ACCELERATED, ACCELERATED]) {
      expect(await refresh(triple, kind), kind.name).toBe('unchanged');
    }
    expect(await imageRow(triple)).toMatchObject({ kind: 'test_accelerated', size: 2361393152, versions: 2 });
  });

  it("a change either endpoint sees is one change, and the other's answer does not undo it", async () => {
    fake.updateImage(triple, { ssh_key: 'deny' });
    expect(await refresh(triple, ORDINARY)).toBe('changed');
    expect(await refresh(triple, ACCELERATED)).toBe('unchanged');
    expect((await changes(triple)).at(-1)).toMatchObject({ field: 'ssh_key', old_value: 'allow', new_value: 'deny' });
    expect((await imageRow(triple))!.versions).toBe(3);
  });
});

describe('existing data', () => {
  it('migrates in place: every image stored before the kinds is ordinary, and so is one a worker of the earlier release writes after', async () => {
    const env = await createTestEnv({ migrate: false });
    const db = await connectPostgres(env.databaseUrl);
    try {
      const all = readMigrations(migrationsFolder());
      const at = all.findIndex((m) => m.tag === '0024_image_kinds');
      await applyMigrations(db, all.slice(0, at));
      const image = (id: string) => db`
        INSERT INTO images (project_id, region_id, image_id, name, region, status, visibility, os_distro, os_version, os_type,
          disk_format, min_disk, min_ram, owner_project_id, image_region_id, created_at, updated_at, raw, content_hash,
          first_seen_at, last_seen_at, last_changed_at)
        VALUES (1, 7, ${id}, 'n', 'r', 'active', 'private', 'ubuntu', '22.04', 'linux', 'qcow2', 5, 1024, 1, 7, now(), now(),
          '{}', 'h', now(), now(), now())`;
      await image(sampleImageId(201));
      // Through 0024: from 0025 on, images is a view whose last_seen_at the earlier release cannot write (migrate.test.ts).
      await applyMigrations(db, all.slice(0, at + 1));
      expect(await db`SELECT image_id, kind FROM images`).toEqual([{ image_id: sampleImageId(201), kind: 'ordinary' }]);
      // A worker of the earlier release, still running during the upgrade, names no kind: it stores only ordinary images.
      await image(sampleImageId(202));
      expect(await db`SELECT image_id, kind FROM images ORDER BY image_id`).toEqual([
        { image_id: sampleImageId(201), kind: 'ordinary' },
        { image_id: sampleImageId(202), kind: 'ordinary' },
      ]);
    } finally {
      await db.end();
      await env.cleanup();
    }
  });
});
