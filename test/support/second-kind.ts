// A second kind of image, defined only here: its own endpoints (a v3-style GET
// and one list that takes no filters) and its own fields. It shows that a kind
// is a value: defined, it is validated, stored, diffed, merged and deleted like
// the ordinary kind, with no change to src/ and no migration. Its fields either
// share an `images` column with another kind's field of the same name
// (cuda_toolkit_version, the GPU kinds' column), or have none (accelerator_count:
// kept in the version's state). It carries every field `images` holds NOT NULL for
// ordinary images; the GPU kinds, which do not, needed migration 0027 (see CONTRIBUTING.md).
import { sampleImage } from '../../src/fake-gcore/fixtures.js';
import type { ImagePayload } from '../../src/fake-gcore/list-queries.js';
import type { FieldDefinition } from '../../src/images/image-fields.js';
import { IMAGE_FIELDS } from '../../src/images/image-fields.js';
import { defineKind } from '../../src/images/image-kinds.js';
import type { Triple } from '../../src/interfaces.js';

const SHARED = [
  'id',
  'name',
  'region',
  'status',
  'visibility',
  'os_distro',
  'os_version',
  'os_type',
  'disk_format',
  'min_disk',
  'min_ram',
  'project_id',
  'region_id',
  'created_at',
  'updated_at',
  'gpu_driver',
] as const;

export const ACCELERATED = defineKind({
  name: 'test_accelerated',
  fields: {
    ...Object.fromEntries(SHARED.map((field) => [field, IMAGE_FIELDS[field] as FieldDefinition])),
    cuda_toolkit_version: { kind: 'string', nullable: true, column: 'cuda_toolkit_version' },
    accelerator_count: { kind: 'integer', nullable: false, column: null },
  },
  // More specific than the ordinary kind: an image both return is of this kind, refreshed by its GET.
  precedence: 1,
  getPath: '/cloud/v9/accelerated/{project_id}/{region_id}/images/{image_id}',
  lists: [{ endpoint: 'accelerated_images', path: '/cloud/v9/accelerated/{project_id}/{region_id}/images', filters: false }],
});

/** An answer of the second kind's endpoints for `triple`: the shared fields as sampleImage has them, and its own. */
export function acceleratedImage(triple: Triple, overrides: ImagePayload = {}): ImagePayload {
  const ordinary = sampleImage(triple);
  return {
    ...Object.fromEntries(SHARED.map((field) => [field, ordinary[field]])),
    tags: ordinary.tags,
    cuda_toolkit_version: '12.4',
    accelerator_count: 8,
    ...overrides,
  };
}
