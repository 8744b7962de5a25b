// Where every key the project keeps on Redis lives: the one place that names
// them. On one Redis the names are those of every earlier release, so a
// deployment that upgrades keeps its queued jobs, schedulers and timelines. On
// a Redis Cluster every script and multi-key command must stay within one hash
// slot, so keys are grouped by hash tag ("{...}": only that part is hashed):
// - an account's refresh and list queues (BullMQ's prefix, as BullMQ documents
//   for a cluster) and its request timeline share the account's tag, so the
//   timeline's script and each queue's scripts each touch one slot, and
//   different accounts land on different slots, spread over the masters;
// - the schedule queue, the deployment registry and the rejected-key records
//   share the deployment-wide tag, so reading every record is one slot's MGET.
import { apiPauseKey, rateLimitKey } from '../gcore/rate-limiter.js';

/** The two keys of an account's request timeline, which its script reads and writes together. */
export interface TimelineKeys {
  /** The next free slot (ms, Redis's clock). */
  next: string;
  /** The pause in force after a 429, expiring with it. */
  pause: string;
}

export interface RedisKeys {
  /** BullMQ's prefix for an account's refresh and list queues, or, for no account, the schedule queue's. */
  queuePrefix(account: string | undefined): string;
  timeline(account: string): TimelineKeys;
  /** The sorted set of deployments using these queues (deployment-registry.ts). */
  readonly deployments: string;
  /** The record of one worker's rejected key (key-health.ts's entry name). */
  keyRejection(entry: string): string;
  /** A SCAN pattern matching every rejected-key record. */
  readonly keyRejectionPattern: string;
}

/** The names on one Redis: QUEUE_PREFIX, then what each key holds, exactly as earlier releases wrote them. */
export function singleNodeKeys(queuePrefix: string): RedisKeys {
  return {
    queuePrefix: () => queuePrefix,
    timeline: (account) => ({ next: rateLimitKey(queuePrefix, account), pause: apiPauseKey(queuePrefix, account) }),
    deployments: `${queuePrefix}:deployments`,
    keyRejection: (entry) => `${queuePrefix}:key-rejected:${entry}`,
    keyRejectionPattern: `${queuePrefix}:key-rejected:*`,
  };
}

/** The hash tag of an account's queues and timeline on a cluster. */
function accountTag(queuePrefix: string, account: string): string {
  return `{${queuePrefix}:${account}}`;
}

/** The names on a Redis Cluster: every key opens with a hash tag, the account's or the deployment-wide one. */
export function clusterKeys(queuePrefix: string): RedisKeys {
  const shared = `{${queuePrefix}}`;
  return {
    queuePrefix: (account) => (account === undefined ? shared : accountTag(queuePrefix, account)),
    timeline: (account) => ({
      next: `${accountTag(queuePrefix, account)}:api-rate`,
      pause: `${accountTag(queuePrefix, account)}:api-pause`,
    }),
    deployments: `${shared}:deployments`,
    keyRejection: (entry) => `${shared}:key-rejected:${entry}`,
    keyRejectionPattern: `${shared}:key-rejected:*`,
  };
}
