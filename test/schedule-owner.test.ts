// One configuration owns the targets and schedules: a `start` (or `schedule`,
// or `sync`) with another targets file refuses, naming the running owner,
// unless told to --take-over; a stale or stopped owner is replaced with a
// warning that names it; the same configuration from several processes is fine.
import { copyFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configHash } from '../src/schedule/schedule-owner.js';
import { openServices, type Services } from '../src/queues/services.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { runCli, startCli, type RunningCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, writeTargetsFile } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const CONTENT_A = `${QUIET_SCHEDULE}\ntargets: [{ project_id: 1, region_id: 1, image_ids: [a1, a2] }]\n`;
const CONTENT_B = `${QUIET_SCHEDULE}\ntargets: [{ project_id: 2, region_id: 2, image_ids: [b1] }]\n`;
const short = (content: string) => configHash(parseTargetsFile(content, 'x')).slice(0, 12);
const HOST = hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let env: TestEnv;
let services: Services;
let fileA: string;
let fileB: string;
const running: RunningCli[] = [];

function start(file: string, ...flags: string[]): RunningCli {
  const child = startCli(['start', ...flags], { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: 'http://127.0.0.1:9' });
  running.push(child);
  return child;
}

async function started(child: RunningCli): Promise<void> {
  await waitFor('start to reconcile', () => child.stdout().includes('"msg":"reconciled"'));
}

const run = (command: string[], file: string) => runCli(command, { ...env.env, TARGETS_FILE: file, GCORE_BASE_URL: 'http://127.0.0.1:9' });
const storedTargets = async () => (await services.sql`SELECT image_id FROM targets ORDER BY image_id`).map((r) => r.image_id);
const owner = async () => (await services.sql`SELECT targets_file, host, pid, command, target_count, heartbeat_at FROM schedule_owner`)[0];
const schedulers = async () => (await services.queues.schedule.getJobSchedulers(0, -1)).map((s) => s.key).sort();

beforeAll(async () => {
  env = await createTestEnv();
  services = await openServices(env.config());
  fileA = await writeTargetsFile(CONTENT_A);
  fileB = await writeTargetsFile(CONTENT_B);
});

afterEach(async () => {
  for (const child of running.splice(0)) expect((await child.stop()).code).toBe(0);
  await services.sql`DELETE FROM schedule_owner`;
});

afterAll(async () => {
  await services?.close();
  await env?.cleanup();
});

