// The queue store on Redis (REDIS_URL set): BullMQ's own backend, the request
// timeline and the deployment registry as Lua on single keys, rejected keys as
// expiring keys. Every key starts with QUEUE_PREFIX. Redis's own clock decides
// wherever time is compared, so machines with skewed clocks still agree.
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { QueueBackend } from './backend.js';
import { redactUrl } from '../config/config.js';
import { MARK_TTL_MS } from './deployment-registry.js';
import { firstAnswer, ServiceUnavailableError } from '../errors.js';
import { ENTRY_TTL_MS, entryName, holdRecord, type KeyRejection } from './key-health.js';
import { openQueues } from './queue.js';
import { apiPauseKey, rateLimitKey, type RequestTimeline } from '../gcore/rate-limiter.js';

/** Opens a Redis connection for BullMQ and proves it answers, or fails fast saying where. */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    lazyConnect: true,
    connectTimeout: 5000,
  });
  // ioredis reports "Connection is closed" on connect(); the socket error says why.
  let socketError: Error | undefined;
  redis.on('error', (error: Error) => (socketError ??= error));
  try {
    await firstAnswer(redis.connect().then(() => redis.ping()));
  } catch (error) {
    redis.disconnect();
    // disconnect() only half-closes: a server that connected and said nothing would hold the
    // socket, and with it the process, for disconnectTimeout longer.
    redis.stream?.destroy();
    throw new ServiceUnavailableError('Redis', redactUrl(url), socketError ?? error);
  }
  return redis;
}

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

function redisTimeline(redis: Redis, key: string, pauseKey: string): RequestTimeline {
  const call = async (width: number, pause: number, asked: number, throughPause: boolean) => {
    const [wait, paused, askedText] = (await redis.eval(
      TAKE_SLOT,
      2,
      key,
      pauseKey,
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

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

export async function openRedisBackend(url: string, queuePrefix: string, deployment: string): Promise<QueueBackend> {
  const redis = await connectRedis(url);
  const queues = openQueues({ connection: redis, prefix: queuePrefix }, undefined, deployment);
  const registry = `${queuePrefix}:deployments`;
  const rejectionKey = (rejection: KeyRejection) => `${queuePrefix}:key-rejected:${entryName(rejection)}`;
  const markAndList = async (identity: string) => (await redis.eval(MARK_AND_LIST, 1, registry, identity, MARK_TTL_MS)) as string[];
  return {
    kind: 'redis',
    where: `this Redis and QUEUE_PREFIX "${queuePrefix}"`,
    queues,
    worker: (name, processor, settings) => new Worker(name, processor, { ...settings, connection: redis, prefix: queuePrefix }),
    timeline: (account) => redisTimeline(redis, rateLimitKey(queuePrefix, account), apiPauseKey(queuePrefix, account)),
    markDeployment: (identity) => markAndList(identity),
    liveDeployments: () => markAndList(''),
    holdKeyRejection: (rejection, onError) =>
      holdRecord(
        () => redis.set(rejectionKey(rejection), JSON.stringify(rejection), 'PX', ENTRY_TTL_MS),
        () => redis.del(rejectionKey(rejection)),
        onError,
      ),
    async keyRejections() {
      const keys = await scanKeys(redis, `${queuePrefix}:key-rejected:*`);
      if (keys.length === 0) return [];
      const values = await redis.mget(...keys);
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
