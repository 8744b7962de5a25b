import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMPLIED_ACCOUNT, withKeys } from '../src/config/accounts.js';
import { ConfigError } from '../src/errors.js';
import { accountQueueName, LIST_QUEUE, REFRESH_QUEUE } from '../src/queues/queue.js';
import { rateLimitKey } from '../src/gcore/rate-limiter.js';
import { configHash } from '../src/schedule/schedule-owner.js';
import { describeSchedule, scheduleKey } from '../src/schedule/schedule.js';
import { scopeKey, type DiscoverFilters } from '../src/config/scope.js';
import { loadTargets, parseTargets, parseTargetsFile } from '../src/config/targets.js';
import { tripleKey } from '../src/images/triple.js';

const UUID = '8cab6f28-09ca-4201-b3f7-23c7893f4bd6';

function problems(content: string): string[] {
  try {
    parseTargets(content, 'targets.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('targets file', () => {
  it('expands entries into targets with the default or their own schedule', () => {
    const targets = parseTargets(
      `schedule: { every: 1h30m }
targets:
  - project_id: 1
    region_id: 7
    image_ids: [${UUID}, b]
  - project_id: 2
    region_id: 8
    image_ids: [c]
    schedule: { cron: "*/15 * * * *" }
`,
      'targets.yaml',
    );
    expect(targets).toEqual([
      { account: 'default', projectId: 1, regionId: 7, imageId: UUID, schedule: { every: 5_400_000 } },
      { account: 'default', projectId: 1, regionId: 7, imageId: 'b', schedule: { every: 5_400_000 } },
      { account: 'default', projectId: 2, regionId: 8, imageId: 'c', schedule: { cron: '*/15 * * * *', tz: 'UTC' } },
    ]);
  });

  it('reads the audit snapshot schedule, 00:00 UTC by default, cron only', () => {
    const body = 'targets: [{ project_id: 1, region_id: 2, image_ids: [x] }]';
    expect(parseTargetsFile(body, 't.yaml').snapshot).toEqual({ cron: '0 0 * * *', tz: 'UTC' });
    expect(parseTargetsFile(`snapshot: { cron: "30 1 * * *", tz: Europe/Berlin }\n${body}`, 't.yaml').snapshot).toEqual({
      cron: '30 1 * * *',
      tz: 'Europe/Berlin',
    });
    expect(problems(`snapshot: { every: 1d }\n${body}`)).toEqual(['snapshot.cron: required', 'snapshot: unknown key "every"']);
  });

  it('accepts JSON and defaults the schedule to every hour', () => {
    expect(parseTargets('{"targets":[{"project_id":1,"region_id":2,"image_ids":["x"]}]}', 't.json')).toEqual([
      { account: 'default', projectId: 1, regionId: 2, imageId: 'x', schedule: { every: 3_600_000 } },
    ]);
  });

  it('lists every problem with its path', () => {
    expect(
      problems(`schedule: { every: soon }
targets:
  - project_id: 1
    region_id: 7
    image_ids: [ok]
  - project_id: "one"
    image_ids: []
    colour: blue
  - project_id: 3
    region_id: 4
    image_ids: [good, "../../x", "a/b", "has space", "x%2Fy", ""]
    schedule: { cron: "not a cron", tz: Mars/Base }
`),
    ).toEqual([
      'schedule: "soon" is not a duration (use a number with ms, s, m, h or d, e.g. 15m or 1h30m)',
      'targets[1].project_id: must be a whole number from 1 to 2147483647, or with discover a list of them or all (got "one")',
      'targets[1].region_id: required',
      'targets[1].image_ids: must list at least one image id',
      'targets[1]: unknown key "colour"',
      'targets[2].image_ids[1]: must not contain ".."',
      'targets[2].image_ids[2]: must not contain "/" (slashes, "%", "?", "#", spaces and control characters could leave the URL path segment)',
      'targets[2].image_ids[3]: must not contain " " (slashes, "%", "?", "#", spaces and control characters could leave the URL path segment)',
      'targets[2].image_ids[4]: must not contain "%" (slashes, "%", "?", "#", spaces and control characters could leave the URL path segment)',
      'targets[2].image_ids[5]: must not be empty',
      'targets[2].schedule: unknown time zone "Mars/Base"',
    ]);
  });

  it('rejects control characters, overlong ids and duplicates', () => {
    expect(problems(`targets: [{ project_id: 1, region_id: 2, image_ids: ["a\\u0000b", "${'x'.repeat(129)}"] }]`)).toEqual([
      'targets[0].image_ids[0]: must not contain "\\u0000" (slashes, "%", "?", "#", spaces and control characters could leave the URL path segment)',
      'targets[0].image_ids[1]: must be at most 128 characters (has 129)',
    ]);
    expect(
      problems(`targets:
  - { project_id: 1, region_id: 2, image_ids: [a, b] }
  - { project_id: 1, region_id: 2, image_ids: [b] }
`),
    ).toEqual(['targets[1].image_ids[0]: duplicates targets[0].image_ids[1] (1/2/b)']);
  });

  it('says how to provide a targets file that cannot be read', async () => {
    await expect(loadTargets('/nonexistent/targets.yaml')).rejects.toThrow(
      '/nonexistent/targets.yaml: 1 problem\n  cannot read the targets file (ENOENT): set TARGETS_FILE, or copy examples/targets.yaml to ./targets.yaml and list your images',
    );
  });

  it('says what a targets file that is a directory is, as Docker leaves one where the file was missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gis-targets-dir-'));
    const error = await loadTargets(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      source: dir,
      problems: [
        'the targets file is a directory (EISDIR; Docker creates one when it mounts a file that does not exist): ' +
          'remove it, then copy examples/targets.yaml to ./targets.yaml and list your images, or set TARGETS_FILE to a file',
      ],
    });
  });

  it('reports YAML syntax errors with their line and an empty file as missing targets', () => {
    expect(problems('targets: [\n  {project_id: 1')[0]).toEqual(
      'not valid YAML or JSON at line 2, column 17: Flow map in block collection must be sufficiently indented and end with a }',
    );
    expect(problems('')).toEqual(['(top level): expected object, received null']);
    expect(problems('targets: []')).toEqual(['targets: must list at least one target']);
  });
});

