// Whether an image, as the API answers it, is one a discovery scope's filters
// would list. Used to take in at once an image the audit log says was created:
// the scope's next listing stays the authority (one it does not return gets a
// confirming GET and leaves the scope, as any other).
import type { DiscoverFilters, ScopeDefinition } from './scope.js';
import type { Triple } from './interfaces.js';

type Payload = Record<string, unknown>;

/** The image's tags as key -> value (tags_v2, or tags as older answers name them). */
function tagsOf(image: Payload): Map<string, unknown> {
  const list = Array.isArray(image.tags_v2) ? image.tags_v2 : Array.isArray(image.tags) ? image.tags : [];
  return new Map(
    (list as unknown[])
      .filter((tag): tag is { key: unknown; value: unknown } => typeof tag === 'object' && tag !== null)
      .map((tag) => [String(tag.key), tag.value]),
  );
}

const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : undefined);

/** The API's filters, as Gcore documents them: name a case-insensitive substring, the others equal values. */
export function matchesFilters(image: Payload, filters: DiscoverFilters): boolean {
  const tags = tagsOf(image);
  return (
    (image.is_baremetal !== true || filters.baremetal) &&
    filters.visibility.includes(image.visibility as never) &&
    (filters.tagKey ?? []).every((key) => tags.has(key)) &&
    Object.entries(filters.tagKeyValue ?? {}).every(([key, value]) => tags.get(key) === value) &&
    (filters.name === undefined || lower(image.name)?.includes(filters.name.toLowerCase()) === true) &&
    (filters.osDistro === undefined || lower(image.os_distro) === filters.osDistro.toLowerCase()) &&
    (filters.osVersion === undefined || lower(image.os_version) === filters.osVersion.toLowerCase()) &&
    (filters.architecture === undefined || image.architecture === filters.architecture)
  );
}

/** Whether the scope lists the image's project and region (every project, or every region, covers any). */
export function coversTriple(scope: ScopeDefinition, { projectId, regionId }: Triple): boolean {
  return (scope.projects === 'all' || scope.projects.includes(projectId)) && (scope.regions === 'all' || scope.regions.includes(regionId));
}
