// A throwaway home for the embedded PostgreSQL, under os.tmpdir().
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * mkdtemp makes it mode 0700; as root the server runs as `postgres`, who must
 * pass through it (o+x, no reading). The product never loosens a directory it
 * did not make, so the test, which made it, does.
 */
export async function throwawayHome(prefix = 'gis-home-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o711);
  return dir;
}
