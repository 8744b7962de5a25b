// The one definition of an ordinary image's fields (the ordinary kind's field
// table, image-kinds.ts): their JSON type in Gcore's answer, whether they may
// be null or absent, and the `images` column that holds them. The payload
// schema, the ImageSnapshot type and the write path's column lists come from
// the kinds' tables; test/image-definition.test.ts checks schema.ts, the
// migrated tables and the reporting views against this one.

/** How a field travels in JSON, and so how it is validated and which Postgres type holds it. */
export type FieldKind = 'string' | 'integer' | 'number' | 'boolean' | 'datetime';

export interface FieldDefinition {
  kind: FieldKind;
  /** Null or absent in an answer (absent and null are the same value). */
  nullable: boolean;
  /** The column of `images`; null for `id` (the triple's image_id) and for a field kept only in the version's state. */
  column: string | null;
}

const required = (kind: FieldKind, column: string | null): FieldDefinition => ({ kind, nullable: false, column });
const optional = (kind: FieldKind, column: string): FieldDefinition => ({ kind, nullable: true, column });

// Gcore's contract (ImageSerializer) marks every field required; older answers
// omit the nullable ones, so only fields the API has always sent are required here.
export const IMAGE_FIELDS = {
  id: { kind: 'string', nullable: false, column: null },
  name: required('string', 'name'),
  region: required('string', 'region'),
  status: required('string', 'status'),
  visibility: required('string', 'visibility'),
  os_distro: required('string', 'os_distro'),
  os_version: required('string', 'os_version'),
  os_type: required('string', 'os_type'),
  disk_format: required('string', 'disk_format'),
  min_disk: required('integer', 'min_disk'),
  min_ram: required('integer', 'min_ram'),
  // The payload's project and region are the image's owner, which differs from the requested triple for public images.
  project_id: required('integer', 'owner_project_id'),
  region_id: required('integer', 'image_region_id'),
  created_at: required('datetime', 'created_at'),
  updated_at: required('datetime', 'updated_at'),
  size: optional('integer', 'size'),
  architecture: optional('string', 'architecture'),
  is_baremetal: optional('boolean', 'is_baremetal'),
  creator_task_id: optional('string', 'creator_task_id'),
  task_id: optional('string', 'task_id'),
  description: optional('string', 'description'),
  display_order: optional('integer', 'display_order'),
  gpu_driver: optional('string', 'gpu_driver'),
  gpu_driver_type: optional('string', 'gpu_driver_type'),
  gpu_driver_version: optional('string', 'gpu_driver_version'),
  hw_firmware_type: optional('string', 'hw_firmware_type'),
  hw_machine_type: optional('string', 'hw_machine_type'),
  ssh_key: optional('string', 'ssh_key'),
  currency_code: optional('string', 'currency_code'),
  price_per_hour: optional('number', 'price_per_hour'),
  price_per_month: optional('number', 'price_per_month'),
  price_status: optional('string', 'price_status'),
} as const satisfies Record<string, FieldDefinition>;

/**
 * A GPU image's fields (GpuImageSerializer, the v3 GPU virtual and bare-metal
 * image endpoints), as the contract marks them: no project_id, region_id or
 * region (the triple comes from the path), os_* nullable, and
 * cuda_toolkit_version, which no other kind has, in a column of its own (so
 * reports, and a reporting role, read it typed). Every other field shares the
 * ordinary field's column.
 */
export const GPU_IMAGE_FIELDS = {
  id: IMAGE_FIELDS.id,
  name: IMAGE_FIELDS.name,
  status: IMAGE_FIELDS.status,
  visibility: IMAGE_FIELDS.visibility,
  disk_format: IMAGE_FIELDS.disk_format,
  min_disk: IMAGE_FIELDS.min_disk,
  min_ram: IMAGE_FIELDS.min_ram,
  created_at: IMAGE_FIELDS.created_at,
  updated_at: IMAGE_FIELDS.updated_at,
  cuda_toolkit_version: optional('string', 'cuda_toolkit_version'),
  size: IMAGE_FIELDS.size,
  architecture: IMAGE_FIELDS.architecture,
  os_distro: optional('string', 'os_distro'),
  os_version: optional('string', 'os_version'),
  os_type: optional('string', 'os_type'),
  gpu_driver: IMAGE_FIELDS.gpu_driver,
  gpu_driver_type: IMAGE_FIELDS.gpu_driver_type,
  gpu_driver_version: IMAGE_FIELDS.gpu_driver_version,
  hw_firmware_type: IMAGE_FIELDS.hw_firmware_type,
  ssh_key: IMAGE_FIELDS.ssh_key,
  task_id: IMAGE_FIELDS.task_id,
} as const satisfies Record<string, FieldDefinition>;

export type ImageField = keyof typeof IMAGE_FIELDS;

/** The Postgres type of each kind; integers are bigint because the contract sets no bound. */
export const PG_TYPES: Record<FieldKind, string> = {
  string: 'text',
  integer: 'bigint',
  number: 'numeric',
  boolean: 'boolean',
  datetime: 'timestamptz',
};

type JsType<K extends FieldKind> = K extends 'string' | 'datetime' ? string : K extends 'boolean' ? boolean : number;
type FieldValue<F extends ImageField> =
  JsType<(typeof IMAGE_FIELDS)[F]['kind']> | ((typeof IMAGE_FIELDS)[F]['nullable'] extends true ? null : never);

/** The typed fields of a validated image. */
export type ImageFields = { [F in ImageField]: FieldValue<F> };

/** The fields that have a column of their own, in table order. */
export const IMAGE_COLUMNS = (Object.entries(IMAGE_FIELDS) as Array<[ImageField, FieldDefinition]>)
  .filter((entry): entry is [ImageField, FieldDefinition & { column: string }] => entry[1].column !== null)
  .map(([field, definition]) => ({
    field,
    column: definition.column,
    kind: definition.kind,
    pgType: PG_TYPES[definition.kind],
    nullable: definition.nullable,
  }));

/** A state as stored in history: a JSON object of the snapshot's shape, read back from Postgres. */
export type ImageState = Record<string, unknown>;
