// Hostile or huge input gets a clear error or bounded handling, never a crash
// and never a request to another route; the key goes only where it is safe,
// and only in a form a header can carry.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMPLIED_ACCOUNT, keyCharacterProblem, mayCarryKey, readKey } from '../src/config/accounts.js';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { sampleImage, sampleImageId } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient, imageUrl } from '../src/gcore/gcore-client.js';
import { GcoreApiError } from '../src/gcore/gcore-errors.js';
import type { Triple } from '../src/interfaces.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { QUIET_SCHEDULE, startPipeline, type Pipeline } from './support/pipeline.js';

const MANY = { projectId: 6, regionId: 1, imageId: sampleImageId(1) };
const TOO_MANY = { projectId: 6, regionId: 1, imageId: sampleImageId(2) };
const HUGE = { projectId: 6, regionId: 1, imageId: sampleImageId(3) };
const tags = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}`, read_only: false }));

let env: TestEnv;
let fake: FakeGcore;
let pipeline: Pipeline;

beforeAll(async () => {
  env = await createTestEnv();
  fake = new FakeGcore({ apiKey: env.env.GCORE_API_KEY });
  fake.putImage(MANY, sampleImage(MANY, { tags: tags(10_000) }));
  fake.putImage(TOO_MANY, sampleImage(TOO_MANY, { tags: tags(10_001) }));
  fake.putImage(HUGE, sampleImage(HUGE, { description: 'x'.repeat(10 * 1024 * 1024) }));
  await fake.start();
  pipeline = await startPipeline(
    env,
    fake.url,
    `${QUIET_SCHEDULE}
targets:
  - { project_id: 6, region_id: 1, image_ids: [${[MANY, TOO_MANY, HUGE].map((t) => t.imageId).join(', ')}] }
