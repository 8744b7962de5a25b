import { randomUUID } from 'node:crypto';
import { loadConfig } from '../config/config.js';
import { openStore } from '../queues/services.js';
import { takeSnapshot } from '../sql/takeSnapshot.js';
import type { CommandContext } from './context.js';

/** Takes an audit snapshot now (the scheduled one runs nightly in the workers). */
export async function snapshotCommand({ print }: CommandContext): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config, 1, 'read');
  const { sql } = store;
  try {
    const snapshot = await takeSnapshot(sql, `manual:${randomUUID()}`);
    print(
      `snapshot ${snapshot.id}: ${snapshot.imageCount} images at ${new Date(snapshot.takenAt).toISOString()}, digest ${snapshot.digest}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