const EVERY_FILTER: DiscoverFilters = { visibility: ['private', 'shared', 'public'], baremetal: true };

describe('discovery scopes in the targets file', () => {
  it('reads scopes beside explicit images, in file order, with their defaults and schedules', () => {
    const content = `schedule: { every: 2h }
targets:
  - project_id: 1
    region_id: 7
    image_ids: [${UUID}]
  - project_id: 1
    region_id: [7, 8]
    discover: {}
  - project_id: all
    region_id: all
    discover:
      visibility: [private, shared]
      baremetal: false
      tag_key: [team]
      tag_key_value: { env: prod }
      name: web
      os_distro: ubuntu
      os_version: "22.04"
      architecture: x86_64
    schedule: { every: 15m }
`;
    const narrowed: DiscoverFilters = {
      visibility: ['private', 'shared'],
      baremetal: false,
      tagKey: ['team'],
      tagKeyValue: { env: 'prod' },
      name: 'web',
      osDistro: 'ubuntu',
      osVersion: '22.04',
      architecture: 'x86_64',
    };
    const file = parseTargetsFile(content, 'targets.yaml');
    expect(file.targets).toEqual([{ account: 'default', projectId: 1, regionId: 7, imageId: UUID, schedule: { every: 7_200_000 } }]);
    expect(file.scopes).toEqual([
      {
        key: scopeKey('default', [1], [7, 8], EVERY_FILTER),
        name: 'project 1, regions 7,8',
        account: 'default',
        projects: [1],
        regions: [7, 8],
        filters: EVERY_FILTER,
        schedule: { every: 7_200_000 },
      },
      {
        key: scopeKey('default', 'all', 'all', narrowed),
        name: 'all projects, all regions, private+shared, no bare metal, tag team, tag env=prod, name "web", os ubuntu 22.04, x86_64',
        account: 'default',
        projects: 'all',
        regions: 'all',
        filters: narrowed,
        schedule: { every: 900_000 },
      },
    ]);
    expect(file.scopes[0]!.key).not.toBe(file.scopes[1]!.key);
    expect(parseTargets(content, 'targets.yaml')).toEqual(file.targets);
  });

  it('lists usage unless a scope says usage: false, which keeps the scope (its key) and is stored only when false', () => {
    const file = parseTargetsFile(
      `targets:
  - { project_id: 1, region_id: 7, discover: { usage: false } }
  - { project_id: 2, region_id: 7, discover: { usage: true } }
`,
      'targets.yaml',
    );
    expect(file.scopes.map((s) => [s.key, s.filters.usage, s.name])).toEqual([
      [scopeKey('default', [1], [7], EVERY_FILTER), false, 'project 1, region 7, no usage'],
      [scopeKey('default', [2], [7], EVERY_FILTER), undefined, 'project 2, region 7'],
    ]);
  });

  it('takes all, a list or one id for projects and regions; one id is a list of one', () => {
    const file = parseTargetsFile(
      `targets:
  - { project_id: all, region_id: [8, 7], discover: { baremetal: false } }
  - { project_id: [3, 2], region_id: all, discover: { visibility: [public] } }
  - { project_id: 4, region_id: 9, discover: { tag_key: [a, b] }, schedule: { cron: "0 * * * *" } }
`,
      'targets.yaml',
    );
    const noBaremetal = { ...EVERY_FILTER, baremetal: false };
    const publicOnly = { ...EVERY_FILTER, visibility: ['public' as const] };
    const tagged = { ...EVERY_FILTER, tagKey: ['a', 'b'] };
    expect(file.targets).toEqual([]);
    expect(file.scopes).toEqual([
      {
        key: scopeKey('default', 'all', [7, 8], noBaremetal),
        name: 'all projects, regions 7,8, no bare metal',
        account: 'default',
        projects: 'all',
        regions: [8, 7],
        filters: noBaremetal,
        schedule: { every: 3_600_000 },
      },
      {
        key: scopeKey('default', [2, 3], 'all', publicOnly),
        name: 'projects 2,3, all regions, public',
        account: 'default',
        projects: [3, 2],
        regions: 'all',
        filters: publicOnly,
        schedule: { every: 3_600_000 },
      },
      {
        key: scopeKey('default', [4], [9], tagged),
        name: 'project 4, region 9, tag a, tag b',
        account: 'default',
        projects: [4],
        regions: [9],
        filters: tagged,
        schedule: { cron: '0 * * * *', tz: 'UTC' },
      },
    ]);
  });

  it('accepts a file of scopes only, and still wants at least one entry', () => {
    const content = 'targets: [{ project_id: all, region_id: all, discover: {} }]';
    expect(parseTargetsFile(content, 'targets.yaml')).toEqual({
      accounts: [IMPLIED_ACCOUNT],
      targets: [],
      scopes: [
        {
          key: scopeKey('default', 'all', 'all', EVERY_FILTER),
          name: 'all projects, all regions',
          account: 'default',
          projects: 'all',
          regions: 'all',
          filters: EVERY_FILTER,
          schedule: { every: 3_600_000 },
        },
      ],
      snapshot: { cron: '0 0 * * *', tz: 'UTC' },
    });
    expect(parseTargets(content, 'targets.yaml')).toEqual([]);
    expect(problems('targets: []')).toEqual(['targets: must list at least one target']);
  });

  it('says an entry gives image_ids or discover, and image_ids one project and one region', () => {
    expect(
      problems(`targets:
  - { project_id: 1, region_id: 2, image_ids: [a] }
  - { project_id: 1, region_id: 2 }
  - { project_id: 1, region_id: 2, image_ids: [a], discover: {} }
  - { project_id: all, region_id: [7, 8], image_ids: [a] }
  - { project_id: [1], region_id: all, image_ids: [a] }
  - { project_id: 1, region_id: 2, discover: }
`),
    ).toEqual([
      'targets[1]: give either image_ids (explicit images) or discover (every image the list endpoints return)',
      'targets[2]: give either image_ids (explicit images) or discover (every image the list endpoints return), not both',
      'targets[3].project_id: image_ids need one project id (a number), not all; use discover to list the images of every project',
      'targets[3].region_id: image_ids need one region id (a number), not [7, 8]; give each region an entry of its own, or use discover',
      'targets[4].project_id: image_ids need one project id (a number), not [1]; give each project an entry of its own, or use discover',
      'targets[4].region_id: image_ids need one region id (a number), not all; use discover to list the images of every region',
      'targets[5].discover: must be a map of filters, {} for the defaults (got null)',
    ]);
  });

  it('lists every problem with the ids and filters of a scope, with its path', () => {
    expect(
      problems(`targets:
  - { project_id: [], region_id: [1, 0, 1], discover: {} }
  - { project_id: "one", region_id: [1, x], discover: {} }
  - { project_id: 0.5, region_id: 2147483648, discover: {} }
  - { region_id: all, discover: {} }
  - project_id: 1
    region_id: 2
    discover: { visibility: [], tag_key: [], tag_key_value: {}, name: "", os_distro: "", os_version: "", colour: red }
  - project_id: 1
    region_id: 2
    discover:
      visibility: [private, internal]
      baremetal: "no"
      usage: "off"
      architecture: arm
      tag_key: ["a b", "c=d", "${'k'.repeat(256)}", x, x]
      tag_key_value: { n: 1 }
      name: "${'n'.repeat(256)}"
      os_version: 22.04
  - { project_id: 1, region_id: 2, discover: { visibility: [shared, public, shared], tag_key_value: { "a=b": v }, name: "${'🙂'.repeat(255)}" } }
`),
    ).toEqual([
      'targets[0].project_id: must list at least one id',
      'targets[0].region_id[1]: must be a whole number from 1 to 2147483647 (got 0)',
      'targets[0].region_id[2]: 1 is already listed',
      'targets[1].project_id: must be a whole number from 1 to 2147483647, or with discover a list of them or all (got "one")',
      'targets[1].region_id: must be a whole number from 1 to 2147483647, or with discover a list of them or all (got [1,"x"])',
      'targets[2].project_id: must be a whole number from 1 to 2147483647 (got 0.5)',
      'targets[2].region_id: must be a whole number from 1 to 2147483647 (got 2147483648)',
      'targets[3].project_id: required',
      'targets[4].discover.visibility: must list at least one visibility',
      'targets[4].discover.tag_key: must list at least one tag key',
      'targets[4].discover.tag_key_value: must give at least one tag key: value',
      'targets[4].discover.name: must not be empty',
      'targets[4].discover.os_distro: must not be empty',
      'targets[4].discover.os_version: must not be empty',
      'targets[4].discover: unknown key "colour"',
      'targets[5].discover.visibility[1]: must be private, shared or public (got "internal")',
      'targets[5].discover.baremetal: expected boolean, received string',
      'targets[5].discover.tag_key[0]: must not contain " " (a tag key has no whitespace or "=")',
      'targets[5].discover.tag_key[1]: must not contain "=" (a tag key has no whitespace or "=")',
      'targets[5].discover.tag_key[2]: must be at most 255 characters (has 256)',
      'targets[5].discover.tag_key[4]: "x" is already listed',
      'targets[5].discover.tag_key_value.n: expected string, received number',
      'targets[5].discover.name: must be at most 255 characters (has 256)',
      'targets[5].discover.os_version: expected string, received number',
      'targets[5].discover.architecture: must be aarch64 or x86_64 (got "arm")',
      'targets[5].discover.usage: must be true or false: whether to list who uses the images (got "off")',
      'targets[6].discover.visibility[2]: "shared" is already listed',
      'targets[6].discover.tag_key_value: tag key "a=b" must not contain "=" (a tag key has no whitespace or "=")',
    ]);
    expect(
      problems(`targets:
  - project_id: 1
    region_id: 2
    discover:
      tag_key_value: { "a b": v, ok: " v", end: "v ", tab: "a\\tb", line: "a\\nb", empty: "", long: "${'v'.repeat(256)}", inner: "a b" }
`),
    ).toEqual([
      'targets[0].discover.tag_key_value.ok: must not begin or end with a space',
      'targets[0].discover.tag_key_value.end: must not begin or end with a space',
      'targets[0].discover.tag_key_value.tab: must not contain "\\t" (a tag value has no tabs or line breaks)',
      'targets[0].discover.tag_key_value.line: must not contain "\\n" (a tag value has no tabs or line breaks)',
      'targets[0].discover.tag_key_value.empty: must not be empty',
      'targets[0].discover.tag_key_value.long: must be at most 255 characters (has 256)',
      'targets[0].discover.tag_key_value: tag key "a b" must not contain " " (a tag key has no whitespace or "=")',
    ]);
  });

  it('refuses a scope given twice, whatever the order of its ids and filters or its schedule', () => {
    expect(
      problems(`targets:
  - { project_id: 1, region_id: 7, image_ids: [a] }
  - { project_id: [1, 2], region_id: 7, discover: { tag_key: [a, b] } }
  - { project_id: [1, 2], region_id: 7, discover: { tag_key: [a, b], baremetal: false } }
  - project_id: [2, 1]
    region_id: [7]
    discover: { tag_key: [b, a], visibility: [public, private, shared], baremetal: true }
    schedule: { every: 5m }
  - { project_id: 1, region_id: 7, image_ids: [a] }
  - { project_id: all, region_id: all, discover: {} }
  - { project_id: all, region_id: all, discover: { visibility: [private, shared, public] } }
`),
    ).toEqual([
      'targets[3]: duplicates targets[1] (the same projects, regions and filters)',
      'targets[4].image_ids[0]: duplicates targets[0].image_ids[0] (1/7/a)',
      'targets[6]: duplicates targets[5] (the same projects, regions and filters)',
    ]);
  });

  it('covers scopes in the configuration hash; a file without scopes keeps the hash it had', () => {
    const explicit = `schedule: { every: 30m }
targets:
  - { project_id: 1, region_id: 7, image_ids: [a, b] }
  - { project_id: 2, region_id: 8, image_ids: [c], schedule: { cron: "0 * * * *" } }
`;
    const file = parseTargetsFile(explicit, 'targets.yaml');
    const lines = file.targets.map((t) => `${tripleKey(t)} ${scheduleKey(t.schedule)}`).sort();
    lines.push(`snapshot ${scheduleKey(file.snapshot)}`);
    const before = createHash('sha256').update(lines.join('\n')).digest('hex');
    expect(configHash(file)).toBe(before);

    const scope = '  - { project_id: 1, region_id: all, discover: { name: web } }\n';
    const withScope = configHash(parseTargetsFile(explicit + scope, 'targets.yaml'));
    expect(withScope).not.toBe(before);
    const reordered = explicit.replace('targets:\n', `targets:\n${scope}`);
    expect(configHash(parseTargetsFile(reordered, 'targets.yaml'))).toBe(withScope);
    const rescheduled = explicit + scope.replace(' }\n', ', schedule: { every: 5m } }\n');
    expect(configHash(parseTargetsFile(rescheduled, 'targets.yaml'))).not.toBe(withScope);
    const refiltered = explicit + scope.replace('web', 'api');
    expect(configHash(parseTargetsFile(refiltered, 'targets.yaml'))).not.toBe(withScope);
  });
});

