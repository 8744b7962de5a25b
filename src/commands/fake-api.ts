import { parseArgs } from 'node:util';
import { demoImages } from '../fake-gcore/fixtures.js';
import { FakeGcore } from '../fake-gcore/server.js';
import { ConfigError } from '../errors.js';
import type { CommandContext } from './context.js';

/** Serves the demo images on a local port until stopped; for trying the product without a Gcore account. */
export async function fakeApiCommand({ args, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8089' },
      'api-key': { type: 'string', default: 'fake-key' },
      'latency-ms': { type: 'string', default: '0' },
    },
    strict: true,
  });
  const port = Number(values.port);
  const latencyMs = Number(values['latency-ms']);
  const problems = [
    ...(Number.isInteger(port) && port >= 0 && port < 65536 ? [] : [`--port: must be a port number (got "${values.port}")`]),
    ...(Number.isInteger(latencyMs) && latencyMs >= 0 ? [] : [`--latency-ms: must be a whole number >= 0 (got "${values['latency-ms']}")`]),
  ];
  if (problems.length > 0) throw new ConfigError('fake-api flags', problems);
  const fake = new FakeGcore({ apiKey: values['api-key'], latencyMs });
  for (const [triple, image] of demoImages()) fake.putImage(triple, image);
  const url = await fake.start(port);
  print(`fake Gcore API on ${url} serving ${demoImages().length} images; use GCORE_BASE_URL=${url} GCORE_API_KEY=<the --api-key>`);
  const stop = () => void fake.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => {});
}