`,
    { env: { SYNC_ATTEMPTS: '1' } },
  );
});

afterAll(async () => {
  await pipeline?.close();
  await fake?.stop();
  await env?.cleanup();
});

describe('input safety', () => {
  it('stores 10,000 tags, and rejects 10,001 tags and a 10 MB body with a clear failure', async () => {
    expect(await pipeline.sync()).toMatchObject({ planned: 3, changed: 1, failed: 2 });
    const sql = pipeline.services.sql;
    expect(await sql`SELECT image_id, count(*)::int AS n FROM image_tags GROUP BY image_id`).toEqual([
      { image_id: MANY.imageId, n: 10_000 },
    ]);
    const recorded = await sql`SELECT image_id, error_class, message FROM sync_failures ORDER BY image_id`;
    expect(recorded.map((f) => [f.image_id, f.error_class])).toEqual([
      [TOO_MANY.imageId, 'InvalidPayloadError'],
      [HUGE.imageId, 'MalformedAnswerError'],
    ]);
    expect(recorded[0]!.message).toMatch(
      /^answer does not fit the image schema: tags: Too big: expected array to have <=10000 items; body: /,
    );
    expect(recorded[1]!.message).toBe('answer of 10486534 bytes exceeds the 1048576-byte limit');
    expect(await sql`SELECT count(*)::int AS n FROM images`).toEqual([{ n: 1 }]);
  });

  it('refuses to build a URL for an id that could leave its path segment', () => {
    for (const imageId of ['../../x', 'a/b', '..', '.', 'a%2Fb', 'a b', 'a\nb', '']) {
      const triple: Triple = { projectId: 1, regionId: 2, imageId };
      expect(() => imageUrl('http://127.0.0.1:1', triple), imageId).toThrow(GcoreApiError);
    }
    expect(imageUrl('http://h', { projectId: 1, regionId: 2, imageId: 'a:b&c=d' })).toBe('http://h/cloud/v1/images/1/2/a%3Ab%26c%3Dd');
  });

  it('a refused id is a non-retryable failure and sends no request', async () => {
    const before = fake.requestCount;
    const client = new GcoreClient({ baseUrl: fake.url, apiKey: 'k', timeoutMs: 1000, maxResponseBytes: 1024 });
    const error = await client.getImage({ projectId: 1, regionId: 2, imageId: '../../admin' }).catch((e: Error) => e);
    expect(error).toMatchObject({ retryable: false, message: 'request not sent: image id "../../admin" must not contain ".."' });
    expect(fake.requestCount).toBe(before);
  });
});

describe('where the key goes, and what it may hold', () => {
  it('sends a key over https, or over http only to this machine', () => {
    for (const url of ['https://api.gcore.com', 'https://10.0.0.1:8443/x', 'http://localhost:8089', 'http://127.0.0.1:1', 'http://[::1]:9'])
      expect(mayCarryKey(url), url).toBe(true);
    for (const url of ['http://api.gcore.com', 'http://127.0.0.1.nip.io', 'http://10.0.0.1', 'ftp://localhost', 'localhost:80', ''])
      expect(mayCarryKey(url), url).toBe(false);
  });

  it('refuses GCORE_BASE_URL over http to another host at start, as an account base_url is refused', async () => {
    expect(() => loadConfig({ GCORE_BASE_URL: 'http://127.0.0.1:8089/' })).not.toThrow();
    let problems: string[] = [];
    try {
      loadConfig({ GCORE_BASE_URL: 'http://api.gcore.com' });
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    const problem = 'GCORE_BASE_URL: must be an https URL, or http to localhost: the API key is sent with every request';
    expect(problems).toEqual([problem]);
    expect(await runCli(['sync'], { ...env.env, GCORE_BASE_URL: 'http://api.gcore.com' })).toEqual({
      code: 2,
      stdout: '',
      stderr: `gcore-image-sync sync: configuration error in environment: 1 problem\n  ${problem}\n`,
    });
  });

  it('names the character a header cannot carry and where, never the key', () => {
    expect(keyCharacterProblem('1234$abcd/+=_-~!')).toBeUndefined();
    const rule = 'a key is printable ASCII without spaces';
    expect(keyCharacterProblem('\uFEFF1234$abcd')).toBe(`holds a byte-order mark (U+FEFF) at character 1 of 10: ${rule}`);
    expect(keyCharacterProblem('1234\0abcd')).toBe(`holds a NUL byte (U+0000) at character 5 of 9: ${rule}`);
    expect(keyCharacterProblem('1234$abcd\n')).toBe(`holds a line break (U+000A) at character 10 of 10: ${rule}`);
    expect(keyCharacterProblem('12\r34')).toBe(`holds a carriage return (U+000D) at character 3 of 5: ${rule}`);
    expect(keyCharacterProblem('12 34')).toBe(`holds a space (U+0020) at character 3 of 5: ${rule}`);
    expect(keyCharacterProblem('12\t34')).toBe(`holds a tab (U+0009) at character 3 of 5: ${rule}`);
    expect(keyCharacterProblem('12é34')).toBe(`holds the character (U+00E9) at character 3 of 5: ${rule}`);
  });

  it('refuses a key file with a BOM, a blank line or a NUL, naming the variable and the file; one trailing line break is trimmed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gis-keyfile-'));
    const read = async (content: string) => {
      const file = join(dir, `key-${content.length}-${content.charCodeAt(0)}`);
      await writeFile(file, content);
      return { file, read: readKey(IMPLIED_ACCOUNT, { GCORE_API_KEY_FILE: file }) };
    };
    expect((await read('1234$abcd\n')).read).toEqual({ key: '1234$abcd' });
    expect((await read('1234$abcd\r\n')).read).toEqual({ key: '1234$abcd' });
    const cases: Array<[string, string]> = [
      ['\uFEFF1234$abcd\n', 'a byte-order mark (U+FEFF) at character 1 of 10'],
      ['1234$abcd\n\n', 'a line break (U+000A) at character 10 of 10'],
      ['1234\0abcd', 'a NUL byte (U+0000) at character 5 of 9'],
    ];
    for (const [content, what] of cases) {
      const { file, read: result } = await read(content);
      expect(result).toEqual({
        problem: `GCORE_API_KEY_FILE names ${file}, whose key holds ${what}: a key is printable ASCII without spaces`,
      });
    }
    // The variable itself is held to the same rule.
    expect(readKey(IMPLIED_ACCOUNT, { GCORE_API_KEY: '1234 abcd' })).toEqual({
      problem: 'GCORE_API_KEY holds a space (U+0020) at character 5 of 9: a key is printable ASCII without spaces',
    });
    // At start, before any request: the command exits 2 naming both, and never prints the key.
    const { file } = await read('\uFEFFsecret-from-a-windows-editor\r\n');
    const { GCORE_API_KEY: _key, ...keyless } = env.env;
    const result = await runCli(['sync', '--wait'], { ...keyless, GCORE_API_KEY_FILE: file, TARGETS_FILE: 'examples/targets.yaml' });
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'gcore-image-sync sync: configuration error in environment: 1 problem\n' +
        `  GCORE_API_KEY_FILE names ${file}, whose key holds a byte-order mark (U+FEFF) at character 1 of 29: a key is printable ASCII without spaces\n`,
    });
  });
});
