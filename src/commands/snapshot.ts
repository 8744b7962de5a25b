import { randomUUID } from 'node:crypto';
import { loadConfig } from '../config.js';
import { connectPostgres } from '../db.js';
import { runMigrations } from '../migrate.js';
import { takeSnapshot } from '../sql/takeSnapshot.js';
import type { CommandContext } from './context.js';

/** Takes an audit snapshot now (the scheduled one runs nightly in the workers). */
export async function snapshotCommand({ print }: CommandContext): Promise<number> {
  const config = loadConfig();
  await runMigrations(config.databaseUrl);
  const sql = await connectPostgres(config.databaseUrl, { max: 1 });
  try {
    const snapshot = await takeSnapshot(sql, `manual:${randomUUID()}`);
    print(
      `snapshot ${snapshot.id}: ${snapshot.imageCount} images at ${new Date(snapshot.takenAt).toISOString()}, digest ${snapshot.digest}`,
    );
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
