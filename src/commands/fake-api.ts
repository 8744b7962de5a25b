import { parseArgs } from 'node:util';
import {
  demoImages,
  demoProjects,
  demoRegions,
  fixtureProjects,
  fixtureRegions,
  spreadImages,
  spreadOver,
  spreadVolumes,
} from '../fake-gcore/fixtures.js';
import { FakeGcore, type FakeAccount } from '../fake-gcore/server.js';
import { ConfigError } from '../errors.js';
import type { Triple } from '../interfaces.js';
import type { ImagePayload, ProjectInput, RegionInput } from '../fake-gcore/list-queries.js';
import { readWholeNumber } from '../config/input-ranges.js';
import type { CommandContext } from './context.js';
import { VOLUMES } from '../usage/consumer-lists.js';

/** Generated images are described in this process's memory: a bound keeps a slip of the finger (1000000000) from exhausting it. */
const MAX_GENERATED_IMAGES = 1_000_000;
/** Generated volumes are made as pages ask for them and hold no memory: the bound keeps their listing under 20 minutes at 10 requests a second. */
const MAX_GENERATED_VOLUMES = 10_000_000;

/**
 * `--account NAME:KEY:P1,P2[:CLIENT]`: several accounts, each with its key and the projects it reaches; accounts
 * that name one client share its audit-log subscriptions (an account names its own client when it names none).
 */
function readAccounts(given: string[], problems: string[]): Record<string, FakeAccount> {
  const accounts: Record<string, FakeAccount> = {};
  for (const text of given) {
    const match = /^([a-z][a-z0-9_-]*):([^:]+):(\d+(?:,\d+)*)(?::([a-z][a-z0-9_-]*))?$/.exec(text);
    if (!match) {
      problems.push('--account: must be NAME:KEY:PROJECT[,PROJECT...][:CLIENT], e.g. prod:prod-key:1,2 or prod:prod-key:1,2:acme');
      continue;
    }
    accounts[match[1]!] = { apiKey: match[2]!, projects: match[3]!.split(',').map(Number), client: match[4] };
  }
  return accounts;
}

/**
 * Hands the images to `fake` (no copy: nothing else keeps them, and a million copies would double its memory) with
 * the projects and regions; says how many images, and how many projects and regions hold them (the listed ones
 * include a deleted project and an inactive region that hold none).
 */
function serve(
  fake: FakeGcore,
  images: Array<[Triple, ImagePayload]>,
  projects: ProjectInput[],
  regions: RegionInput[],
): { images: number; projects: number; regions: number } {
  const held = (id: (triple: Triple) => number) => new Set(images.map(([triple]) => id(triple))).size;
  const counts = { images: images.length, projects: held((t) => t.projectId), regions: held((t) => t.regionId) };
  for (const [triple, image] of images) fake.adoptImage(triple, image);
  for (const project of projects) fake.putProject(project);
  for (const region of regions) fake.putRegion(region);
  return counts;
}

/**
 * Serves the demo images (or --images N generated ones, spread over
 * --projects and --regions fixture projects and regions) with the projects and regions that hold them,
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
      projects: { type: 'string', default: '2' },
      regions: { type: 'string', default: '3' },
      volumes: { type: 'string' },
      account: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const problems: string[] = [];
  // Port 0 asks the system for a free one (the URL printed says which).
  const port = readWholeNumber('--port', values.port, 0, 65_535, problems);
  // A timer longer than 2^31 - 1 ms would fire at once; a minute is already longer than any client waits.
  const latencyMs = readWholeNumber('--latency-ms', values['latency-ms'], 0, 60_000, problems);
  const generated = values.images === undefined ? undefined : readWholeNumber('--images', values.images, 1, MAX_GENERATED_IMAGES, problems);
  const volumes =
    values.volumes === undefined ? undefined : readWholeNumber('--volumes', values.volumes, 1, MAX_GENERATED_VOLUMES, problems);
  if (volumes !== undefined && generated === undefined) problems.push('--volumes: needs --images (the volumes are made from them)');
  // Every project and region gets a listing of its own: a thousand of each is already a million lists.
  const projectCount = readWholeNumber('--projects', values.projects, 1, 1000, problems);
  const regionCount = readWholeNumber('--regions', values.regions, 1, 1000, problems);
  if (values['api-key'].trim() === '') problems.push('--api-key: must not be empty');
  const accounts = values.account === undefined ? undefined : readAccounts(values.account, problems);
  if (problems.length > 0) throw new ConfigError('fake-api flags', problems);
  const fake = new FakeGcore({ apiKey: values['api-key'], accounts, latencyMs: latencyMs! });
  const served =
    generated === undefined
      ? serve(fake, demoImages(), demoProjects(), demoRegions())
      : serve(
          fake,
          spreadImages(generated, spreadOver(projectCount!, regionCount!)),
          fixtureProjects(projectCount),
          fixtureRegions(regionCount),
        );
  if (volumes !== undefined)
    for (const pair of spreadVolumes(volumes, generated!, spreadOver(projectCount!, regionCount!)))
      fake.generateConsumers(VOLUMES, pair.projectId, pair.regionId, pair.volumes);
  const url = await fake.start(port);
  print(
    `fake Gcore API on ${url} serving ${served.images} images${volumes === undefined ? '' : ` and ${volumes} volumes`} over ${served.projects} projects and ${served.regions} regions; use GCORE_BASE_URL=${url} GCORE_API_KEY=<the --api-key>`,
  );
  const stop = () => void fake.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => {});
}
