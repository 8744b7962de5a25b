// The key spelled in any way JSON or a URL decodes back to it (\u0074 in
// either case, \/, escapes doubled inside a quoted document, %XX), in any
// field of any answer of any content type, never comes out of the client:
// not in an error, a stored answer, sync_failures, targets.last_error, a log
// line, `status`, or a pg_dump of the database.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImage, sampleImageId, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient } from '../src/gcore/gcore-client.js';
import type { Sql } from '../src/db/db.js';
import type { Triple } from '../src/interfaces.js';
import { secretScrubber } from '../src/ops/secret-scrub.js';
import { runCli } from './support/cli.js';
import { startScenario } from './support/pipeline.js';

const key = '12345$abc/def+ghi=';
const fake = new FakeGcore({ apiKey: key });
let client: GcoreClient;
beforeAll(async () => {
  const url = await fake.start();
  client = new GcoreClient({ baseUrl: url, apiKey: key, timeoutMs: 2000, maxResponseBytes: 64 * 1024 });
  fake.putImage(SAMPLE_TRIPLE, sampleImage(SAMPLE_TRIPLE));
});
afterAll(async () => {
  client.close();
  await fake.stop();
});

const unicode = (ch: string, upper = false) => {
  const hex = ch.charCodeAt(0).toString(16).padStart(4, '0');
  return `\\u${upper ? hex.toUpperCase() : hex}`;
};
const everyU = (text: string) => [...text].map((ch) => unicode(ch)).join('');

const spellings = {
  'every character as \\u': everyU(key),
  'the slash as \\/': key.replaceAll('/', '\\/'),
};

const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => new Error('expected a failure'),
    (e: Error) => e,
  );

for (const [name, spelled] of Object.entries(spellings)) {
  it(`an error message quoting the key with ${name} is scrubbed`, async () => {
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 500, body: `{"message":"echo ${spelled}"}` }, 1);
    expect((await failureOf(client.getImage(SAMPLE_TRIPLE))).message).toBe('500: echo [redacted]');
  });

  it(`an answer quoting the key with ${name} is scrubbed`, async () => {
    const body = JSON.stringify(sampleImage(SAMPLE_TRIPLE, { description: 'KEY' })).replace('"KEY"', `"${spelled}"`);
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 200, body }, 1);
    const answer = await client.getImage(SAMPLE_TRIPLE);
    expect(answer.kind === 'found' && (answer.body as { description: string }).description).toBe('[redacted]');
  });
}

it('a body quoting the key URL-encoded, in upper or lower case, is scrubbed', async () => {
  for (const encoded of [encodeURIComponent(key), encodeURIComponent(key).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())]) {
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 502, body: `proxy: authorization=APIKey%20${encoded}` }, 1);
    expect((await failureOf(client.getImage(SAMPLE_TRIPLE))).message).toBe('502: proxy: authorization=APIKey%20[redacted]');
  }
});

it('an error body echoing the key with \\u escapes in a detail field, or in a text/plain body, is scrubbed', async () => {
  fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 500, body: `{"detail":"header: APIKey ${everyU(key)}"}` }, 1);
  expect((await failureOf(client.getImage(SAMPLE_TRIPLE))).message).toBe('500: {"detail":"header: APIKey [redacted]"}');
  const mixed = [...key].map((ch, i) => (i % 2 ? unicode(ch, true) : ch)).join('');
  const plain = { 'content-type': 'text/plain' };
  fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 503, body: `upstream said: ${mixed}`, headers: plain }, 1);
  expect((await failureOf(client.getImage(SAMPLE_TRIPLE))).message).toBe('503: upstream said: [redacted]');
  // A JSON document quoted as a string inside another doubles every backslash.
  const nested = JSON.stringify({ error: JSON.stringify({ detail: everyU(key) }) });
  fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 500, body: nested }, 1);
  expect((await failureOf(client.getImage(SAMPLE_TRIPLE))).message).toBe('500: {"error":"{\\"detail\\":\\"[redacted]\\"}"}');
});

