// The queue store on Redis (REDIS_URL or REDIS_CLUSTER_NODES set): BullMQ's
// own backend, the request timeline and the deployment registry as Lua within
// one hash slot each, rejected keys as expiring keys. Which key is where is
// redis-keys.ts's to say. Redis's own clock decides wherever time is compared,
// so machines with skewed clocks still agree.
import { Worker, type Job } from 'bullmq';
import type { QueueBackend } from './backend.js';
import type { RedisClusterSettings } from '../config/config.js';
import { MARK_TTL_MS } from './deployment-registry.js';
import { ENTRY_TTL_MS, entryName, holdRecord, type KeyRejection } from './key-health.js';
import { openQueues } from './queue.js';
import { clusterWhere, connectRedis, connectRedisCluster, type RedisClient } from './redis-connection.js';
import { clusterKeys, singleNodeKeys, type TimelineKeys } from './redis-keys.js';
import type { RequestTimeline } from '../gcore/rate-limiter.js';

// KEYS[1] = next free slot (ms); KEYS[2] = the pause in force: how long the API asked for (ms, as
// the caller spelled it: "Infinity" too), expiring when the pause ends. ARGV[1] = slot width (ms),
// ARGV[2] = pause (ms), both 0 only to read; ARGV[3] = what the API asked for a pause;
// ARGV[4] = '1' to take a slot through a pause in force (else the pause is answered, nothing taken).
// Returns {wait before the caller's slot (a read: how far ahead the next free slot is),
// how much longer the pause in force lasts (0: none), what the API asked for it}.
const TAKE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local width = tonumber(ARGV[1])
local pause = tonumber(ARGV[2])
local paused = math.max(redis.call('PTTL', KEYS[2]), 0)
if pause > 0 then
  free = math.max(free, now + pause)
  redis.call('SET', KEYS[1], free, 'PX', math.ceil(free - now) + 1000)
  if pause >= paused then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', math.ceil(pause))
  end
  return {0, 0, ''}
end
local asked = ''
if paused > 0 then
  asked = redis.call('GET', KEYS[2]) or ''
end
if width == 0 or (paused > 0 and ARGV[4] ~= '1') then
  return {math.max(0, free - now), paused, asked}
end
local slot = math.max(free, now)
local nextFree = slot + width
redis.call('SET', KEYS[1], nextFree, 'PX', math.ceil(nextFree - now) + 1000)
return {slot - now, paused, asked}
`;

function redisTimeline(redis: RedisClient, keys: TimelineKeys): RequestTimeline {
  const call = async (width: number, pause: number, asked: number, throughPause: boolean) => {
    const [wait, paused, askedText] = (await redis.eval(
      TAKE_SLOT,
      2,
      keys.next,
      keys.pause,
      width,
      pause,
      String(asked),
      throughPause ? '1' : '0',
    )) as [number, number, string];
    return { waitMs: Number(wait), pause: paused > 0 ? { remainingMs: Number(paused), askedMs: Number(askedText) } : undefined };
  };
  return {
    // Every command goes down one connection in order, so a take leaves when it is made.
    take: async (slotMs, throughPause) => {
      const askedAt = performance.now();
      return { ...(await call(slotMs, 0, 0, throughPause)), askedAt };
    },
    pause: async (pauseMs, askedMs) => void (await call(0, pauseMs, askedMs, false)),
    aheadMs: async () => Math.round((await call(0, 0, 0, false)).waitMs),
  };
}

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

/**
 * Every key matching `pattern`, once: on a cluster each master holds only its own slots' keys, so
 * each is scanned (a node that has just turned replica may answer with its new master's keys too).
 */
async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of 'nodes' in redis ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return [...new Set(keys)];
}

/** The connection, the key layout and how messages name the store, for one Redis (a URL) or a cluster. */
async function openRedisStore(target: string | RedisClusterSettings, queuePrefix: string) {
  if (typeof target === 'string')
    return {
      kind: 'redis' as const,
      redis: await connectRedis(target),
      keys: singleNodeKeys(queuePrefix),
      where: `this Redis and QUEUE_PREFIX "${queuePrefix}"`,
    };
  return {
    kind: 'redis-cluster' as const,
    redis: await connectRedisCluster(target),
    keys: clusterKeys(queuePrefix),
    where: `the Redis Cluster at ${clusterWhere(target)} and QUEUE_PREFIX "${queuePrefix}"`,
  };
}

/** The queue store on one Redis (`target` its URL) or on a Redis Cluster. */
export async function openRedisBackend(
  target: string | RedisClusterSettings,
  queuePrefix: string,
  deployment: string,
): Promise<QueueBackend> {
  const { kind, redis, keys, where } = await openRedisStore(target, queuePrefix);
  const queues = openQueues((account) => ({ connection: redis, prefix: keys.queuePrefix(account) }), undefined, deployment);
  const rejectionKey = (rejection: KeyRejection) => keys.keyRejection(entryName(rejection));
  const markAndList = async (identity: string) => (await redis.eval(MARK_AND_LIST, 1, keys.deployments, identity, MARK_TTL_MS)) as string[];
  return {
    kind,
    where,
    queues,
    worker: (queue, processor, settings) =>
      new Worker(queue.name, processor, { ...settings, connection: redis, prefix: queue.opts.prefix }),
    timeline: (account) => redisTimeline(redis, keys.timeline(account)),
    markDeployment: (identity) => markAndList(identity),
    liveDeployments: () => markAndList(''),
    holdKeyRejection: (rejection, onError) =>
      holdRecord(
        () => redis.set(rejectionKey(rejection), JSON.stringify(rejection), 'PX', ENTRY_TTL_MS),
        () => redis.del(rejectionKey(rejection)),
        onError,
      ),
    async keyRejections() {
      // One MGET: on a cluster the records share a hash tag, so one slot (redis-keys.ts).
      const found = await scanKeys(redis, keys.keyRejectionPattern);
      if (found.length === 0) return [];
      const values = await redis.mget(...found);
      return values
        .filter((value): value is string => value !== null)
        .map((value) => JSON.parse(value) as KeyRejection)
        .sort((a, b) => a.at.localeCompare(b.at));
    },
    // BullMQ's remove() succeeds on Redis for a job already removed, so it cannot tell the processes apart:
    // taking the job out of the failed set can, as exactly one ZREM of it returns 1.
    async takeFailed(job: Job) {
      const queue = queues.named(job.queueName)!;
      if ((await redis.zrem(queue.keys.failed!, job.id!)) !== 1) return false;
      await job.remove().catch(() => {});
      return true;
    },
    ping: async () => void (await redis.ping()),
    async close() {
      await queues.close();
      redis.disconnect();
    },
  };
}
