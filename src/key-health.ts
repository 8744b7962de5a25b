// A rejected key, seen from other processes: the worker that got the 401
// records when and where in Redis, so `status` (another process) can say so;
// the first answer the API accepts from any worker clears it. Only the fact is
// kept, never the key or anything derived from it.
import type { Redis } from 'ioredis';

export interface KeyRejection {
  at: string;
  worker: string;
  hostname: string;
  pid: number;
}

function keyHealthKey(queuePrefix: string): string {
  return `${queuePrefix}:key-rejected`;
}

export async function markKeyRejected(redis: Redis, queuePrefix: string, rejection: KeyRejection): Promise<void> {
  await redis.set(keyHealthKey(queuePrefix), JSON.stringify(rejection));
}

export async function clearKeyRejected(redis: Redis, queuePrefix: string): Promise<void> {
  await redis.del(keyHealthKey(queuePrefix));
}

export async function keyRejection(redis: Redis, queuePrefix: string): Promise<KeyRejection | null> {
  const text = await redis.get(keyHealthKey(queuePrefix));
  return text === null ? null : (JSON.parse(text) as KeyRejection);
}

/** An answer that shows the API accepted the key: a success, or a 404 for an image it looked up. */
export function keyAccepted(status: string): boolean {
  return /^2\d\d$/.test(status) || status === '404';
}
