// Output for a person: one readable line per event, nothing from the API let
// through raw, never glued to the progress line; a cause that fails many
// requests said once per interval; scopes named as the operator names them.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { inert, logFormat, prettyLine } from '../src/ops/log-format.js';
import { createLogger } from '../src/ops/logger.js';
import { aboveProgress, progressReporter } from '../src/ops/progress.js';
import { changeTable } from '../src/ops/change-table.js';
import { causeLog, causeOf, urlSetting, type ApiPlace } from '../src/ops/repeated-errors.js';
import { scopeName, scopeNameProblem } from '../src/config/scope.js';
import { parseTargetsFile } from '../src/config/targets.js';

const place: ApiPlace = { account: 'default', apiKeyEnv: 'GCORE_API_KEY', url: 'http://127.0.0.1:1', urlSetting: 'GCORE_BASE_URL' };

describe('the log format', () => {
  it('is LOG_FORMAT when given, else pretty for LOG_PRETTY=1 or a terminal, else JSON', () => {
    expect(logFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ LOG_FORMAT: ' pretty ' }, false)).toBe('pretty');
    expect(logFormat({ LOG_FORMAT: 'json', LOG_PRETTY: '1' }, false)).toBe('json');
    expect(logFormat({ LOG_PRETTY: '1' }, false)).toBe('pretty');
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({ LOG_PRETTY: '0' }, false)).toBe('json');
  });

  it('writes one line with the level, the message and the fields, leaving out what tells processes apart', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
      service: 'gcore-image-sync',
      hostname: 'vm',
      pid: 7,
      msg: 'listing incomplete',
      scope: 'prod-web',
      scope_key: 'scope-0123456789abcdef',
      listed: 3,
      error: 'two words',
      ids: [1, 2],
    });
    expect(prettyLine(line, false)).toMatch(
      /^\[\d\d:\d\d:05\.006\] WARN: listing incomplete scope=prod-web listed=3 error="two words" ids=\[1,2\]\n$/,
    );
    const colored = prettyLine(JSON.stringify({ level: 50, time: 0, msg: 'x' }), true);
    expect(colored.slice(colored.indexOf(']'))).toBe('] \u001b[31mERROR\u001b[39m: x\n');
  });

  it('lets no control character or terminal escape from the API through raw', () => {
    const hostile = 'name\u001b[2J\u001b]0;owned\u0007\r\nnext\u009b31m\u202eevil';
    const line = prettyLine(JSON.stringify({ level: 30, time: 0, msg: hostile, [hostile]: hostile }), false);
    expect(line.endsWith('\n')).toBe(true);
    // eslint-disable-next-line no-control-regex
    expect(line.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(line).toContain('name\\u001b[2J\\u001b]0;owned\\u0007\\u000d\\u000anext\\u009b31m\\u202eevil');
    expect(inert('plain text')).toBe('plain text');
    expect(prettyLine('not json \u001b[1m', false)).toBe('not json \\u001b[1m\n');
  });

  it('moves a progress line drawn on a terminal below a log line, and draws it again', () => {
    const written: string[] = [];
    const out = { isTTY: true, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream;
    const progress = progressReporter(out, 'run 1', () => 1000);
    progress.update(1, 5);
    aboveProgress(() => written.push('[log]\n'));
    progress.finish();
    aboveProgress(() => written.push('[after]\n'));
    expect(written).toEqual([
      '\rrun 1: 1/5 refreshed, 0.0/s, ETA ?\u001b[K',
      '\r\u001b[K',
      '[log]\n',
      'run 1: 1/5 refreshed, 0.0/s, ETA ?',
      '\n',
      '[after]\n',
    ]);
  });
});

