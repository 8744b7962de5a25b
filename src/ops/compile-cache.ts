// Node's cache of compiled code, on for every command: loading BullMQ, node-postgres and this
// package's own modules is most of what a short command (`status`) costs, and a cache of their
// compiled code takes about a tenth off it. Kept in the user's own cache directory, never a shared
// one such as /tmp, where another user could plant code that would then run as this one.
// NODE_COMPILE_CACHE, when set, wins; NODE_DISABLE_COMPILE_CACHE turns it off.
// A namespace import: on a Node.js without it the CLI still loads, to say which Node.js it needs (node-version.ts).
import * as nodeModule from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** $XDG_CACHE_HOME/gcore-image-sync/compiled, else ~/.cache/gcore-image-sync/compiled; undefined without a home. */
export function compileCacheDir(env: NodeJS.ProcessEnv, home: () => string): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'gcore-image-sync', 'compiled');
  try {
    return join(home(), '.cache', 'gcore-image-sync', 'compiled');
  } catch {
    return undefined;
  }
}

/** Turns the cache on; where it cannot be written Node goes on without it, as before. */
export function cacheCompiledCode(): void {
  const dir = compileCacheDir(process.env, homedir);
  if (dir !== undefined) nodeModule.enableCompileCache(dir);
}
