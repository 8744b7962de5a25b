// Where the keys are on Redis (redis-keys.ts), and the settings that choose a
// Redis Cluster: no Redis needed. redis-cluster.test.ts runs the layout on a
// real cluster.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { mixedStoresProblem } from '../src/queues/deployment-registry.js';
import { clusterKeys, singleNodeKeys } from '../src/queues/redis-keys.js';

describe('the keys on one Redis', () => {
  it('are the names of earlier releases, so an upgrade keeps the queued jobs, schedulers and timelines', () => {
    const keys = singleNodeKeys('gcore-image-sync');
    expect([keys.queuePrefix(undefined), keys.queuePrefix('default'), keys.queuePrefix('staging')]).toEqual([
      'gcore-image-sync',
      'gcore-image-sync',
      'gcore-image-sync',
    ]);
    expect(keys.timeline('default')).toEqual({
      next: 'gcore-image-sync:image-refresh:api-rate',
      pause: 'gcore-image-sync:image-refresh:api-pause',
    });
    expect(keys.timeline('staging')).toEqual({
      next: 'gcore-image-sync:image-refresh:api-rate:staging',
      pause: 'gcore-image-sync:image-refresh:api-pause:staging',
    });
    expect([keys.deployments, keys.keyRejection('host:1:w:prod'), keys.keyRejectionPattern]).toEqual([
      'gcore-image-sync:deployments',
      'gcore-image-sync:key-rejected:host:1:w:prod',
      'gcore-image-sync:key-rejected:*',
    ]);
  });
});

describe('the keys on a Redis Cluster', () => {
  it("open with the account's hash tag (its queues and timeline) or the deployment-wide one (the rest)", () => {
    const keys = clusterKeys('gcore-image-sync');
    expect([keys.queuePrefix(undefined), keys.queuePrefix('default'), keys.queuePrefix('staging')]).toEqual([
      '{gcore-image-sync}',
      '{gcore-image-sync:default}',
      '{gcore-image-sync:staging}',
    ]);
    expect(keys.timeline('staging')).toEqual({
      next: '{gcore-image-sync:staging}:api-rate',
      pause: '{gcore-image-sync:staging}:api-pause',
    });
    expect([keys.deployments, keys.keyRejection('host:1:w:prod'), keys.keyRejectionPattern]).toEqual([
      '{gcore-image-sync}:deployments',
      '{gcore-image-sync}:key-rejected:host:1:w:prod',
      '{gcore-image-sync}:key-rejected:*',
    ]);
  });
});

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
};

describe('REDIS_CLUSTER_NODES', () => {
  it('reads the seeds, the ACL user, the password and TLS', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: ' redis-a:7000, 10.0.0.2:7001,[::1]:7002 ',
      REDIS_CLUSTER_USERNAME: 'sync',
      REDIS_CLUSTER_PASSWORD: 'pw$secret',
      REDIS_CLUSTER_TLS: '1',
    });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisCluster).toEqual({
      seeds: [
        { host: 'redis-a', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'sync',
      password: 'pw$secret',
      tls: true,
    });
    expect(loadConfig({}).redisCluster).toBeUndefined();
  });

  it('refuses seeds that are not host:port, a cluster beside REDIS_URL, and a prefix holding a hash tag, never quoting the password', () => {
    expect(
      problemsOf({
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_CLUSTER_NODES: 'redis-a:7000,redis-b,redis-c:70000,',
        REDIS_CLUSTER_PASSWORD: 'pw$secret',
        REDIS_CLUSTER_TLS: 'yes',
        QUEUE_PREFIX: '{app}',
      }),
    ).toEqual([
      'REDIS_CLUSTER_TLS: must be 1 (on) or 0 (off) (got "yes")',
      'REDIS_CLUSTER_NODES: must be host:port seeds separated by commas (not "redis-b", "redis-c:70000", "")',
      'REDIS_CLUSTER_NODES: set together with REDIS_URL; set one (a Redis Cluster, or one Redis)',
      'QUEUE_PREFIX: must not hold "{" or "}" with REDIS_CLUSTER_NODES: the prefix becomes part of each key\'s hash tag',
    ]);
    expect(problemsOf({ REDIS_CLUSTER_PASSWORD: 'pw$secret', REDIS_CLUSTER_USERNAME: 'sync', REDIS_CLUSTER_TLS: '1' })).toEqual([
      'REDIS_CLUSTER_USERNAME, REDIS_CLUSTER_PASSWORD, REDIS_CLUSTER_TLS: set without REDIS_CLUSTER_NODES',
    ]);
  });
});

describe('workers of one deployment on one Redis and on a cluster', () => {
  it('are a split deployment, told which settings differ', () => {
    expect(mixedStoresProblem(['redis', 'redis-cluster'])).toBe(
      'the workers of this database use different queue stores (redis and redis-cluster): REDIS_URL and REDIS_CLUSTER_NODES differ between them, ' +
        "so each takes the other's queued refreshes for lost and queues them again; give every process of this deployment the same REDIS_URL or REDIS_CLUSTER_NODES",
    );
    expect(mixedStoresProblem(['redis-cluster'])).toBeUndefined();
  });
});
