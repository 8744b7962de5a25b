// Sample images shaped like the real API's answers (see ../shared/reference).
import type { Triple } from '../interfaces.js';

export type ImagePayload = Record<string, unknown>;

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

/** N generated images in project 1, region 1, with ids sampleImageId(1..N). */
export function generatedImages(count: number): Array<[Triple, ImagePayload]> {
  return Array.from({ length: count }, (_, n) => {
    const triple = { projectId: 1, regionId: 1, imageId: sampleImageId(n + 1) };
    return [triple, sampleImage(triple)];
  });
}
