// Which deployments (databases) use a Redis key prefix. Workers mark their own
// identity every few seconds, and the identity of any foreign job they refuse;
// an entry lapses a short while after its last mark. More than one identity
// under a prefix means two deployments take each other's jobs: `status`,
// /readyz and the worker log say so before, or without, a job crossing over.
// Redis's own clock decides, so machines with skewed clocks still agree.
import type { Redis } from 'ioredis';

/** How long a mark lasts: a few missed heartbeats, so a stopped deployment drops out soon. */
export const MARK_TTL_MS = 30_000;

// KEYS[1] = the registry (member: identity, score: when its mark lapses, Redis ms);
// ARGV[1] = identity to mark, or '' only to read; ARGV[2] = mark TTL (ms).
// Returns the identities whose mark has not lapsed.
const MARK_AND_LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  local ttl = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
`;

/** The registry key, inside the prefix so it goes with the prefix's other keys. */
function registryKey(queuePrefix: string): string {
  return `${queuePrefix}:deployments`;
}

/** Marks `deployment` as using the prefix for the next MARK_TTL_MS; returns every identity marked now. */
export async function markDeployment(redis: Redis, queuePrefix: string, deployment: string): Promise<string[]> {
  return (await redis.eval(MARK_AND_LIST, 1, registryKey(queuePrefix), deployment, MARK_TTL_MS)) as string[];
}

/** The identities currently marked under the prefix. */
export async function liveDeployments(redis: Redis, queuePrefix: string): Promise<string[]> {
  return (await redis.eval(MARK_AND_LIST, 1, registryKey(queuePrefix), '', MARK_TTL_MS)) as string[];
}

/** What is wrong when deployments other than `own` use the prefix, in words an operator can act on; undefined when none do. */
export function sharingProblem(queuePrefix: string, own: string, live: string[]): string | undefined {
  const others = live.filter((id) => id !== own).sort();
  if (others.length === 0) return undefined;
  const who =
    others.length === 1 ? `another deployment (database ${others[0]}) uses` : `other deployments (databases ${others.join(', ')}) use`;
  return (
    `${who} this Redis and QUEUE_PREFIX "${queuePrefix}" too (this one is database ${own}): ` +
    "each hands the other's jobs back instead of doing them, which holds up both; " +
    'give each deployment its own QUEUE_PREFIX or Redis database'
  );
}

/** The sharing problem under the prefix now, as seen from deployment `own`. */
export async function deploymentProblem(redis: Redis, queuePrefix: string, own: string): Promise<string | undefined> {
  return sharingProblem(queuePrefix, own, await liveDeployments(redis, queuePrefix));
}