describe('accounts in the targets file', () => {
  const accounts = `accounts:
  prod: { api_key_env: GCORE_API_KEY }
  staging: { api_key_env: GCORE_API_KEY_STAGING, rate_limit_per_second: 5, base_url: "https://api.example.test/" }
`;

  it('reads each account, gives each entry its account, and keeps keys out of the file', () => {
    const file = parseTargetsFile(
      `${accounts}targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [a] }
  - { account: staging, project_id: all, region_id: all, discover: {} }
`,
      'targets.yaml',
    );
    expect(file.accounts).toEqual([
      { name: 'prod', apiKeyEnv: 'GCORE_API_KEY', rateLimitPerSecond: undefined, baseUrl: undefined },
      { name: 'staging', apiKeyEnv: 'GCORE_API_KEY_STAGING', rateLimitPerSecond: 5, baseUrl: 'https://api.example.test' },
    ]);
    expect(file.targets.map((t) => t.account)).toEqual(['prod']);
    expect(file.scopes.map((s) => s.account)).toEqual(['staging']);
    // Another account's `all` is another scope; the implied account's keys are those of releases before accounts.
    expect(file.scopes[0]!.key).not.toBe(scopeKey('default', 'all', 'all', EVERY_FILTER));
    expect(scopeKey('default', 'all', 'all', EVERY_FILTER)).toBe('scope-6bd0212dd6c6281d');
    expect(scheduleKey({ every: 3_600_000 }, 'staging')).toBe('every 3600000ms for staging');
    expect(scheduleKey({ every: 3_600_000 }, 'default')).toBe('every 3600000ms');
    expect(describeSchedule('cron 0 3 * * * Europe/Amsterdam for staging')).toBe('cron 0 3 * * * (Europe/Amsterdam) for staging');
  });

  it('a file without accounts has the implied one, whose key is GCORE_API_KEY, with the names, keys and hash of releases before accounts', () => {
    const file = parseTargetsFile('targets: [{ project_id: 1, region_id: 7, image_ids: [a] }]', 'targets.yaml');
    expect(file.accounts).toEqual([IMPLIED_ACCOUNT]);
    expect(file.targets).toEqual([{ account: 'default', projectId: 1, regionId: 7, imageId: 'a', schedule: { every: 3_600_000 } }]);
    expect([accountQueueName(REFRESH_QUEUE, 'default'), accountQueueName(LIST_QUEUE, 'default')]).toEqual(['image-refresh', 'image-list']);
    expect(accountQueueName(REFRESH_QUEUE, 'staging')).toBe('image-refresh.staging');
    expect(rateLimitKey('gcore-image-sync')).toBe('gcore-image-sync:image-refresh:api-rate');
    expect(rateLimitKey('gcore-image-sync', 'default')).toBe('gcore-image-sync:image-refresh:api-rate');
    expect(rateLimitKey('gcore-image-sync', 'staging')).toBe('gcore-image-sync:image-refresh:api-rate:staging');
    // The hash of the file as releases before accounts made it (no account lines).
    const before = createHash('sha256').update(['1/7/a every 3600000ms', 'snapshot cron 0 0 * * * UTC'].join('\n')).digest('hex');
    expect(configHash(file)).toBe(before);
  });

  it('names every problem with its path: names, variables, limits, URLs, a missing or unknown account', () => {
    expect(
      problems(`accounts:
  Prod: { api_key_env: K }
  staging: { api_key_env: DATABASE_URL, rate_limit_per_second: 10001, base_url: "http://collector.example.com" }
  qa: { api_key: secret }
targets:
  - { project_id: 1, region_id: 7, image_ids: [a] }
  - { account: nope, project_id: 2, region_id: 7, image_ids: [b] }
`),
    ).toEqual([
      'accounts.Prod: an account name must be a lowercase letter, then up to 39 lowercase letters, digits, "_" or "-"',
      'accounts.staging.api_key_env: must be GCORE_API_KEY or GCORE_API_KEY_<SUFFIX> in capitals, digits and _ (got "DATABASE_URL")',
      'accounts.staging.rate_limit_per_second: must be a whole number from 0 (no limit) to 10000 (got 10001)',
      'accounts.staging.base_url: must be an https URL, or http to localhost (got "http://collector.example.com")',
      'accounts.qa.api_key_env: required',
      'accounts.qa: unknown key "api_key"',
    ]);
    expect(
      problems(`${accounts}targets:
  - { project_id: 1, region_id: 7, image_ids: [a] }
  - { account: nope, project_id: 2, region_id: 7, image_ids: [b] }
  - { account: Staging, project_id: 3, region_id: 7, image_ids: [c] }
`),
    ).toEqual(['targets[2].account: must be a lowercase letter, then up to 39 lowercase letters, digits, "_" or "-" (got "Staging")']);
    expect(
      problems(`${accounts}targets:
  - { project_id: 1, region_id: 7, image_ids: [a] }
  - { account: nope, project_id: 2, region_id: 7, image_ids: [b] }
`),
    ).toEqual([
      'targets[0].account: required when the file names several accounts: one of prod, staging',
      'targets[1].account: no account "nope" in accounts: one of prod, staging',
    ]);
  });

  it('refuses an image under two accounts: the same triple, a project discovered by both, an image named by one and discovered by the other; named images of two accounts may share a project', () => {
    expect(
      problems(`${accounts}targets:
  - { account: prod, project_id: 1, region_id: 7, image_ids: [a] }
  - { account: staging, project_id: 1, region_id: 7, image_ids: [a] }
  - { account: prod, project_id: [2, 3], region_id: all, discover: {} }
  - { account: staging, project_id: 3, region_id: 9, discover: {} }
  - { account: staging, project_id: 2, region_id: 8, image_ids: [b] }
  - { account: staging, project_id: all, region_id: all, discover: {} }
  - { account: staging, project_id: 1, region_id: 7, image_ids: [c] }
`),
    ).toEqual([
      'targets[1].image_ids[0]: duplicates targets[0].image_ids[0] (1/7/a)',
      'targets[3]: project 3 is also under account prod at targets[2]; an image belongs to one account',
      'targets[4]: project 2 is also under account prod at targets[2]; an image belongs to one account',
    ]);
  });

  it('wants the key of every account in the environment of a process that calls the API, naming the variable, never the key', () => {
    const file = parseTargetsFile(`${accounts}targets: [{ account: prod, project_id: 1, region_id: 7, image_ids: [a] }]`, 'targets.yaml');
    let error: unknown;
    try {
      withKeys(file.accounts, { GCORE_API_KEY: 'k1' }, 'targets.yaml');
    } catch (caught) {
      error = caught;
    }
    expect((error as ConfigError).problems).toEqual([
      "accounts.staging.api_key_env: GCORE_API_KEY_STAGING is not set in this process's environment (nor GCORE_API_KEY_STAGING_FILE)",
    ]);
    expect(withKeys(file.accounts, { GCORE_API_KEY: 'k1', GCORE_API_KEY_STAGING: 'k2' }, 'targets.yaml').map((a) => a.apiKey)).toEqual([
      'k1',
      'k2',
    ]);
  });

  it('reads a key from the file <variable>_FILE names, as Docker and Kubernetes mount secrets, and says when it cannot', async () => {
    const file = parseTargetsFile(`${accounts}targets: [{ account: prod, project_id: 1, region_id: 7, image_ids: [a] }]`, 'targets.yaml');
    const dir = await mkdtemp(join(tmpdir(), 'gis-secret-'));
    await writeFile(join(dir, 'staging'), 'secret-from-file\n');
    await writeFile(join(dir, 'empty'), '');
    const env = { GCORE_API_KEY: 'k1', GCORE_API_KEY_STAGING_FILE: join(dir, 'staging') };
    expect(withKeys(file.accounts, env, 'targets.yaml').map((a) => a.apiKey)).toEqual(['k1', 'secret-from-file']);
    // The variable itself wins over the file.
    expect(withKeys(file.accounts, { ...env, GCORE_API_KEY_STAGING: 'k2' }, 'targets.yaml').map((a) => a.apiKey)).toEqual(['k1', 'k2']);
    const problemsWith = (staging: string) => {
      try {
        withKeys(file.accounts, { GCORE_API_KEY: 'k1', GCORE_API_KEY_STAGING_FILE: staging }, 'targets.yaml');
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    expect(problemsWith(join(dir, 'missing'))).toEqual([
      `accounts.staging.api_key_env: GCORE_API_KEY_STAGING_FILE names ${join(dir, 'missing')}, which cannot be read (ENOENT)`,
    ]);
    expect(problemsWith(join(dir, 'empty'))).toEqual([
      `accounts.staging.api_key_env: GCORE_API_KEY_STAGING_FILE names ${join(dir, 'empty')}, which is empty`,
    ]);
  });
});
