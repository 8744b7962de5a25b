// A rejected key, seen from other processes: a worker whose key the API
// rejected keeps a record in the queue store (backend.ts) saying when and
// where, renewed while it lives and removed when it stops, so `status` (another
// process, on any machine) lists exactly the processes that take no jobs for
// that reason. Only the fact is kept, never the key or anything derived from it.
import { every } from '../ops/periodic.js';

export interface KeyRejection {
  /** The account whose key was rejected (its name only). */
  account: string;
  at: string;
  worker: string;
  hostname: string;
  pid: number;
}

export interface HeldRejection {
  release(): Promise<void>;
}

/** A record outlives a process killed without a clean stop by at most this long. */
export const ENTRY_TTL_MS = 30_000;
const RENEW_MS = 10_000;

/** What names one worker's record for one account in a store. */
export function entryName(rejection: KeyRejection): string {
  return `${rejection.hostname}:${rejection.pid}:${rejection.worker}:${rejection.account}`;
}

/**
 * Writes a record now and every RENEW_MS (each write lasting ENTRY_TTL_MS)
 * until released. The release removes it without waiting for a write in
 * flight, as it always has: a store away would hold the stop up, and a write
 * that lands after the removal lasts ENTRY_TTL_MS at most.
 */
export function holdRecord(write: () => Promise<unknown>, remove: () => Promise<unknown>, onError: (error: Error) => void): HeldRejection {
  const renewals = every(RENEW_MS, write, { now: true, onError });
  return {
    async release() {
      void renewals.stop();
      await remove().catch(onError);
    },
  };
}
