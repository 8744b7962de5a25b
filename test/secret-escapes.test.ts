// The key spelled with JSON escapes the text scrub cannot see (\u0074, \/) in
// an error's message or in a stored answer never comes out of the client.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { GcoreClient } from '../src/gcore-client.js';

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

const spellings = {
  'every character as \\u': [...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
  'the slash as \\/': key.replaceAll('/', '\\/'),
};

for (const [name, spelled] of Object.entries(spellings)) {
  it(`an error message quoting the key with ${name} is scrubbed`, async () => {
    fake.setFault(SAMPLE_TRIPLE, { kind: 'status', status: 500, body: `{"message":"echo ${spelled}"}` }, 1);
    const error = await client.getImage(SAMPLE_TRIPLE).then(
      () => new Error('expected a failure'),
      (e: Error) => e,
    );
    expect(error.message).toBe('500: echo [redacted]');
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
    const error = await client.getImage(SAMPLE_TRIPLE).then(
      () => new Error('expected a failure'),
      (e: Error) => e,
    );
    expect(error.message).toBe('502: proxy: authorization=APIKey%20[redacted]');
  }
});
