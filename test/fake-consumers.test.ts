// The fake's lists of what uses images (volumes, snapshots, GPU clusters), over
// HTTP, against Gcore's contract (contract/gcore-cloud-api-usage.yaml): every
// answer valid for its serializer, the contract's paging defaults, and the
// bare-metal cluster list's managed_by.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleBaremetalCluster, sampleSnapshot, sampleVirtualCluster, sampleVolume } from '../src/fake-gcore/consumers.js';
import { sampleImageId, spreadVolumes } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GPU_BAREMETAL_CLUSTERS, GPU_VIRTUAL_CLUSTERS, SNAPSHOTS, VOLUMES, volumeConsumers } from '../src/usage/consumer-lists.js';
import { contractProblems } from './support/contract-check.js';
import { contractSchemas } from './support/contract.js';

const schemas = contractSchemas('gcore-cloud-api-usage.yaml');
const fake = new FakeGcore({ apiKey: 'usage-key' });
const at = { projectId: 1, regionId: 7 };
const uuid = (n: number) => `20000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
let base = '';

beforeAll(async () => {
  for (let n = 0; n < 12; n++) {
    fake.putConsumer(
      VOLUMES,
      1,
      7,
      sampleVolume(
        { ...at, id: uuid(n), name: `v${n}` },
        n % 2 ? uuid(100) : null,
        n % 3 ? [] : [{ serverId: uuid(200 + n), name: `vm-${n}` }],
      ),
    );
    fake.putConsumer(SNAPSHOTS, 1, 7, sampleSnapshot({ ...at, id: uuid(300 + n), name: `s${n}` }, uuid(n)));
    fake.putConsumer(GPU_VIRTUAL_CLUSTERS, 1, 7, sampleVirtualCluster(uuid(400 + n), `vc${n}`, uuid(100)));
    fake.putConsumer(GPU_BAREMETAL_CLUSTERS, 1, 7, sampleBaremetalCluster(uuid(500 + n), `bc${n}`, uuid(100), n < 4 ? 'k8s' : 'user'));
  }
  base = await fake.start();
});
afterAll(() => fake.stop());

async function page(path: string, serializer: string): Promise<{ count: number; ids: string[] }> {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `APIKey ${fake.apiKey}` } });
  const body = (await response.json()) as { count: number; results: Array<{ id: string }> };
  expect(response.status).toBe(200);
  expect(contractProblems(body, schemas[serializer]!, schemas)).toEqual([]);
  return { count: body.count, ids: body.results.map((r) => r.id) };
}

describe('the fake lists of image consumers', () => {
  it('answers each list as its serializer says, paged by limit and offset', async () => {
    expect((await page('/cloud/v1/volumes/1/7', 'VolumeCollectionSerializer')).ids).toHaveLength(12);
    expect(await page('/cloud/v1/volumes/1/7?limit=5&offset=10', 'VolumeCollectionSerializer')).toEqual({
      count: 12,
      ids: [uuid(10), uuid(11)],
    });
    expect((await page('/cloud/v1/snapshots/1/7?limit=1000', 'SnapshotCollectionSerializer')).ids).toHaveLength(12);
    expect((await page('/cloud/v1/volumes/1/8', 'VolumeCollectionSerializer')).count).toBe(0);
  });

  it('pages the cluster lists 10 by default, and the bare-metal one answers managed_by=user unless asked for k8s too', async () => {
    expect(await page('/cloud/v3/gpu/virtual/1/7/clusters', 'VirtualClusterListSerializer')).toMatchObject({ count: 12 });
    expect((await page('/cloud/v3/gpu/virtual/1/7/clusters', 'VirtualClusterListSerializer')).ids).toHaveLength(10);
    expect((await page('/cloud/v3/gpu/virtual/1/7/clusters?limit=1000', 'VirtualClusterListSerializer')).ids).toHaveLength(12);
    expect((await page('/cloud/v3/gpu/baremetal/1/7/clusters?limit=1000', 'BaremetalClusterListSerializer')).count).toBe(8);
    const both = await page(
      '/cloud/v3/gpu/baremetal/1/7/clusters?limit=1000&managed_by=user&managed_by=k8s',
      'BaremetalClusterListSerializer',
    );
    expect(both.count).toBe(12);
    const refused = await fetch(`${base}/cloud/v3/gpu/baremetal/1/7/clusters?managed_by=robot`, {
      headers: { authorization: `APIKey ${fake.apiKey}` },
    });
    expect(refused.status).toBe(422);
  });

  it('serves generated volumes (fake-api --volumes) by index, before those put on the same list', async () => {
    // Seven volumes over regions 8 and 9 of project 1, made from the four images spreadTriples deals there: region 8
    // holds volumes 1, 3, 5, 7, made from its images 1 and 3 in turn; every third volume of a region is unattached.
    for (const pair of spreadVolumes(7, 4, { projects: [1], regions: [8, 9] }))
      fake.generateConsumers(VOLUMES, pair.projectId, pair.regionId, pair.volumes);
    const putLast = sampleVolume({ projectId: 1, regionId: 8, id: uuid(900), name: 'put' }, null);
    fake.putConsumer(VOLUMES, 1, 8, putLast);
    const volumes = async (query: string) => {
      const response = await fetch(`${base}/cloud/v1/volumes/1/8?${query}`, { headers: { authorization: `APIKey ${fake.apiKey}` } });
      const body = (await response.json()) as { count: number; results: Array<Record<string, unknown>> };
      expect(contractProblems(body, schemas.VolumeCollectionSerializer!, schemas)).toEqual([]);
      return { count: body.count, consumers: body.results.map((v) => volumeConsumers(v, v.id as string)) };
    };
    const generated = (group: string, n: number) => `00000000-0000-4000-${group}-${n.toString().padStart(12, '0')}`;
    expect(await volumes('limit=2&offset=1')).toEqual({
      count: 5,
      consumers: [
        [{ imageId: sampleImageId(3), kind: 'instance', id: generated('a000', 3), name: 'instance-3' }],
        [{ imageId: sampleImageId(1), kind: 'volume', id: generated('9000', 5), name: 'volume-5' }],
      ],
    });
    expect(await volumes('offset=3')).toEqual({
      count: 5,
      consumers: [[{ imageId: sampleImageId(3), kind: 'instance', id: generated('a000', 7), name: 'instance-7' }], []],
    });
    expect((await volumes('limit=1&offset=4')).consumers).toEqual([[]]);
    expect((await page('/cloud/v1/volumes/1/9', 'VolumeCollectionSerializer')).count).toBe(3);
  });
});
