// Kinds of image. An image is identified by its triple (project_id, region_id,
// image_id) whatever its kind; the kind says which Gcore endpoints describe it
// and with which fields. A kind is a value: its name (stored in images.kind),
// its field table, the path of its single-image GET and its list endpoints.
// Defining one registers it, so a kind defined in a test is stored, diffed and
// merged like the built-in one without a migration: its fields either share a
// column of `images` with another kind's field of the same name, or have no
// column and live in the version's state (and `raw`).
import { GPU_IMAGE_FIELDS, IMAGE_FIELDS, type FieldDefinition, type ImageState } from './image-fields.js';

/** A list endpoint of a kind: `path` has {project_id} and {region_id}; `filters` when it takes a scope's filters as query parameters. */
export interface KindList {
  /** How listing_pages and the fake API name it (unique across kinds). */
  endpoint: string;
  path: string;
  filters: boolean;
  /** It lists bare-metal images: listed only where the scope (`baremetal`) and the region (`has_baremetal`) both want them. */
  baremetal?: boolean;
}

/**
 * Where a scope that names no kinds (`discover.kinds` absent) lists a kind:
 * in every region, or in the regions the regions list says have GPU capacity
 * (`has_ai_gpu`). Absent: only where a scope names it.
 */
type DefaultListing = 'every_region' | 'gpu_regions';

export interface ImageKind {
  /** Stored in images.kind; never renamed once stored. */
  name: string;
  /** The fields its endpoints answer with; `id` is the triple's image_id. */
  fields: Readonly<Record<string, FieldDefinition>>;
  /**
   * An image that several kinds' endpoints return is of the kind with the highest
   * precedence: the more specific one, whose GET refreshes it.
   */
  precedence: number;
  /** The single-image GET, with {project_id}, {region_id} and {image_id}. */
  getPath: string;
  lists: readonly KindList[];
  byDefault?: DefaultListing;
}

/** A kind definition does not fit the registered ones (a programming error, thrown at definition). */
export class KindDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KindDefinitionError';
  }
}

const registry = new Map<string, ImageKind>();

/** Who feeds each column of `images` so far: one field name and one JSON type, whatever the kind. */
function columnProblem(kind: ImageKind): string | undefined {
  const owners = new Map<string, { field: string; definition: FieldDefinition; kind: string }>();
  for (const other of registry.values()) {
    for (const [field, definition] of Object.entries(other.fields)) {
      if (definition.column !== null && !owners.has(definition.column))
        owners.set(definition.column, { field, definition, kind: other.name });
    }
  }
  for (const [field, definition] of Object.entries(kind.fields)) {
    const owner = definition.column === null ? undefined : owners.get(definition.column);
    if (owner && (owner.field !== field || owner.definition.kind !== definition.kind)) {
      return `field ${field} (${definition.kind}) would share column ${definition.column} with ${owner.kind}'s ${owner.field} (${owner.definition.kind})`;
    }
  }
  return undefined;
}

function definitionProblem(kind: ImageKind): string | undefined {
  if (registry.has(kind.name)) return `a kind named ${kind.name} is already defined`;
  const id = kind.fields.id;
  if (id?.kind !== 'string' || id.nullable || id.column !== null) return 'its field table needs id: a required string with no column';
  if (!kind.getPath.includes('{image_id}')) return 'its getPath has no {image_id}';
  // The tag list is read apart (image-payload.ts) and stored in image_tags: no kind's field may take its name.
  if (Object.hasOwn(kind.fields, 'tags') || Object.hasOwn(kind.fields, 'tags_v2')) return 'tags and tags_v2 are the tag list, not fields';
  const endpoints = new Set([...registry.values()].flatMap((other) => other.lists.map((list) => list.endpoint)));
  const taken = kind.lists.find((list) => endpoints.has(list.endpoint));
  if (taken) return `list endpoint ${taken.endpoint} belongs to another kind`;
  return columnProblem(kind);
}

/** Registers a kind; throws KindDefinitionError when it clashes with one already defined. */
export function defineKind(kind: ImageKind): ImageKind {
  const problem = definitionProblem(kind);
  if (problem) throw new KindDefinitionError(`kind ${kind.name}: ${problem}`);
  const frozen = Object.freeze({ ...kind, fields: Object.freeze({ ...kind.fields }), lists: Object.freeze([...kind.lists]) });
  registry.set(kind.name, frozen);
  return frozen;
}

/**
 * Images of /cloud/v1/images and /cloud/v1/bmimages: one kind, because both
 * lists answer with the same serializer, one GET (/cloud/v1/images/...) answers
 * for both, and `is_baremetal` already says which list an image is on.
 */
export const ORDINARY = defineKind({
  name: 'ordinary',
  fields: IMAGE_FIELDS,
  precedence: 0,
  getPath: '/cloud/v1/images/{project_id}/{region_id}/{image_id}',
  lists: [
    { endpoint: 'images', path: '/cloud/v1/images/{project_id}/{region_id}', filters: true },
    { endpoint: 'bmimages', path: '/cloud/v1/bmimages/{project_id}/{region_id}', filters: true, baremetal: true },
  ],
  byDefault: 'every_region',
});

