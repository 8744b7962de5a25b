// The list endpoints that say who uses an image, as Gcore's contract has them
// (/work/shared/reference/gcore-cloud-api-usage-and-push.yaml, contract/): volumes,
// snapshots, and the virtual and bare-metal GPU clusters of one project and
// region, and what each result says about an image's consumers. Pure: the
// usage listing (usage-listing.ts) fetches the pages.

/** What uses an image: a stored name, never renamed (image_usage_history.consumer_kind). */
type ConsumerKind = 'instance' | 'volume' | 'gpu_cluster' | 'snapshot';

/** One consumer of one image of the listed project and region. */
export interface Consumer {
  imageId: string;
  kind: ConsumerKind;
  id: string;
  name: string | null;
}

export interface ConsumerList {
  /** How listing requests, the fake API and messages name it (distinct from every kind's image lists). */
  endpoint: string;
  path: string;
  /**
   * What every page sends besides limit and offset. The bare-metal cluster list answers only
   * `managed_by=user` unless asked for both; Managed Kubernetes clusters use images too.
   */
  query: Array<[string, string]>;
}

export const VOLUMES: ConsumerList = { endpoint: 'volumes', path: '/cloud/v1/volumes/{project_id}/{region_id}', query: [] };
export const SNAPSHOTS: ConsumerList = { endpoint: 'snapshots', path: '/cloud/v1/snapshots/{project_id}/{region_id}', query: [] };
export const GPU_VIRTUAL_CLUSTERS: ConsumerList = {
  endpoint: 'gpu_virtual_clusters',
  path: '/cloud/v3/gpu/virtual/{project_id}/{region_id}/clusters',
  query: [],
};
export const GPU_BAREMETAL_CLUSTERS: ConsumerList = {
  endpoint: 'gpu_baremetal_clusters',
  path: '/cloud/v3/gpu/baremetal/{project_id}/{region_id}/clusters',
  query: [
    ['managed_by', 'user'],
    ['managed_by', 'k8s'],
  ],
};

/** Every list a usage listing reads, in the order it reads them (snapshots after the volumes they name). */
export const CONSUMER_LISTS: readonly ConsumerList[] = [VOLUMES, GPU_VIRTUAL_CLUSTERS, GPU_BAREMETAL_CLUSTERS, SNAPSHOTS];

export function consumerList(endpoint: string): ConsumerList | undefined {
  return CONSUMER_LISTS.find((list) => list.endpoint === endpoint);
}

type Item = Record<string, unknown>;

/** A non-empty string, else undefined: what the contract leaves nullable or free is absent when it is not one. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const asItems = (value: unknown): Item[] =>
  Array.isArray(value) ? value.filter((v): v is Item => typeof v === 'object' && v !== null && !Array.isArray(v)) : [];

/**
 * The image a volume was made from: `volume_image_metadata` is a free map of strings, so a volume
 * without a string `image_id` there is of unknown origin, not invalid.
 */
export function volumeImage(volume: Item): string | undefined {
  const metadata = volume.volume_image_metadata;
  return typeof metadata === 'object' && metadata !== null ? text((metadata as Item).image_id) : undefined;
}

/** A volume made from an image: the instances its attachments name, or, attached to none, the volume itself. */
export function volumeConsumers(volume: Item, id: string): Consumer[] {
  const imageId = volumeImage(volume);
  if (imageId === undefined) return [];
  const instances = asItems(volume.attachments).flatMap((a): Consumer[] => {
    const server = text(a.server_id);
    return server === undefined ? [] : [{ imageId, kind: 'instance', id: server, name: text(a.instance_name) ?? null }];
  });
  return instances.length > 0 ? instances : [{ imageId, kind: 'volume', id, name: text(volume.name) ?? null }];
}

/** A GPU cluster: a bare-metal one names its image; a virtual one's images are its servers' volumes'. */
export function clusterConsumers(cluster: Item, id: string): Consumer[] {
  const name = text(cluster.name) ?? null;
  const settings = cluster.servers_settings;
  const volumes = typeof settings === 'object' && settings !== null ? asItems((settings as Item).volumes) : [];
  const images = new Set([text(cluster.image_id), ...volumes.map((v) => text(v.image_id))]);
  return [...images].flatMap((imageId): Consumer[] => (imageId === undefined ? [] : [{ imageId, kind: 'gpu_cluster', id, name }]));
}

/** A snapshot of a volume made from an image; `imageOfVolume` is what the same listing's volumes said. */
export function snapshotConsumers(snapshot: Item, id: string, imageOfVolume: ReadonlyMap<string, string>): Consumer[] {
  const volume = text(snapshot.volume_id);
  const imageId = volume === undefined ? undefined : imageOfVolume.get(volume);
  return imageId === undefined ? [] : [{ imageId, kind: 'snapshot', id, name: text(snapshot.name) ?? null }];
}
