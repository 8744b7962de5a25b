// Whether an image, as validation read it, is one a discovery scope's filters
// would list. Used to take in at once an image the audit log says was created:
// the scope's next listing stays the authority (one it does not return gets a
// confirming GET and leaves the scope, as any other).
import type { ImageSnapshot, Triple } from './interfaces.js';
import type { DiscoverFilters, ScopeDefinition } from './scope.js';

const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : undefined);

/** The API's filters, as Gcore documents them: name a case-insensitive substring, the others equal values. */
export function matchesFilters(image: ImageSnapshot, filters: DiscoverFilters): boolean {
  const { tags } = image;
  return (
    (image.is_baremetal !== true || filters.baremetal) &&
    filters.visibility.includes(image.visibility as never) &&
    (filters.tagKey ?? []).every((key) => Object.hasOwn(tags, key)) &&
    Object.entries(filters.tagKeyValue ?? {}).every(([key, value]) => Object.hasOwn(tags, key) && tags[key]!.value === value) &&
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
