// What the fake's lists of image consumers (volumes, snapshots, GPU clusters;
// usage/consumer-lists.ts) take and give, as Gcore's contract has them: the
// cluster lists page 10 by default, the bare-metal one answers managed_by=user
// unless asked for more; and sample items shaped as VolumeSerializer,
// SnapshotSerializer and the cluster serializers.
import { GPU_BAREMETAL_CLUSTERS, GPU_VIRTUAL_CLUSTERS } from '../usage/consumer-lists.js';
import { QueryError, type ImagePayload } from './list-queries.js';

/** The page size a consumer list answers with when the request gives no limit. */
export function consumerDefaultLimit(endpoint: string): number {
  return endpoint === GPU_BAREMETAL_CLUSTERS.endpoint || endpoint === GPU_VIRTUAL_CLUSTERS.endpoint ? 10 : 1000;
}

const MANAGED_BY = ['user', 'k8s'];

/** Which items a consumer list's query keeps: the bare-metal clusters of the managers asked (`user` when none is). */
export function consumerFilter(endpoint: string, query: URLSearchParams): ((item: ImagePayload) => boolean) | undefined {
  if (endpoint !== GPU_BAREMETAL_CLUSTERS.endpoint) return undefined;
  const asked = query.getAll('managed_by');
  const bad = asked.find((value) => !MANAGED_BY.includes(value));
  if (bad !== undefined) throw new QueryError(`managed_by: must be one of ${MANAGED_BY.join(', ')} (got ${JSON.stringify(bad)})`);
  const managers = asked.length > 0 ? asked : ['user'];
  return (item) => managers.includes(item.managed_by as string);
}

const AT = '2026-01-01T00:00:00+0000';

/** Where a volume or snapshot is, and what it is called. */
interface Placed {
  projectId: number;
  regionId: number;
  id: string;
  name: string;
}

/** The fields a volume and a snapshot share: their place, size, times and tags. */
function placed(where: Placed): ImagePayload {
  return {
    id: where.id,
    name: where.name,
    project_id: where.projectId,
    region_id: where.regionId,
    region: 'Luxembourg-2',
    size: 10,
    created_at: AT,
    updated_at: AT,
    tags: [],
  };
}

/** A volume made from `imageId` (null: of unknown origin, no volume_image_metadata), attached to `instances`. */
export function sampleVolume(
  where: Placed,
  imageId: string | null,
  instances: Array<{ serverId: string; name: string | null }> = [],
): ImagePayload {
  return {
    ...placed(where),
    status: instances.length > 0 ? 'in-use' : 'available',
    volume_type: 'standard',
    bootable: imageId !== null,
    is_root_volume: instances.length > 0,
    attachments: instances.map((i, n) => ({
      attachment_id: `${where.id}-a${n}`,
      volume_id: where.id,
      server_id: i.serverId,
      instance_name: i.name,
      device: '/dev/vda',
      attached_at: AT,
    })),
    volume_image_metadata: imageId === null ? null : { image_id: imageId, image_name: 'from-image', disk_format: 'raw' },
  };
}

export function sampleSnapshot(where: Placed, volumeId: string): ImagePayload {
  return {
    ...placed(where),
    description: null,
    status: 'available',
    volume_id: volumeId,
    creator_task_id: '00000000-0000-4000-8000-00000000aaaa',
    task_id: null,
  };
}

/** The fields both kinds of GPU cluster have: one server, no pending change, settings without volumes. */
function cluster(id: string, name: string, flavor: string): ImagePayload & { servers_settings: ImagePayload } {
  return {
    id,
    name,
    status: 'active',
    flavor,
    tags: [],
    servers_count: 1,
    servers_ids: [],
    has_pending_changes: false,
    created_at: AT,
    updated_at: AT,
    servers_settings: { interfaces: [], security_groups: [], ssh_key_name: null, user_data: null, file_shares: [] },
  };
}

/** A bare-metal GPU cluster built from `imageId`, managed by `managedBy`. */
export function sampleBaremetalCluster(id: string, name: string, imageId: string, managedBy: 'user' | 'k8s' = 'user'): ImagePayload {
  return { ...cluster(id, name, 'bm3-ai-1xlarge-h100-80-8'), image_id: imageId, managed_by: managedBy };
}

/** A virtual GPU cluster whose servers boot from volumes made from `imageId`. */
export function sampleVirtualCluster(id: string, name: string, imageId: string): ImagePayload {
  const base = cluster(id, name, 'g3-ai-32-192-1500-l40s-48-1');
  const boot = {
    name: 'boot-volume',
    size: 20,
    type: 'ssd_hiiops',
    image_id: imageId,
    boot_index: 0,
    delete_on_termination: true,
    tags: [],
  };
  return { ...base, servers_settings: { ...base.servers_settings, volumes: [boot] } };
}
