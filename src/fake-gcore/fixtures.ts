// Sample images shaped like the real API's answers (see ../shared/reference),
// and the projects and regions that hold them.
import type { Triple } from '../interfaces.js';
import { sampleVolume } from './consumers.js';
import type { ImagePayload, ProjectInput, RegionInput } from './list-queries.js';
import type { GeneratedItems } from './lists.js';

/** The sample triple Gcore's own SDK tests use. */
export const SAMPLE_TRIPLE: Triple = { projectId: 1, regionId: 7, imageId: '8cab6f28-09ca-4201-b3f7-23c7893f4bd6' };

/** Ids for generated images: deterministic, UUID-shaped. */
export function sampleImageId(n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${hex}`;
}

/** A complete image for `triple`, as the API would answer it. */
export function sampleImage(triple: Triple, overrides: ImagePayload = {}): ImagePayload {
  return {
    id: triple.imageId,
    name: `ubuntu-22.04-x64-${triple.imageId.slice(-4)}`,
    region: 'Luxembourg-2',
    region_id: triple.regionId,
    project_id: triple.projectId,
    status: 'active',
    visibility: 'private',
    os_distro: 'ubuntu',
    os_version: '22.04',
    os_type: 'linux',
    disk_format: 'qcow2',
    min_disk: 5,
    min_ram: 1024,
    size: 2361393152,
    architecture: 'x86_64',
    is_baremetal: false,
    creator_task_id: 'b10dd116-07f5-4225-abb7-f42da5cb78fb',
    task_id: null,
    description: null,
    display_order: null,
    gpu_driver: null,
    gpu_driver_type: null,
    gpu_driver_version: null,
    hw_firmware_type: 'uefi',
    hw_machine_type: 'q35',
    ssh_key: 'allow',
    created_at: '2024-05-05T14:51:26.570866',
    updated_at: '2024-05-06T09:12:00Z',
    tags: [
      { key: 'team', value: 'platform', read_only: false },
      { key: 'os', value: 'ubuntu', read_only: true },
    ],
    ...overrides,
  };
}

/**
 * A GPU image for `triple`, as the v3 GPU image endpoints (virtual or
 * bare-metal) answer it: exactly GpuImageSerializer's fields, so no
 * project_id, region_id or region.
 */
export function sampleGpuImage(triple: Triple, overrides: ImagePayload = {}): ImagePayload {
  return {
    id: triple.imageId,
    name: `ubuntu-22.04-x64-cuda-${triple.imageId.slice(-4)}`,
    status: 'active',
    visibility: 'private',
    os_distro: 'ubuntu',
    os_version: '22.04',
    os_type: 'linux',
    disk_format: 'raw',
    min_disk: 40,
    min_ram: 0,
    size: 21474836480,
    architecture: 'x86_64',
    cuda_toolkit_version: '13.0.2',
    gpu_driver: 'nvidia',
    gpu_driver_type: 'open',
    gpu_driver_version: '570.148.08',
    hw_firmware_type: 'uefi',
    ssh_key: 'allow',
    task_id: null,
    created_at: '2024-05-05T14:51:26.570866',
    updated_at: '2024-05-06T09:12:00Z',
    tags: [{ key: 'team', value: 'ml', read_only: false }],
    ...overrides,
  };
}

/** The images `fake-api` serves by default: the SDK's sample triple and a few more. */
export function demoImages(): Array<[Triple, ImagePayload]> {
  const triples: Triple[] = [
    SAMPLE_TRIPLE,
    { projectId: 1, regionId: 7, imageId: sampleImageId(1) },
    { projectId: 1, regionId: 7, imageId: sampleImageId(2) },
    { projectId: 1, regionId: 76, imageId: sampleImageId(3) },
    { projectId: 2, regionId: 7, imageId: sampleImageId(4) },
  ];
  return triples.map((triple, n) => [
    triple,
    sampleImage(
      triple,
      n === 3
        ? { architecture: 'aarch64', os_distro: 'debian', os_version: '12', name: 'debian-12-arm64', tags_v2: [], tags: undefined }
        : n === 4
          ? { gpu_driver: 'nvidia', gpu_driver_type: 'open', gpu_driver_version: '570.148.08', name: 'ubuntu-gpu-570' }
          : {},
    ),
  ]);
}

/** The projects and regions that hold the demo images, for listing them (`project_id: all`). */
export function demoProjects(): ProjectInput[] {
  return [
    { id: 1, name: 'default' },
    { id: 2, name: 'gpu' },
  ];
}

export function demoRegions(): RegionInput[] {
  return [
    { id: 7, display_name: 'Luxembourg-2' },
    { id: 76, display_name: 'Frankfurt' },
  ];
}

export interface SpreadOptions {
  /** Default [1, 2]. */
  projects?: number[];
  /** Default [1, 2, 3]. */
  regions?: number[];
}

/**
 * sampleImage with what the contract's ImageSerializer also requires: prices
 * (null, as without include_prices) and the tags under the contract's name,
 * `tags_v2`; so a list of these passes a contract check. `overrides` win.
 */
export function contractImage(triple: Triple, overrides: ImagePayload = {}): ImagePayload {
  const { tags, ...image } = sampleImage(triple, overrides);
  return { tags_v2: tags, currency_code: null, price_per_hour: null, price_per_month: null, price_status: null, ...image };
}

/** What the n-th image (from 1) of its project and region is: every 10th bare-metal, the 5th of every 20 public, the 3rd of every 25 shared. */
function spreadKind(n: number): ImagePayload {
  if (n % 10 === 0) return { is_baremetal: true };
  if (n % 20 === 5) return { visibility: 'public' };
  if (n % 25 === 3) return { visibility: 'shared' };
  return {};
}

function spreadPairs({ projects = [1, 2], regions = [1, 2, 3] }: SpreadOptions): Array<Omit<Triple, 'imageId'>> {
  return projects.flatMap((projectId) => regions.map((regionId) => ({ projectId, regionId })));
}

/** The triples of spreadImages: ids sampleImageId(1..N), dealt round-robin over every project and region pair. */
export function spreadTriples(count: number, options: SpreadOptions = {}): Triple[] {
  const pairs = spreadPairs(options);
  return Array.from({ length: count }, (_, n) => ({ ...pairs[n % pairs.length]!, imageId: sampleImageId(n + 1) }));
}

/**
 * N generated images over the triples of spreadTriples, contract-complete.
 * Kinds go by an image's place in its project and region, not by N, so each
 * pair gets its share (see spreadKind): 10 % bare-metal (named `bm-...`),
 * 5 % public, 4 % shared.
 */
export function spreadImages(count: number, options: SpreadOptions = {}): Array<[Triple, ImagePayload]> {
  const pairs = spreadPairs(options).length;
  return spreadTriples(count, options).map((triple, n) => {
    const kind = spreadKind(Math.floor(n / pairs) + 1);
    const image = contractImage(triple, kind);
    if (kind.is_baremetal) image.name = `bm-${String(image.name)}`;
    return [triple, image];
  });
}

/** UUID-shaped ids for generated volumes and the instances they attach to, apart from the images'. */
const generatedId = (group: string, n: number) => `00000000-0000-4000-${group}-${n.toString(16).padStart(12, '0')}`;

/**
 * `count` volumes dealt round-robin over the project and region pairs as spreadTriples deals `images`
 * images, each pair's made from its own images in turn; two of every three attached to an instance of
 * their own, the third unattached (where a pair has no image, of unknown origin). Made as pages ask for them.
 */
export function spreadVolumes(
  count: number,
  images: number,
  options: SpreadOptions = {},
): Array<{ projectId: number; regionId: number; volumes: GeneratedItems }> {
  const pairs = spreadPairs(options);
  const share = (total: number, p: number) => Math.floor(total / pairs.length) + (p < total % pairs.length ? 1 : 0);
  return pairs.map(({ projectId, regionId }, p) => {
    const pairImages = share(images, p);
    const item = (j: number): ImagePayload => {
      const n = j * pairs.length + p + 1;
      const imageId = pairImages === 0 ? null : sampleImageId((j % pairImages) * pairs.length + p + 1);
      const instances = j % 3 === 2 ? [] : [{ serverId: generatedId('a000', n), name: `instance-${n}` }];
      return sampleVolume({ projectId, regionId, id: generatedId('9000', n), name: `volume-${n}` }, imageId, instances);
    };
    return { projectId, regionId, volumes: { count: share(count, p), item } };
  });
}

const range = (count: number) => Array.from({ length: count }, (_, n) => n + 1);

/** Spread options for `count` projects and `count` regions, numbered from 1. */
export function spreadOver(projects: number, regions: number): Required<SpreadOptions> {
  return { projects: range(projects), regions: range(regions) };
}

const PROJECT_NAMES = ['default', 'staging'];
const REGION_NAMES = ['Luxembourg-2', 'Frankfurt', 'Amsterdam'];

/** Projects 1..count (spreadImages' defaults: 1 and 2), and after them a deleted one that holds no images (listed only with include_deleted). */
export function fixtureProjects(count = 2): ProjectInput[] {
  return [
    ...range(count).map((id) => ({ id, name: PROJECT_NAMES[id - 1] ?? `project-${id}` })),
    { id: count + 1, name: 'retired', deleted_at: '2025-06-30T12:00:00' },
  ];
}

/** Regions 1..count (spreadImages' defaults: 1 to 3), all with bare metal, and after them an inactive one that holds no images. */
export function fixtureRegions(count = 3): RegionInput[] {
  return [
    ...range(count).map((id) => ({ id, display_name: REGION_NAMES[id - 1] ?? `region-${id}`, has_baremetal: true })),
    { id: count + 1, display_name: 'Closing', state: 'INACTIVE' },
  ];
}
