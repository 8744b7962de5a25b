// A rejected key, seen from other processes: a worker whose key the API
// rejected keeps an entry in Redis saying when and where, renewed while it
// lives and removed when it stops, so `status` (another process, on any
// machine) lists exactly the processes that take no jobs for that reason. Only
// the fact is kept, never the key or anything derived from it.
import type { Redis } from 'ioredis';

export interface KeyRejection {
  at: string;
  worker: string;
  hostname: string;
  pid: number;
}

/** An entry outlives a process killed without a clean stop by at most this long. */
const ENTRY_TTL_MS = 30_000;
const RENEW_MS = 10_000;

function entryKey(queuePrefix: string, rejection: KeyRejection): string {
  return `${queuePrefix}:key-rejected:${rejection.hostname}:${rejection.pid}:${rejection.worker}`;
}

export interface HeldRejection {
  release(): Promise<void>;
}

/** Records this worker's rejection until release (a clean stop) or until renewals stop (a crash). */
export function holdKeyRejection(
  redis: Redis,
  queuePrefix: string,
  rejection: KeyRejection,
  onError: (error: Error) => void,
): HeldRejection {
  const key = entryKey(queuePrefix, rejection);
  const renew = () => redis.set(key, JSON.stringify(rejection), 'PX', ENTRY_TTL_MS).catch(onError);
  void renew();
  const timer = setInterval(() => void renew(), RENEW_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await redis.del(key).catch(onError);
    },
  };
}

/** The workers whose key is rejected now, oldest rejection first. */
export async function keyRejections(redis: Redis, queuePrefix: string): Promise<KeyRejection[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${queuePrefix}:key-rejected:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values
    .filter((value): value is string => value !== null)
    .map((value) => JSON.parse(value) as KeyRejection)
    .sort((a, b) => a.at.localeCompare(b.at));
}
