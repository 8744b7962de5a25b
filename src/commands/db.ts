import { loadConfig, redactUrl } from '../config/config.js';
import { describeData, whenLost } from '../db/database.js';
import { writePassFile } from '../db/embedded-postgres.js';
import { openStore } from '../queues/services.js';
import { onShutdown } from '../ops/signals.js';
import type { CommandContext } from './context.js';

/**
 * Where the data lives and how to query it. For the embedded server: starts
 * it (or finds it running), prints where its data is and a psql command
 * whose password comes from a file, never a command line, and keeps it
 * running until stopped; with DATABASE_URL set, names that.
 */
export async function dbCommand({ logger, print }: CommandContext): Promise<number> {
  const config = loadConfig();
  // Said before anything is opened: where it looks, whatever happens next.
  if (config.databaseUrl === undefined) print(describeData(config));
  // Finds the data, never makes it: a home with none is said, and left as it was.
  const store = await openStore(config, 1, 'read');
  if (store.embeddedDataDir === undefined) {
    await store.close();
    print(`DATABASE_URL names the database: ${redactUrl(store.url)}`);
    return 0;
  }
  const passFile = await writePassFile(store.embeddedDataDir).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  const url = new URL(store.url);
  url.password = '';
  print(`query it while this runs: PGPASSFILE='${passFile}' psql '${url.toString()}'`);
  print('Ctrl-C stops it (unless another gcore-image-sync process still uses it)');
  // Room for the server's stop: a fast one (up to 10 s), then an immediate one when that fails.
  onShutdown(logger, 30_000, () => store.close(), 'with the embedded PostgreSQL (stopped unless another process uses it)');
  // Serves until stopped (onShutdown exits), or until the data is gone for good (its server is
  // stopped by then). Nothing else holds the process open meanwhile: signal listeners hold nothing,
  // a server that stops by itself (its files deleted) closes every socket that would, and the check
  // that finds the data gone is a periodic one, whose timer holds nothing. So this timer does: it
  // runs nothing, and is the one setInterval in src/ besides periodic.ts's (an interval, as a
  // single timer longer than 2^31 ms would fire at once, and this may serve for longer).
  const holdOpen = setInterval(() => {}, 2 ** 30);
  try {
    return await whenLost(store);
  } finally {
    clearInterval(holdOpen);
  }
}