describe('secretScrubber', () => {
  /** One character of a key as a server might write it back. */
  const spell = (ch: string, how: number, upper: boolean): string => {
    const escaped = JSON.stringify(ch).slice(1, -1);
    const bytes = [...Buffer.from(ch)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const forms = [ch, unicode(ch, upper), upper ? bytes.toUpperCase() : bytes, ch === '/' ? '\\/' : escaped];
    return forms[how % forms.length]!;
  };

  it('takes out the key however its characters are spelled, in any mix and depth of quoting, and leaves the text around it', () => {
    const keyChars = fc.constantFrom(...'abcXYZ019$/+=_-."\\~!'.split(''));
    fc.assert(
      fc.property(
        fc.array(keyChars, { minLength: 8, maxLength: 40 }).map((chars) => chars.join('')),
        fc.array(fc.tuple(fc.nat(3), fc.boolean()), { minLength: 40, maxLength: 40 }),
        fc.nat(2),
        (secret, hows, depth) => {
          let spelled = [...secret].map((ch, i) => spell(ch, hows[i]![0], hows[i]![1])).join('');
          // Quoted again as a string `depth` times: JSON inside JSON.
          for (let n = 0; n < depth; n++) spelled = JSON.stringify(spelled).slice(1, -1);
          const scrubbed = secretScrubber(secret)(`{"detail":"before ${spelled} after"}`);
          expect(scrubbed).toBe('{"detail":"before [redacted] after"}');
        },
      ),
      { numRuns: 500 },
    );
  });

  it('leaves a text alone that spells another key', () => {
    const scrub = secretScrubber('abc/def');
    for (const text of ['abc/deg', '\\u0061bc/de', 'abc%2Gdef', 'ABC/DEF', 'abcdef']) expect(scrub(text)).toBe(text);
  });
});

/**
 * The database as text: every row of every table of every schema (the queue
 * store's too), as a dump's data holds them, and, where the machine's pg_dump
 * can read this server (not one newer than itself, as the embedded
 * PostgreSQL 17 may be), pg_dump's own output as well.
 */
async function dumpOf(databaseUrl: string, sql: Sql): Promise<string> {
  const tables = await sql<{ schema: string; name: string }[]>`
    SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`;
  const rows = await Promise.all(
    tables.map(
      ({ schema, name }) => sql<{ text: string | null }[]>`SELECT string_agg(t::text, ' ') AS text FROM ${sql(schema)}.${sql(name)} t`,
    ),
  );
  const [{ major }] = await sql<[{ major: number }]>`SELECT current_setting('server_version_num')::int / 10000 AS major`;
  const version = await promisify(execFile)('pg_dump', ['--version']).then(
    ({ stdout }) => Number(/(\d+)\.\d+/.exec(stdout)?.[1]),
    () => 0,
  );
  const dumped = version >= major ? (await promisify(execFile)('pg_dump', [databaseUrl], { maxBuffer: 256 * 1024 * 1024 })).stdout : '';
  return `${rows.map(([row]) => row?.text ?? '').join('\n')}\n${dumped}`;
}

describe('the key through the pipeline', () => {
  const A: Triple = { projectId: 4, regionId: 2, imageId: sampleImageId(1) };

  it('an error body echoing the key with \\u escapes in a detail field leaves no trace of it in the database (pg_dump), the logs or status', async () => {
    const s = await startScenario([A], { env: { SYNC_ATTEMPTS: '1' } });
    try {
      const secret = s.env.env.GCORE_API_KEY!;
      const spelled = everyU(secret);
      s.fake.setFault(A, { kind: 'status', status: 500, body: `{"detail":"Authorization: APIKey ${spelled}"}` });
      expect(await s.pipeline.sync()).toMatchObject({ failed: 1 });
      const expected = '500: {"detail":"Authorization: APIKey [redacted]"}';
      const { sql } = s.pipeline.services;
      expect(await sql`SELECT message FROM sync_failures`).toEqual([{ message: expected }]);
      expect(await sql`SELECT last_error FROM targets`).toEqual([{ last_error: expected }]);
      const dump = await dumpOf(s.env.databaseUrl, sql);
      const status = await runCli(['status'], s.env.env);
      expect(status.code).toBe(0);
      for (const [where, text] of Object.entries({ dump, logs: s.pipeline.logLines.join('\n'), status: status.stdout + status.stderr })) {
        expect(text, where).toContain('APIKey [redacted]');
        for (const form of [secret, spelled, spelled.toUpperCase(), encodeURIComponent(secret)])
          expect(text.includes(form), where).toBe(false);
      }
    } finally {
      await s.close();
    }
  });
});