/**
 * GPU images of Gcore's v3 GPU API (GpuImageSerializer): the images GPU
 * virtual clusters boot from. Their lists take no filters (the worker applies
 * the scope's). More specific than the ordinary kind: an image both lists
 * return is refreshed with the GPU GET. A scope naming no kinds lists them in
 * the regions with GPU capacity.
 */
export const GPU_VIRTUAL = defineKind({
  name: 'gpu_virtual',
  fields: GPU_IMAGE_FIELDS,
  precedence: 1,
  getPath: '/cloud/v3/gpu/virtual/{project_id}/{region_id}/images/{image_id}',
  lists: [{ endpoint: 'gpu_virtual_images', path: '/cloud/v3/gpu/virtual/{project_id}/{region_id}/images', filters: false }],
  byDefault: 'gpu_regions',
});

/** GPU bare-metal images: the same serializer and rules as GPU_VIRTUAL, from the bare-metal GPU endpoints; a bare-metal list. */
export const GPU_BAREMETAL = defineKind({
  name: 'gpu_baremetal',
  fields: GPU_IMAGE_FIELDS,
  precedence: 1,
  getPath: '/cloud/v3/gpu/baremetal/{project_id}/{region_id}/images/{image_id}',
  lists: [
    { endpoint: 'gpu_baremetal_images', path: '/cloud/v3/gpu/baremetal/{project_id}/{region_id}/images', filters: false, baremetal: true },
  ],
  byDefault: 'gpu_regions',
});

/** The kind stored under `name`; undefined for a name no definition in this process registered. */
export function kindNamed(name: string): ImageKind | undefined {
  return registry.get(name);
}

/** Why `name` names no kind defined in this process (a targets file's `kinds:`), or null. */
export function kindNameProblem(name: string): string | null {
  if (registry.has(name)) return null;
  return `${JSON.stringify(name)} is not a kind of image defined here (defined: ${[...registry.keys()].join(', ')})`;
}

/** The kind whose list endpoint is named `endpoint`: the kind an image on one of its pages is observed as. */
export function kindOfList(endpoint: string): ImageKind | undefined {
  return [...registry.values()].find((kind) => kind.lists.some((list) => list.endpoint === endpoint));
}

/** The list endpoint named `endpoint`, of whichever kind has it. */
export function kindList(endpoint: string): KindList | undefined {
  return kindOfList(endpoint)?.lists.find((list) => list.endpoint === endpoint);
}

export function imageKinds(): ImageKind[] {
  return [...registry.values()];
}

/** The kinds a scope that names none lists in a region, in the order they were defined. */
export function defaultKinds(region: { gpu: boolean }): ImageKind[] {
  return imageKinds().filter((kind) => kind.byDefault === 'every_region' || (kind.byDefault === 'gpu_regions' && region.gpu));
}

/** The kind an image is stored as after `observed` saw it: the stored one unless the observed one is more specific. */
export function resolvedKind(stored: string | null, observed: ImageKind): string {
  if (stored === null || stored === observed.name) return observed.name;
  const current = registry.get(stored);
  return current && current.precedence >= observed.precedence ? stored : observed.name;
}

/** Fields some other kind carries and `kind` does not: an answer of `kind` says nothing about them. */
export function fieldsOthersCarry(kind: ImageKind): Set<string> {
  const others = new Set<string>();
  for (const other of registry.values()) {
    if (other === kind) continue;
    for (const field of Object.keys(other.fields)) if (!Object.hasOwn(kind.fields, field)) others.add(field);
  }
  return others;
}

/**
 * The state an answer of `kind` leaves: the answer's own state, except for
 * fields only other kinds carry, which keep their stored values. So an image
 * that two endpoints return is one image, and neither nulls what only the
 * other says (no new version per run). Without a stored state the answer's
 * state is taken as it is.
 */
export function mergedState<S extends ImageState>(kind: ImageKind, stored: ImageState | null, observed: S): S {
  if (stored === null) return observed;
  const kept = [...fieldsOthersCarry(kind)].filter((field) => Object.hasOwn(stored, field));
  if (kept.length === 0) return observed;
  // Own properties throughout, so a field named __proto__ stays a field.
  return { ...observed, ...Object.fromEntries(kept.map((field) => [field, stored[field]])) };
}

/** The path of `template` with its placeholders filled, each value URL-encoded. */
export function fillPath(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new KindDefinitionError(`path ${template}: no value for {${name}}`);
    return encodeURIComponent(String(value));
  });
}

/** The columns of `images` that every registered kind's fields fill, each once, in field-table order. */
export function storedColumns(): Array<{ field: string; column: string; kind: FieldDefinition['kind'] }> {
  const columns = new Map<string, { field: string; column: string; kind: FieldDefinition['kind'] }>();
  for (const kind of registry.values()) {
    for (const [field, definition] of Object.entries(kind.fields)) {
      if (definition.column !== null && !columns.has(definition.column))
        columns.set(definition.column, { field, column: definition.column, kind: definition.kind });
    }
  }
  return [...columns.values()];
}
