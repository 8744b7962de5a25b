// A throwaway home for the embedded PostgreSQL, under os.tmpdir(), made as the demo makes its own.
import { makeThrowawayHome } from '../../src/db/throwaway-database.js';

export function throwawayHome(prefix = 'gis-home-'): Promise<string> {
  return makeThrowawayHome(prefix);
}
