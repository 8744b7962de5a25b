// A throwaway Redis Cluster on spare ports: three masters with a replica each,
// made the way an operator makes one (`redis-cli --cluster create`), for the
// tests of the queues on a cluster. Started and removed by the test itself.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { sparePort, waitFor } from './throwaway.js';

const run = promisify(execFile);

interface ClusterNode {
  port: number;
  child: ChildProcess;
  client: Redis;
}

export interface ThrowawayCluster {
  /** REDIS_CLUSTER_NODES for it: every node, as host:port. */
  seeds: string;
  /** The port of the master that serves `key` now, and of its replica. */
  shardOf(key: string): Promise<{ master: number; replica: number }>;
  /** CLUSTER KEYSLOT of `key`. */
  slotOf(key: string): Promise<number>;
  /** Every key on every master that starts with `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /**
   * A coordinated `CLUSTER FAILOVER` on the replica at `port`: resolves once it
   * has taken over its master's slots, which it does once it has every write.
   */
  failover(port: number): Promise<void>;
  /** Resolves once every node sees the same three shards of a master and a replica in sync. */
  settle(): Promise<void>;
  /** Errors of this kind (CROSSSLOT, MOVED, ...) the nodes have answered so far, summed (INFO errorstats). */
  errorCount(kind: string): Promise<number>;
  stop(): Promise<void>;
}

const NODES = 6;

function startNode(dir: string, port: number, busPort: number): ClusterNode {
  const child = spawn(
    'redis-server',
    [
      ...['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--dir', dir],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)],
      ...['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
      // A replica's first sync starts at once rather than after the default 5 s wait for others to join it.
      ...['--repl-diskless-sync-delay', '0'],
    ],
    { stdio: 'ignore' },
  );
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return { port, child, client };
}

/** Two ports for each node (its clients' and its cluster bus's), all different. */
async function sparePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await sparePort());
  return [...ports];
}

const info = async (node: ClusterNode, section: string) =>
  Object.fromEntries(
    (await node.client.info(section))
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );

/** The shards as `node` sees them: each slot range with the port of its master and of each replica. */
async function shardsSeenBy(node: ClusterNode): Promise<string> {
  const ranges = await node.client.cluster('SLOTS');
  return JSON.stringify(
    ranges.map(([from, to, ...serving]) => [from, to, ...serving.map(([, port]) => port)]).sort((a, b) => a[0]! - b[0]!),
  );
}

/**
 * Every node says the cluster is whole, and all see the same three shards of a
 * master and a replica, whose link to its master is up.
 */
async function settled(nodes: ClusterNode[]): Promise<boolean> {
  const views = new Set<string>();
  for (const node of nodes) {
    if (!String(await node.client.cluster('INFO')).includes('cluster_state:ok')) return false;
    const replication = await info(node, 'replication');
    if (replication.role === 'slave' && replication.master_link_status !== 'up') return false;
    views.add(await shardsSeenBy(node));
  }
  const [view] = views;
  return views.size === 1 && (JSON.parse(view!) as number[][]).filter((shard) => shard.length === 4).length === NODES / 2;
}

async function stopNodes(nodes: ClusterNode[], dir: string): Promise<void> {
  for (const node of nodes) {
    node.client.disconnect();
    if (node.child.exitCode === null && node.child.signalCode === null) {
      const exited = once(node.child, 'exit');
      node.child.kill('SIGKILL');
      await exited;
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** Makes the six nodes one cluster: the first three named become the masters, of slots 0-5460, 5461-10922 and 10923-16383. */
async function formCluster(nodes: ClusterNode[]): Promise<void> {
  await waitFor('the cluster nodes to answer', async () =>
    (await Promise.all(nodes.map((node) => node.client.ping()))).every((p) => p === 'PONG'),
  );
  const create = ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes'];
  // redis-cli waits for the nodes to meet without end: a node that cannot reach another's bus fails here.
  await run('redis-cli', create, { timeout: 60_000 });
  await waitFor('the cluster to settle', () => settled(nodes));
}

export async function throwawayRedisCluster(): Promise<ThrowawayCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gis-cluster-'));
  const ports = await sparePorts(NODES * 2);
  const nodes = Array.from({ length: NODES }, (_, n) => startNode(dir, ports[n]!, ports[NODES + n]!));
  const at = (port: number) => nodes.find((node) => node.port === port)!;
  await formCluster(nodes).catch(async (error: unknown) => {
    await stopNodes(nodes, dir);
    throw error;
  });
  const slotOf = async (key: string) => Number(await nodes[0]!.client.cluster('KEYSLOT', key));
  const shardOf = async (key: string) => {
    const slot = await slotOf(key);
    const ranges = await nodes[0]!.client.cluster('SLOTS');
    const [, , master, replica] = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return { master: master![1], replica: replica![1] };
  };
  return {
    seeds: nodes.map((node) => `127.0.0.1:${node.port}`).join(','),
    shardOf,
    slotOf,
    async keys(prefix) {
      const found: string[] = [];
      for (const node of nodes) {
        if ((await info(node, 'replication')).role !== 'master') continue;
        let cursor = '0';
        do {
          const [next, batch] = await node.client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
          cursor = next;
          found.push(...batch);
        } while (cursor !== '0');
      }
      return found.sort();
    },
    async failover(port) {
      await at(port).client.cluster('FAILOVER');
      await waitFor('the replica to take over', async () => (await info(at(port), 'replication')).role === 'master');
    },
    settle: () => waitFor('the cluster to settle', () => settled(nodes)),
    async errorCount(kind) {
      const counts = await Promise.all(
        nodes.map(async (node) => /count=(\d+)/.exec((await info(node, 'errorstats'))[`errorstat_${kind}`] ?? '')?.[1]),
      );
      return counts.reduce((sum, count) => sum + Number(count ?? 0), 0);
    },
    stop: () => stopNodes(nodes, dir),
  };
}
