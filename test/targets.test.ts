import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { loadTargets, parseTargets, parseTargetsFile } from '../src/targets.js';

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
      { projectId: 1, regionId: 7, imageId: UUID, schedule: { every: 5_400_000 } },
      { projectId: 1, regionId: 7, imageId: 'b', schedule: { every: 5_400_000 } },
      { projectId: 2, regionId: 8, imageId: 'c', schedule: { cron: '*/15 * * * *', tz: 'UTC' } },
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
      { projectId: 1, regionId: 2, imageId: 'x', schedule: { every: 3_600_000 } },
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
      'targets[1].project_id: expected number, received string',
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

  it('reports YAML syntax errors with their line and an empty file as missing targets', () => {
    expect(problems('targets: [\n  {project_id: 1')[0]).toEqual(
      'not valid YAML or JSON at line 2, column 17: Flow map in block collection must be sufficiently indented and end with a }',
    );
    expect(problems('')).toEqual(['(top level): expected object, received null']);
    expect(problems('targets: []')).toEqual(['targets: must list at least one target']);
  });
});