describe('schedule owner', () => {
  it('refuses another targets file while a start runs, naming it, and changes nothing; the same configuration is welcome', async () => {
    const a = start(fileA);
    await started(a);
    const before = { targets: await storedTargets(), schedulers: await schedulers(), owner: await owner() };
    expect(before.targets).toEqual(['a1', 'a2']);
    expect(before.owner).toMatchObject({
      targets_file: fileA,
      host: hostname(),
      pid: a.pid,
      command: 'start',
      target_count: 2,
      heartbeat_at: expect.any(Date),
    });
    const named =
      `${fileA} on ${HOST} \\(pid ${a.pid}, start, config ${short(CONTENT_A)}, 2 targets, since \\S+Z; last heartbeat \\d+ s ago\\); ` +
      `this file is config ${short(CONTENT_B)}\\. Stop that process or give it this file, or `;
    for (const command of ['start', 'schedule']) {
      const refused = await run([command], fileB);
      expect(refused.code, command).toBe(2);
      expect(refused.stderr, command).toMatch(
        new RegExp(
          `^gcore-image-sync ${command}: configuration error in ${fileB}: 1 problem\n  another configuration owns the targets and schedules: ${named}pass --take-over to replace them\n$`,
        ),
      );
    }
    const sync = await run(['sync'], fileB);
    expect(sync.code).toBe(2);
    expect(sync.stderr).toMatch(
      new RegExp(
        `another configuration owns the targets and schedules: ${named}run \`schedule --take-over\` with this file first to replace them\n$`,
      ),
    );
    // The running start's heartbeat may have beaten meanwhile (every 10 s; a busy machine makes this test slower): the rest is unchanged.
    expect({ targets: await storedTargets(), schedulers: await schedulers(), owner: await owner() }).toEqual({
      ...before,
      owner: { ...before.owner, heartbeat_at: expect.any(Date) },
    });

    // The same configuration, even from another path and process, is fine.
    const copyOfA = `${fileB}.copy-of-a.yaml`;
    await copyFile(fileA, copyOfA);
    expect(await run(['schedule'], copyOfA)).toMatchObject({
      code: 0,
      stderr: '2 targets in 1 schedule group(s): 0 added, 0 rescheduled, 0 removed; 0 stale scheduler(s) removed\n',
    });
    const second = start(copyOfA);
    await started(second);
    expect(second.stderr()).toBe('');
    expect(await owner()).toMatchObject({ targets_file: copyOfA, pid: second.pid });
    // Its clean stop releases the claim; the first process, still running, renews it at its next beat.
    running.splice(running.indexOf(second), 1);
    expect((await second.stop()).code).toBe(0);
    await waitFor('the first start to renew the claim', async () => (await owner())!.heartbeat_at !== null, 15_000);
    expect(await owner()).toMatchObject({ targets_file: fileA, pid: a.pid });
    expect(await storedTargets()).toEqual(['a1', 'a2']);
  }, 180_000);

  it('--take-over replaces a running owner, says whom it replaced, and the old owner says it lost them', async () => {
    const a = start(fileA);
    await started(a);
    const taken = await run(['schedule', '--take-over'], fileB);
    expect(taken.code).toBe(0);
    expect(taken.stderr).toMatch(
      new RegExp(
        `^taking over from a running configuration ${fileA} on ${HOST} \\(pid ${a.pid}, start, config ${short(CONTENT_A)}, 2 targets, since \\S+Z; last heartbeat \\d+ s ago\\)\n` +
          '1 targets in 1 schedule group\\(s\\): 1 added, 0 rescheduled, 2 removed; 0 stale scheduler\\(s\\) removed\n$',
      ),
    );
    expect(await storedTargets()).toEqual(['b1']);
    expect(await owner()).toMatchObject({ targets_file: fileB, command: 'schedule', target_count: 1, heartbeat_at: null });
    await waitFor(
      'the old owner to notice',
      () => a.stdout().includes('another configuration took over the targets and schedules'),
      15_000,
    );
    const lost = a
      .stdout()
      .split('\n')
      .find((line) => line.includes('took over'))!;
    expect(JSON.parse(lost)).toMatchObject({
      level: 50,
      msg:
        `another configuration took over the targets and schedules: ${fileB} on ${hostname()} (pid ${JSON.parse(lost).owner.pid}, schedule, ` +
        `config ${short(CONTENT_B)}, 1 targets, since ${new Date(JSON.parse(lost).owner.claimed_at).toISOString()}; no process running it); ` +
        'this process goes on working the queues; restart it with that targets file, or with --take-over',
    });
    // Its stop leaves the new owner's record alone.
    running.splice(0);
    expect((await a.stop()).code).toBe(0);
    expect(await owner()).toMatchObject({ targets_file: fileB, command: 'schedule' });
    expect(await storedTargets()).toEqual(['b1']);

    // start --take-over does the same from a start.
    const b = start(fileB);
    await started(b);
    const c = start(fileA, '--take-over');
    await started(c);
    expect(c.stderr()).toMatch(new RegExp(`^taking over from a running configuration ${fileB} on ${HOST} \\(pid ${b.pid}, start, `));
    expect(await storedTargets()).toEqual(['a1', 'a2']);
    expect(await owner()).toMatchObject({ targets_file: fileA, pid: c.pid, command: 'start' });
  }, 180_000);

  it('replaces a stale or stopped owner without --take-over, with a warning naming it; an edited file is only logged', async () => {
    const a = start(fileA);
    await started(a);
    running.splice(0);
    expect((await a.stop()).code).toBe(0);
    const stopped = await run(['schedule'], fileB);
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toMatch(
      new RegExp(
        `^replacing the targets and schedules of ${fileA} on ${HOST} \\(pid ${a.pid}, start, config ${short(CONTENT_A)}, 2 targets, since \\S+Z; no process running it\\)\n`,
      ),
    );
    expect(await storedTargets()).toEqual(['b1']);

    // A start that died without stopping (SIGKILL, a lost machine) stops renewing its heartbeat.
    await services.sql`UPDATE schedule_owner SET command = 'start', heartbeat_at = now() - interval '61 seconds'`;
    const stale = await run(['sync'], fileA);
    expect(stale.code).toBe(0);
    expect(stale.stderr).toMatch(
      new RegExp(
        `^replacing the targets and schedules of ${fileB} on ${HOST} \\(pid \\d+, start, config ${short(CONTENT_B)}, 1 targets, since \\S+Z; last heartbeat 6\\d s ago\\)\n`,
      ),
    );
    expect(await storedTargets()).toEqual(['a1', 'a2']);
    expect(await owner()).toMatchObject({ targets_file: fileA, command: 'sync', heartbeat_at: null });

    // Editing the file in place and applying it again is the usual way to change the targets: logged, not warned about.
    await writeFile(fileA, CONTENT_A.replace('a2', 'a3'));
    const edited = await run(['schedule'], fileA);
    expect(edited).toMatchObject({
      code: 0,
      stderr: '2 targets in 1 schedule group(s): 1 added, 0 rescheduled, 1 removed; 0 stale scheduler(s) removed\n',
    });
    expect(edited.stdout).toContain(`"level":30,`);
    expect(edited.stdout).toContain(`"msg":"replacing the targets and schedules of ${fileA} on ${hostname()} (pid `);
  }, 180_000);
});
