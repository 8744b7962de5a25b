// Where a scope's listing lists usage: one part per project and region, after
// its image parts, unless the scope says `usage: false`. A usage part is one
// listing_pages row whose job reads every consumer list of its project and
// region (usage-listing.ts), so the scope's listing, and its run, end only
// once its usage is recorded.
import type { DiscoverFilters } from '../config/scope.js';
import type { ListPart, ScopeRegion } from '../gcore/list-query.js';

/** The endpoint a usage part is filed under in listing_pages: no kind's list, so no image is read from it. */
export const USAGE_PART = 'usage';

export function usageParts(projects: number[], regions: ScopeRegion[], filters: DiscoverFilters): ListPart[] {
  if (filters.usage === false) return [];
  return projects.flatMap((projectId) => regions.map((region) => ({ projectId, regionId: region.id, endpoint: USAGE_PART, query: [] })));
}