describe('causes of failure', () => {
  it('names what to check for a failure the operator can fix, and nothing for one about an image', () => {
    const of = (status: number | null, errorClass: string, message = 'm') => causeOf({ status, errorClass, message }, place);
    expect(of(null, 'TransientApiError', 'connection failed: connect ECONNREFUSED 127.0.0.1:1')).toEqual({
      key: 'unreachable',
      text: 'cannot reach the API at http://127.0.0.1:1 (connection failed: connect ECONNREFUSED 127.0.0.1:1): check GCORE_BASE_URL and the network',
    });
    expect(of(401, 'AuthenticationError')?.text).toBe('the API rejected the key in GCORE_API_KEY (401): check the key');
    expect(of(403, 'TransientApiError')?.key).toBe('403');
    expect(of(502, 'TransientApiError')?.text).toMatch(/answers 502: check that GCORE_BASE_URL is Gcore's API/);
    expect(of(404, 'RouteNotFoundError')?.text).toMatch(/404 without Gcore's body: check GCORE_BASE_URL$/);
    expect(of(200, 'InvalidPayloadError')).toBeNull();
    expect(of(null, 'PausedPastCapError')).toBeNull();
    expect(urlSetting({ name: 'prod', baseUrl: 'https://x' })).toBe('base_url of account prod in the targets file');
    expect(urlSetting({ name: 'default' })).toBe('GCORE_BASE_URL');
  });

  it('says a cause once, then at most once per interval with how many failed since', () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    let now = 0;
    const causes = causeLog(createLogger('info', stream), place, 60_000, () => now);
    const unreachable = causes.of({ status: null, errorClass: 'TransientApiError', message: 'connection failed' })!;
    causes.report(unreachable, ['a', 'b', 'c'], 'connection failed');
    now = 30_000;
    causes.report(unreachable, ['a', 'b', 'd'], 'connection failed');
    causes.report(causes.of({ status: 503, errorClass: 'TransientApiError', message: '503' })!, ['a'], '503');
    now = 60_000;
    causes.report(unreachable, ['e'], 'connection failed');
    expect(lines.map(({ msg, cause, failed, attempts }) => ({ msg, cause, failed, attempts }))).toEqual([
      {
        msg: expect.stringMatching(/check GCORE_BASE_URL and the network; 3 requests failed this way$/),
        cause: 'unreachable',
        failed: 3,
        attempts: 3,
      },
      { msg: expect.stringMatching(/answers 503: .*; 1 request failed this way$/), cause: '503', failed: 1, attempts: 1 },
      {
        msg: expect.stringMatching(/; 4 requests failed this way since the last such line$/),
        cause: 'unreachable',
        failed: 4,
        attempts: 4,
      },
    ]);
  });
});

describe('scope names', () => {
  const file = (entries: string) => `targets:\n${entries}`;
  const problems = (content: string) => {
    try {
      parseTargetsFile(content, 'targets.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  };

  it('takes a name: per scope, not part of its key', () => {
    const named = parseTargetsFile(file('  - { name: prod-web, project_id: 2, region_id: all, discover: {} }\n'), 't.yaml');
    const unnamed = parseTargetsFile(file('  - { project_id: 2, region_id: all, discover: {} }\n'), 't.yaml');
    expect(named.scopes[0]!.name).toBe('prod-web');
    expect(unnamed.scopes[0]!.name).toBe('project 2, all regions');
    expect(named.scopes[0]!.key).toBe(unnamed.scopes[0]!.key);
  });

  it('refuses an empty, long, multi-line or repeated name, and a name on named images, saying where', () => {
    expect(
      problems(
        file(`  - { name: "", project_id: 1, region_id: all, discover: {} }
  - { name: "${'x'.repeat(65)}", project_id: 2, region_id: all, discover: {} }
  - { name: "a\\nb", project_id: 3, region_id: all, discover: {} }
  - { name: web, project_id: 4, region_id: all, discover: {} }
  - { name: web, project_id: 5, region_id: all, discover: {} }
  - { name: web, project_id: 6, region_id: 7, image_ids: [abc] }
`),
      ),
    ).toEqual([
      'targets[0].name: must not be empty',
      'targets[1].name: must be at most 64 characters (has 65)',
      'targets[2].name: must not contain "\\n" (a name is one line of printable characters)',
      'targets[5].name: names a discovery scope: give it with discover, not with image_ids',
    ]);
    expect(
      problems(
        file(`  - { name: web, project_id: 4, region_id: all, discover: {} }
  - { name: web, project_id: 5, region_id: all, discover: {} }
`),
      ),
    ).toEqual(['targets[1].name: "web" already names the scope at targets[0]']);
    expect(
      problems(
        file(`  - { name: "project 2, all regions", project_id: 1, region_id: all, discover: {} }
  - { project_id: 2, region_id: all, discover: {} }
`),
      ),
    ).toEqual(['targets[0].name: "project 2, all regions" is the name made up for the scope at targets[1]: give one of them another']);
  });

  it('makes a name from projects, regions and filters', () => {
    const every = { visibility: ['private', 'shared', 'public'] as const, baremetal: true };
    expect(scopeName([3, 1], 'all', { ...every, visibility: [...every.visibility] })).toBe('projects 1,3, all regions');
    expect(scopeName('all', [7], { visibility: ['public'], baremetal: false, osVersion: '22.04', architecture: 'aarch64' })).toBe(
      'all projects, region 7, public, no bare metal, os version 22.04, aarch64',
    );
    expect(scopeNameProblem(' web')).toBe('must not begin or end with a space');
    expect(scopeNameProblem('prod web ☃')).toBeNull();
  });
});

describe('the change table on a terminal', () => {
  it('shows names, tag keys, values and actors from the API as inert characters', () => {
    const hostile = '\u001b[2J\u001b]0;owned\u0007web\u202e';
    const table = changeTable([
      {
        changed_at: '2026-12-06T06:00:00.000Z',
        project_id: 1,
        region_id: 7,
        image_id: 'a',
        account: 'default',
        image_name: hostile,
        change_type: 'updated',
        field: `tags.${hostile}`,
        old_value: hostile,
        new_value: { value: hostile },
        actor_email: `${hostile}@example.com`,
        actor_user_id: 1,
        action_type: 'update',
        action_id: '1',
        actor_candidates: 1,
      },
    ]);
    for (const control of ['\u001b', '\u0007', '\u202e']) expect(table).not.toContain(control);
    const row = table.split('\n')[1]!;
    expect(row).toContain('tags.\\u001b[2J\\u001b]0;owned\\u0007web\\u202e');
    expect(row).toContain('\\u001b[2J\\u001b]0;owned\\u0007web\\u202e@example.com (update)');
    expect(scopeNameProblem('web\u202e')).toBe('must not contain "\\u202e" (a name is one line of printable characters)');
  });
});
