// Where the data lives when DATABASE_URL is not set: the home, one place for
// every command whichever directory it runs from. The rule (resolveHome) is
// pure; locateHome feeds it this process's facts.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

export const HOME_VARIABLE = 'GCORE_IMAGE_SYNC_HOME';

/** The default as root: where a system service keeps its state (FHS), reachable by the server's own user. */
export const ROOT_HOME = '/var/lib/gcore-image-sync';

/** Where the home was before it stopped following the current directory; still used where it holds a database. */
const LEGACY_HOME = '.gcore-image-sync';

/** The rule in one line, for --help and errors. */
export const DEFAULT_HOME_RULE = `$XDG_DATA_HOME/gcore-image-sync when XDG_DATA_HOME is set, else ${ROOT_HOME} as root, else ~/.local/share/gcore-image-sync`;

export interface Home {
  /** Absolute. */
  dir: string;
  /** Why this directory, for people: which setting or default chose it. */
  why: string;
  /** Set for a legacy home: the default it would be moved to. */
  moveTo?: string;
}

export interface HomeFacts {
  env: Record<string, string | undefined>;
  uid: number | undefined;
  /** The user's home directory (os.homedir()). */
  userHome: string;
  cwd: string;
  /** Whether ./.gcore-image-sync in `cwd` holds a database. */
  legacyHasDatabase: boolean;
}

/**
 * The default home for this user: in XDG_DATA_HOME when it is set (a user's
 * explicit choice, root's too; a relative one is ignored, as the spec says),
 * else as root the system's, else the user's XDG default.
 */
function defaultHome({ env, uid, userHome }: Pick<HomeFacts, 'env' | 'uid' | 'userHome'>): Home {
  const xdg = env.XDG_DATA_HOME?.trim();
  if (xdg && isAbsolute(xdg)) return { dir: join(xdg, 'gcore-image-sync'), why: 'the default: $XDG_DATA_HOME/gcore-image-sync' };
  if (uid === 0) return { dir: ROOT_HOME, why: 'the default for root' };
  return { dir: join(userHome, '.local', 'share', 'gcore-image-sync'), why: 'the default: ~/.local/share/gcore-image-sync' };
}

/**
 * GCORE_IMAGE_SYNC_HOME when set (relative to the current directory); else a
 * database left in ./.gcore-image-sync by an older version, so it is not
 * orphaned (said at open, with how to move it); else the default.
 */
export function resolveHome(facts: HomeFacts): Home {
  const set = facts.env[HOME_VARIABLE]?.trim();
  if (set) return { dir: resolve(facts.cwd, set), why: `set by ${HOME_VARIABLE}` };
  const fallback = defaultHome(facts);
  if (facts.legacyHasDatabase) {
    return {
      dir: join(facts.cwd, LEGACY_HOME),
      why: `the database found in ./${LEGACY_HOME}, where older versions kept it`,
      moveTo: fallback.dir,
    };
  }
  return fallback;
}

/** Whether `home` holds a database (the embedded server's data directory, initialised). */
export function holdsDatabase(home: string): boolean {
  return existsSync(join(home, 'pgdata', 'PG_VERSION'));
}

/** This process's home, by resolveHome. */
export function locateHome(env: Record<string, string | undefined>): Home {
  const cwd = process.cwd();
  return resolveHome({
    env,
    uid: process.getuid?.(),
    userHome: homedir(),
    cwd,
    // Only looked at when the variable is unset: a set home never depends on the current directory.
    legacyHasDatabase: !env[HOME_VARIABLE]?.trim() && holdsDatabase(join(cwd, LEGACY_HOME)),
  });
}
