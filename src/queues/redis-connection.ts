// Connections to the queue store on Redis: one Redis (REDIS_URL) or a Redis
// Cluster (REDIS_CLUSTER_NODES). Either is proved to answer at start, or the
// command fails fast saying where; once running, the client queues commands
// through reconnects and failovers, as BullMQ needs.
import { Cluster, Redis } from 'ioredis';
import type { RedisClusterSettings } from '../config/config.js';
import { redactUrl } from '../config/config.js';
import { firstAnswer, ServiceUnavailableError } from '../errors.js';

export type RedisClient = Redis | Cluster;

/** Where a cluster is, for messages: its seeds (its password is kept apart, so never in them). */
export function clusterWhere(settings: RedisClusterSettings): string {
  return settings.seeds.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
}

/**
 * Redirections a command may follow, and the wait before each while a shard
 * fails over or the cluster is down: together about ten seconds, longer than a
 * failover takes, so that commands wait one out instead of failing.
 */
const FAILOVER_WAIT = { maxRedirections: 50, retryDelayMs: 200 };

function newCluster(settings: RedisClusterSettings): Cluster {
  return new Cluster(settings.seeds, {
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRedirections: FAILOVER_WAIT.maxRedirections,
    retryDelayOnFailover: FAILOVER_WAIT.retryDelayMs,
    retryDelayOnClusterDown: FAILOVER_WAIT.retryDelayMs,
    retryDelayOnTryAgain: FAILOVER_WAIT.retryDelayMs,
    // With TLS a node's certificate names its host: connect by the name the cluster gives, not an address looked up.
    ...(settings.tls ? { dnsLookup: (address: string, done: (error: null, address: string) => void) => done(null, address) } : {}),
    redisOptions: {
      username: settings.username,
      password: settings.password,
      tls: settings.tls ? {} : undefined,
      maxRetriesPerRequest: null,
      connectTimeout: 5000,
    },
  });
}

/** Connects `client`, proves it answers, or closes it and fails saying where. */
async function proveAnswers<C extends RedisClient>(client: C, where: string): Promise<C> {
  // ioredis reports "Connection is closed" on connect(); the socket error says why.
  let socketError: Error | undefined;
  client.on('error', (error: Error) => (socketError ??= error));
  // A cluster client reports a seed's socket error as a node's, and its own error says only that no seed answered.
  let nodeError: Error | undefined;
  client.on('node error', (error: Error) => (nodeError ??= error));
  try {
    await firstAnswer(client.connect().then(() => client.ping()));
  } catch (error) {
    client.disconnect();
    // disconnect() only half-closes: a server that connected and said nothing would hold the
    // socket, and with it the process, for disconnectTimeout longer.
    if (client instanceof Redis) client.stream?.destroy();
    const cause = socketError ?? error;
    throw new ServiceUnavailableError('Redis', where, nodeError ?? (cause as { lastNodeError?: Error }).lastNodeError ?? cause);
  }
  return client;
}

/** Opens a Redis connection for BullMQ and proves it answers, or fails fast saying where. */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: true, connectTimeout: 5000 });
  return proveAnswers(redis, redactUrl(url));
}

/** Opens a Redis Cluster client for BullMQ from its seeds and proves the cluster answers, or fails fast saying where. */
export async function connectRedisCluster(settings: RedisClusterSettings): Promise<Cluster> {
  return proveAnswers(newCluster(settings), `${clusterWhere(settings)} (REDIS_CLUSTER_NODES)`);
}
