// A private RabbitMQ node on spare ports, for tests that stop and restart a
// broker without disturbing the shared one on 5672. It runs the installed
// rabbitmq-server with everything of its own under a temporary directory: node
// name, ports, data, logs, pid file, Erlang cookie (in its own HOME), an empty
// plugin list (no management plugin to start and no port of its) and a config
// file of its own, since the machine's (/etc/rabbitmq) names the shared node
// and its port. It runs as whoever runs the tests (root too): the scripts are
// called directly, not through the Debian wrappers that switch to the
// rabbitmq user, who could not write the directory.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { sparePort, waitFor } from './throwaway.js';

const run = promisify(execFile);

/** Debian's real scripts; elsewhere (the generic build) the ones on PATH are the real ones. */
const SCRIPTS = '/usr/lib/rabbitmq/bin';
const script = (name: string) => (existsSync(join(SCRIPTS, name)) ? join(SCRIPTS, name) : name);

/** A start takes 5 to 6 s on a quiet 2-core machine; one whose cores are busy may take several times that. */
const START_TIMEOUT_MS = 180_000;
/** rabbitmqctl stop waits for the node's process to end; a stop takes 2 to 3 s on a quiet machine. */
const STOP_TIMEOUT_MS = 120_000;

export interface RabbitNode {
  /** The Erlang node name, for rabbitmqctl -n. */
  nodename: string;
  port: number;
  /** The guest account's URL (guest may connect from localhost). */
  url: string;
  /** Runs rabbitmqctl against this node (its cookie and environment) and returns what it printed. */
  ctl(...args: string[]): Promise<string>;
  /** Takes the broker down (rabbitmqctl stop); its data stays for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same ports with the data it had: queues, exchanges, bindings and users are there. */
  start(): Promise<void>;
  /** Stops it if it runs and deletes its directory. */
  remove(): Promise<void>;
}

/** Starts a node and resolves once it accepts AMQP connections. */
export async function startRabbitNode(): Promise<RabbitNode> {
  const dir = await mkdtemp(join(tmpdir(), 'gis-rabbit-'));
  const [port, distPort] = [await sparePort(), await sparePort()];
  const nodename = `gis-${randomBytes(4).toString('hex')}@localhost`;
  const home = join(dir, 'home');
  await mkdir(home);
  // rabbitmqctl proves itself to the node with the cookie in HOME; Erlang refuses a cookie file others may read.
  await writeFile(join(home, '.erlang.cookie'), randomBytes(16).toString('hex').toUpperCase(), { mode: 0o400 });
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(join(dir, 'rabbitmq.conf'), '# this node is configured by its environment (test/support/rabbit-node.ts)\n');
  await writeFile(join(dir, 'rabbitmq-env.conf'), '');
  const pidFile = join(dir, 'rabbit.pid');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: nodename,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    // The distribution port, too, only on loopback.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONFIG_FILES: join(dir, 'conf.d'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PLUGINS_EXPAND_DIR: join(dir, 'plugins-expand'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: pidFile,
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const consoleLog = join(dir, 'console.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const ctl = async (...args: string[]) =>
    (await run(script('rabbitmqctl'), ['-n', nodename, ...args], { env, timeout: STOP_TIMEOUT_MS })).stdout;

  const start = async () => {
    const out = openSync(consoleLog, 'a');
    // Its own process group, so that remove() can end the script and the Erlang VM under it together.
    const started = spawn(script('rabbitmq-server'), [], { env, cwd: dir, detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child = started;
    let gone = false;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    void exited.then(() => (gone = true));
    try {
      await waitFor(
        `the RabbitMQ node ${nodename} to accept connections on port ${port}`,
        async () => {
          if (gone) throw new Error('exited');
          const probe = await connect(url, { timeout: 5000 });
          await probe.close();
          return true;
        },
        START_TIMEOUT_MS,
      );
    } catch (error) {
      const tail = (await readFile(consoleLog, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
      throw new Error(`${(error as Error).message}${gone ? ' (it exited)' : ''}; its console said:\n${tail}`);
    }
    if (gone) throw new Error(`the RabbitMQ node ${nodename} exited after it started; see ${consoleLog}`);
  };

  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // With the pid file, rabbitmqctl returns once the node's process has ended, so the port is free for start().
    await ctl('stop', pidFile);
    await exited;
  };

  await start();
  return {
    nodename,
    port,
    url,
    ctl,
    stop,
    start,
    async remove() {
      await stop().catch(() => {
        // rabbitmqctl could not stop it: the whole group goes.
        if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
      });
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
