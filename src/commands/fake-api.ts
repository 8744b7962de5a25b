import { parseArgs } from 'node:util';
import { demoImages, generatedImages } from '../fake-gcore/fixtures.js';
import { FakeGcore } from '../fake-gcore/server.js';
import { ConfigError } from '../errors.js';
import type { CommandContext } from './context.js';

/**
 * Serves the demo images (or --images N generated ones, project 1, region 1)
 * on a local port until stopped; for trying the product without a Gcore account.
 */
export async function fakeApiCommand({ args, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8089' },
      'api-key': { type: 'string', default: 'fake-key' },
      'latency-ms': { type: 'string', default: '0' },
      images: { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  const latencyMs = Number(values['latency-ms']);
  const generated = values.images === undefined ? undefined : Number(values.images);
  const problems = [
    ...(Number.isInteger(port) && port >= 0 && port < 65536 ? [] : [`--port: must be a port number (got "${values.port}")`]),
    ...(Number.isInteger(latencyMs) && latencyMs >= 0 ? [] : [`--latency-ms: must be a whole number >= 0 (got "${values['latency-ms']}")`]),
    ...(generated === undefined || (Number.isInteger(generated) && generated > 0) ? [] : [`--images: must be a whole number > 0 (got "${values.images}")`]),
  ];
  if (problems.length > 0) throw new ConfigError('fake-api flags', problems);
  const fake = new FakeGcore({ apiKey: values['api-key'], latencyMs });
  const images = generated === undefined ? demoImages() : generatedImages(generated);
  for (const [triple, image] of images) fake.putImage(triple, image);
  const url = await fake.start(port);
  print(`fake Gcore API on ${url} serving ${images.length} images; use GCORE_BASE_URL=${url} GCORE_API_KEY=<the --api-key>`);
  const stop = () => void fake.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => {});
}
