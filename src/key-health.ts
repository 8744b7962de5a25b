// A rejected key, seen from other processes: a worker whose key the API
// rejected keeps a record in the queue store (backend.ts) saying when and
// where, renewed while it lives and removed when it stops, so `status` (another
// process, on any machine) lists exactly the processes that take no jobs for
// that reason. Only the fact is kept, never the key or anything derived from it.

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

/** Writes a record now and every RENEW_MS (each write lasting ENTRY_TTL_MS) until released. */
export function holdRecord(write: () => Promise<unknown>, remove: () => Promise<unknown>, onError: (error: Error) => void): HeldRejection {
  const renew = () => write().catch(onError);
  void renew();
  const timer = setInterval(() => void renew(), RENEW_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await remove().catch(onError);
    },
  };
}
