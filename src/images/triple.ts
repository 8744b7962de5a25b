import type { Triple } from '../interfaces.js';

/** A triple as one string, `project/region/image`, for maps, locks and messages. */
export const tripleKey = ({ projectId, regionId, imageId }: Triple): string => `${projectId}/${regionId}/${imageId}`;
