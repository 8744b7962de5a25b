// Every number and time an operator gives (environment, targets file, flags)
// is range-checked where it enters: a bad one exits 2 naming the variable,
// path or flag, before anything reaches Postgres, Redis or a Date, and what
// was stored before stays as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMPLIED_ACCOUNT, withKeys } from '../src/config/accounts.js';
import { DEFAULTS, loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { parseIsoTime } from '../src/config/input-ranges.js';
import { parseTargets } from '../src/config/targets.js';
import { openServices, type Services } from '../src/queues/services.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { writeTargetsFile } from './support/pipeline.js';

function problemsOf(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const ONE_TARGET = 'targets: [{ project_id: 1, region_id: 2, image_ids: [x] }]';

let env: TestEnv;
let services: Services;

beforeAll(async () => {
  env = await createTestEnv();
  services = await openServices(env.config());
});

afterAll(async () => {
  await services?.close();
  await env?.cleanup();
});

describe('settings from the environment', () => {
  it('refuses a key pasted with its "APIKey " scheme, without quoting the key', () => {
    const implied = problemsOf(() => withKeys([IMPLIED_ACCOUNT], { GCORE_API_KEY: 'APIKey 1234$abcd' }, 'targets.yaml'));
    expect(implied).toEqual(['GCORE_API_KEY holds "APIKey " in front of the key: give the key alone (the Authorization header adds it)']);
    const staging = { name: 'staging', apiKeyEnv: 'STAGING_KEY' };
    const named = problemsOf(() => withKeys([staging], { STAGING_KEY: 'apikey 1234$abcd' }, 'targets.yaml'));
    expect(named).toEqual([
      'accounts.staging.api_key_env: STAGING_KEY holds "APIKey " in front of the key: give the key alone (the Authorization header adds it)',
    ]);
    expect([...implied, ...named].join('')).not.toContain('1234$abcd');
  });

  it('refuses negative, zero, fractional, exponent, hex, NaN and oversized numbers, naming each variable', () => {
    expect(
      problemsOf(() =>
        loadConfig({
          SYNC_RATE_LIMIT_PER_SECOND: '10001',
          SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '0',
          SYNC_CONCURRENCY: '0',
          SYNC_BATCH_SIZE: '1.5',
          SYNC_ATTEMPTS: '-1',
          SYNC_REQUEST_TIMEOUT_MS: '3000000000',
          SYNC_MAX_RESPONSE_BYTES: '1e21',
          SYNC_RETENTION_DAYS: 'NaN',
          SYNC_JOB_LOCK_MS: '0x10',
          SYNC_SHUTDOWN_TIMEOUT_MS: '99999999999999999999',
          HTTP_PORT: '65536',
          QUEUE_DASHBOARD: 'yes',
          AUDIT_LOG_POLL_SECONDS: '86401',
          LOG_LEVEL: 'verbose',
        }),
      ),
    ).toEqual([
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
      'SYNC_RATE_LIMIT_PER_SECOND: must be a whole number from 0 to 10000 (got "10001")',
      'SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: must be a whole number from 1 to 86400 (got "0")',
      'SYNC_CONCURRENCY: must be a whole number from 1 to 1000 (got "0")',
      'SYNC_BATCH_SIZE: must be a whole number from 1 to 1000 (got "1.5")',
      'SYNC_ATTEMPTS: must be a whole number from 1 to 20 (got "-1")',
      'SYNC_REQUEST_TIMEOUT_MS: must be a whole number from 100 to 600000 (got "3000000000")',
      'SYNC_MAX_RESPONSE_BYTES: must be a whole number from 1024 to 104857600 (got "1e21")',
      'SYNC_RETENTION_DAYS: must be a whole number from 1 to 36500 (got "NaN")',
      'SYNC_JOB_LOCK_MS: must be a whole number from 1000 to 3600000 (got "0x10")',
      'SYNC_SHUTDOWN_TIMEOUT_MS: must be a whole number from 0 to 3600000 (got "99999999999999999999")',
      'HTTP_PORT: must be a whole number from 1 to 65535 (got "65536")',
      'QUEUE_DASHBOARD: must be 1 (on) or 0 (off) (got "yes")',
      'AUDIT_LOG_POLL_SECONDS: must be a whole number from 0 to 86400 (got "86401")',
    ]);
  });

  it('takes both ends of every range, and blanks as the default', () => {
    const low = loadConfig({
      SYNC_RATE_LIMIT_PER_SECOND: '0',
      SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '1',
      SYNC_CONCURRENCY: '1',
      SYNC_BATCH_SIZE: '1',
      SYNC_ATTEMPTS: '1',
      SYNC_REQUEST_TIMEOUT_MS: '100',
      SYNC_MAX_RESPONSE_BYTES: '1024',
      SYNC_RETENTION_DAYS: '1',
      SYNC_JOB_LOCK_MS: '1000',
      SYNC_SHUTDOWN_TIMEOUT_MS: '0',
      HTTP_PORT: '1',
      AUDIT_LOG_POLL_SECONDS: '0',
    });
    expect([
      low.rateLimitPerSecond,
      low.rateLimitMaxWaitMs,
      low.concurrency,
      low.batchSize,
      low.attempts,
      low.requestTimeoutMs,
      low.maxResponseBytes,
      low.retentionDays,
      low.jobLockMs,
      low.shutdownTimeoutMs,
      low.httpPort,
      low.auditLogPollSeconds,
    ]).toEqual([0, 1000, 1, 1, 1, 100, 1024, 1, 1000, 0, 1, 0]);
    const high = loadConfig({
      SYNC_RATE_LIMIT_PER_SECOND: '10000',
      SYNC_RATE_LIMIT_MAX_WAIT_SECONDS: '86400',
      SYNC_CONCURRENCY: '1000',
      SYNC_BATCH_SIZE: '1000',
      SYNC_ATTEMPTS: '20',
      SYNC_REQUEST_TIMEOUT_MS: '600000',
      SYNC_MAX_RESPONSE_BYTES: '104857600',
      SYNC_RETENTION_DAYS: '36500',
      SYNC_JOB_LOCK_MS: '3600000',
      SYNC_SHUTDOWN_TIMEOUT_MS: '3600000',
      HTTP_PORT: '65535',
      QUEUE_DASHBOARD: '1',
      AUDIT_LOG_POLL_SECONDS: '86400',
    });
    expect([
      high.rateLimitPerSecond,
      high.rateLimitMaxWaitMs,
      high.concurrency,
      high.batchSize,
      high.attempts,
      high.requestTimeoutMs,
      high.maxResponseBytes,
      high.retentionDays,
      high.jobLockMs,
      high.shutdownTimeoutMs,
      high.httpPort,
      high.queueDashboard,
      high.auditLogPollSeconds,
    ]).toEqual([10000, 86_400_000, 1000, 1000, 20, 600000, 104857600, 36500, 3600000, 3600000, 65535, true, 86400]);
    const blank = loadConfig({ SYNC_CONCURRENCY: ' ', HTTP_PORT: '', QUEUE_DASHBOARD: '' });
    expect([blank.concurrency, blank.httpPort, blank.queueDashboard]).toEqual([DEFAULTS.concurrency, undefined, false]);
  });
});

describe('the targets file', () => {
  it('refuses ids beyond a Postgres integer, and intervals beyond 366 days, naming the path', () => {
    expect(
      problemsOf(() =>
        parseTargets(
          `schedule: { every: 99999999999d }
targets:
  - { project_id: 3000000000, region_id: 0, image_ids: [a] }
  - { project_id: -1, region_id: 1.5, image_ids: [b], schedule: { every: 367d } }
  - { project_id: 1e21, region_id: .nan, image_ids: [c], schedule: { cron: "" } }
  - { project_id: 2147483647, region_id: 1, image_ids: [d], schedule: { every: 366d } }
`,
          'targets.yaml',
        ),
      ),
    ).toEqual([
      'schedule: "99999999999d" is longer than the longest interval, 366d',
      'targets[0].project_id: must be a whole number from 1 to 2147483647 (got 3000000000)',
      'targets[0].region_id: must be a whole number from 1 to 2147483647 (got 0)',
      'targets[1].project_id: must be a whole number from 1 to 2147483647 (got -1)',
      'targets[1].region_id: must be a whole number from 1 to 2147483647 (got 1.5)',
      'targets[1].schedule: "367d" is longer than the longest interval, 366d',
      'targets[2].project_id: must be a whole number from 1 to 2147483647 (got 1e+21)',
      'targets[2].region_id: must be a whole number from 1 to 2147483647 (got NaN)',
      'targets[2].schedule: "" is not a cron pattern: it is empty',
    ]);
    expect(
      parseTargets(`schedule: { every: 366d }\ntargets: [{ project_id: 2147483647, region_id: 1, image_ids: [d] }]`, 't.yaml'),
    ).toEqual([{ account: 'default', projectId: 2147483647, regionId: 1, imageId: 'd', schedule: { every: 366 * 86_400_000 } }]);
    expect(problemsOf(() => parseTargets(`snapshot: { cron: "  " }\n${ONE_TARGET}`, 't.yaml'))).toEqual([
      'snapshot: "  " is not a cron pattern: it is empty',
    ]);
    expect(problemsOf(() => parseTargets(`snapshot: { cron: "0 0 * * *", tz: "" }\n${ONE_TARGET}`, 't.yaml'))).toEqual([
      'snapshot: unknown time zone ""',
    ]);
  });

  it('a bad file exits 2 from schedule, start and sync, and leaves the stored targets and schedules as they were', async () => {
    const good = await writeTargetsFile(
      `schedule: { cron: "0 0 1 1 *", tz: UTC }\ntargets: [{ project_id: 5, region_id: 6, image_ids: [kept] }]\n`,
    );
    expect(await runCli(['schedule'], { ...env.env, TARGETS_FILE: good })).toMatchObject({ code: 0 });
    const stored = async () => ({
      targets: await services.sql`SELECT project_id, region_id, image_id, schedule_key FROM targets`,
      schedulers: (await services.queues.schedule.getJobSchedulers(0, -1)).map((s) => [s.key, s.pattern, s.every]).sort(),
    });
    const before = await stored();
    expect(before.targets).toEqual([{ project_id: 5, region_id: 6, image_id: 'kept', schedule_key: 'cron 0 0 1 1 * UTC' }]);
    const bad = [
      [
        'targets: [{ project_id: 3000000000, region_id: 6, image_ids: [kept] }]',
        'targets[0].project_id: must be a whole number from 1 to 2147483647 (got 3000000000)',
      ],
      [
        'schedule: { every: 99999999999d }\ntargets: [{ project_id: 5, region_id: 6, image_ids: [kept] }]',
        'schedule: "99999999999d" is longer than the longest interval, 366d',
      ],
    ];
    for (const [content, problem] of bad) {
      const file = await writeTargetsFile(`${content}\n`);
      for (const command of ['schedule', 'start', 'sync']) {
        expect(await runCli([command], { ...env.env, TARGETS_FILE: file }), command).toEqual({
          code: 2,
          stdout: '',
          stderr: `gcore-image-sync ${command}: configuration error in ${file}: 1 problem\n  ${problem}\n`,
        });
      }
    }
    expect(await stored()).toEqual(before);
  });
});

describe('flags', () => {
  const fail = (command: string, source: string, ...problems: string[]) => ({
    code: 2,
    stdout: '',
    stderr: `gcore-image-sync ${command}: configuration error in ${source}: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n  ${problems.join('\n  ')}\n`,
  });

  it('changes refuses ids beyond int4, limits beyond 100000, and times Postgres or a Date cannot hold', async () => {
    const changes = (...args: string[]) => runCli(['changes', ...args], env.env);
    expect(await changes('--project', '3000000000', '--region', '0', '--limit', '1e21')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--project: must be a whole number from 1 to 2147483647 (got "3000000000")',
        '--region: must be a whole number from 1 to 2147483647 (got "0")',
        '--limit: must be a whole number from 1 to 100000 (got "1e21")',
      ),
    );
    expect(await changes('--since', '+275760-09-13')).toEqual(
      fail('changes', 'changes flags', '--since: "+275760-09-13" is neither a duration (24h, 7d) nor an ISO 8601 time'),
    );
    expect(await changes('--since', '999999999d')).toEqual(
      fail('changes', 'changes flags', '--since: "999999999d" must fall between 1970-01-01 and 9999-12-31 (UTC)'),
    );
    expect(await changes('--since', '1969-12-31T23:59:59Z', '--limit', '0x10', '--field=')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--since: "1969-12-31T23:59:59Z" must fall between 1970-01-01 and 9999-12-31 (UTC)',
        '--limit: must be a whole number from 1 to 100000 (got "0x10")',
        '--field: must not be empty',
      ),
    );
    expect(await changes('--project=1.0', '--region=-1', '--limit=')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--project: must be a whole number from 1 to 2147483647 (got "1.0")',
        '--region: must be a whole number from 1 to 2147483647 (got "-1")',
        '--limit: must be a whole number from 1 to 100000 (got "")',
      ),
    );
    expect(await changes('--limit', '0', '--project', '0', '--region', 'abc')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--project: must be a whole number from 1 to 2147483647 (got "0")',
        '--region: must be a whole number from 1 to 2147483647 (got "abc")',
        '--limit: must be a whole number from 1 to 100000 (got "0")',
      ),
    );
    expect(await changes('--limit', '99999999999999999999', '--since', '99999999999999999999d')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--since: "99999999999999999999d" must fall between 1970-01-01 and 9999-12-31 (UTC)',
        '--limit: must be a whole number from 1 to 100000 (got "99999999999999999999")',
      ),
    );
    expect(await changes('--limit', 'abc', '--since', '0h')).toEqual(
      fail(
        'changes',
        'changes flags',
        '--since: "0h" is no time at all: give a duration longer than 0 (24h, 7d)',
        '--limit: must be a whole number from 1 to 100000 (got "abc")',
      ),
    );
    // A negative number after a space reads as another flag; Node's parser says how to give it.
    expect(await changes('--limit', '-1')).toMatchObject({
      code: 2,
      stdout: '',
      stderr: expect.stringMatching(/^gcore-image-sync changes: Option '--limit' argument is ambiguous\.\n[\s\S]*'--limit=-XYZ'/),
    });
    expect(await changes('--since', '2026-01-01', '--project', '2147483647', '--limit', '100000')).toEqual({
      code: 0,
      stdout: 'no changes\n',
      stderr: '',
    });
  });

  it('sync --target and fake-api refuse out-of-range numbers', async () => {
    expect(await runCli(['sync', '--target', '3000000000/1e3/a'], env.env)).toEqual(
      fail(
        'sync',
        'sync flags',
        '--target: the project id must be a whole number from 1 to 2147483647 (expected <project_id>/<region_id>/<image_id>, got "3000000000/1e3/a")',
        '--target: the region id must be a whole number from 1 to 2147483647 (expected <project_id>/<region_id>/<image_id>, got "3000000000/1e3/a")',
      ),
    );
    expect(
      await runCli(['fake-api', '--port', '65536', '--latency-ms=-5', '--images', '1e21', '--volumes', '0', '--api-key', ''], env.env),
    ).toEqual(
      fail(
        'fake-api',
        'fake-api flags',
        '--port: must be a whole number from 0 to 65535 (got "65536")',
        '--latency-ms: must be a whole number from 0 to 60000 (got "-5")',
        '--images: must be a whole number from 1 to 1000000 (got "1e21")',
        '--volumes: must be a whole number from 1 to 10000000 (got "0")',
        '--api-key: must not be empty',
      ),
    );
  });

  it('commands without flags refuse any; worker does not take --take-over, which is for start and schedule', async () => {
    expect(await runCli(['migrate', '--force'], env.env)).toEqual({
      code: 2,
      stdout: '',
      stderr: "gcore-image-sync migrate: Unknown option '--force'\n",
    });
    expect(await runCli(['snapshot', 'now'], env.env)).toMatchObject({
      code: 2,
      stderr: "gcore-image-sync snapshot: Unexpected argument 'now'. This command does not take positional arguments\n",
    });
    expect(await runCli(['worker', '--take-over'], env.env)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^gcore-image-sync worker: Unknown option '--take-over'/),
    });
    expect(await runCli(['status', '--jsn'], env.env)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^gcore-image-sync status: Unknown option '--jsn'/),
    });
  });

  it('an unknown LOG_LEVEL is a configuration error, not a crash', async () => {
    expect(await runCli(['migrate'], { ...env.env, LOG_LEVEL: 'verbose' })).toEqual(
      fail('migrate', 'environment', 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")'),
    );
  });
});

describe('ISO times', () => {
  it('reads dates and times, and refuses days that do not exist instead of rolling them over', () => {
    expect(parseIsoTime('2026-11-01')?.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(parseIsoTime('2026-11-01T10:20:30+02:00')?.toISOString()).toBe('2026-11-01T08:20:30.000Z');
    expect(parseIsoTime('2026-11-01 10:20Z')?.toISOString()).toBe('2026-11-01T10:20:00.000Z');
    expect(
      ['2026-02-30', '2026-02-29', '2026-13-01', '2026-11-01T24:00:00Z', '+275760-09-13', 'yesterday', '1', ''].map(parseIsoTime),
    ).toEqual([null, null, null, null, null, null, null, null]);
    expect(parseIsoTime('2028-02-29')?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });
});
