// The fake API's list endpoints over real HTTP: images and bare-metal images
// by project and region, projects and regions, their paging and filters, the
// faults and hooks a test injects between pages, and the control endpoints a
// fake in another process is driven by. Every 200 answer is checked against
// the contract's collection serializer for its endpoint.
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  contractImage,
  demoImages,
  fixtureProjects,
  fixtureRegions,
  sampleImage,
  sampleImageId,
  spreadImages,
  spreadTriples,
} from '../src/fake-gcore/fixtures.js';
import { FakeGcore } from '../src/fake-gcore/server.js';
import { validateImage } from '../src/images/image-payload.js';
import type { Triple } from '../src/interfaces.js';
import { runCli, startCli } from './support/cli.js';
import { contractProblems } from './support/contract-check.js';
import { contractSchemas } from './support/contract.js';

const schemas = contractSchemas();
const SERIALIZERS: Record<string, string> = {
  images: 'ImageCollectionSerializer',
  bmimages: 'BareMetalImageCollectionSerializer',
  projects: 'ListProjectsSerializer',
  regions: 'RegionCollectionSerializer',
  user_actions: 'UserActionCollectionSerializer',
};

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

interface Listing {
  count: number;
  results: Array<Record<string, unknown>>;
}

async function request(base: string, path: string, key: string | null, init: RequestInit = {}): Promise<Answer> {
  const headers = key === null ? {} : { authorization: `APIKey ${key}` };
  const response = await fetch(`${base}${path}`, { ...init, headers: { ...headers, ...init.headers } });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A fake of its own, started, with helpers bound to it; stopped after the file's tests. */
function fakeFor(setUp: (fake: FakeGcore) => void = () => {}) {
  const fake = new FakeGcore({ apiKey: 'lists-key' });
  setUp(fake);
  let base = '';
  beforeAll(async () => {
    base = await fake.start();
  });
  afterAll(() => fake.stop());
  afterEach(() => {
    fake.clearFaults();
    fake.ignoreOffset = false;
  });
  const get = (path: string, key: string | null = fake.apiKey) => request(base, path, key);
  /** A 200 list answer, checked against the contract's serializer for its endpoint. */
  const list = async (path: string): Promise<Listing> => {
    const answer = await get(path);
    expect(answer.status, answer.text).toBe(200);
    const body = JSON.parse(answer.text) as Listing;
    const endpoint = /^\/cloud\/v1\/(\w+)/.exec(path)![1]!;
    expect(contractProblems(body, schemas[SERIALIZERS[endpoint]!]!, schemas)).toEqual([]);
    return body;
  };
  const ids = async (path: string) => (await list(path)).results.map((result) => result.id);
  const control = async (path: string, body?: unknown) => {
    const answer = await request(base, `/__fake/${path}`, null, {
      method: 'POST',
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: answer.status, body: JSON.parse(answer.text) as unknown };
  };
  return { fake, get, list, ids, control, url: () => base };
}

const triple = (projectId: number, regionId: number, n: number): Triple => ({ projectId, regionId, imageId: sampleImageId(n) });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, n) => sampleImageId(from + n));

/** Puts images 1..count of one project and region, none bare-metal. */
function putMany(fake: FakeGcore, projectId: number, regionId: number, count: number): void {
  for (let n = 1; n <= count; n++) fake.putImage(triple(projectId, regionId, n), contractImage(triple(projectId, regionId, n)));
}

describe('the contract check the answers go through', () => {
  it('finds what a sample image lacks, and refuses wrong types and enum values', () => {
    const image = sampleImage(triple(1, 1, 1));
    const problems = (value: unknown) => contractProblems(value, schemas.ImageCollectionSerializer!, schemas);
    expect(problems({ count: 1, results: [image] })).toEqual([
      '$.results[0].currency_code: missing',
      '$.results[0].price_per_hour: missing',
      '$.results[0].price_per_month: missing',
      '$.results[0].price_status: missing',
      '$.results[0].tags_v2: missing',
    ]);
    const complete = contractImage(triple(1, 1, 1));
    expect(problems({ count: 1, results: [complete] })).toEqual([]);
    expect(problems({ count: '1', results: [{ ...complete, architecture: 'riscv', size: 1.5, hw_firmware_type: null }] })).toEqual([
      '$.count: string, not integer',
      '$.results[0].architecture: "riscv" is not one of ["aarch64","x86_64"]',
      '$.results[0].size: matches no branch of anyOf ($.results[0].size: number, not integer | $.results[0].size: number, not null)',
    ]);
  });
});

describe('image lists', () => {
  const { fake, get, list, ids } = fakeFor((fake) => putMany(fake, 100, 1, 2500));

  it('pages 2,500 images in insertion order: 1000, 1000, 500, each with the whole count', async () => {
    const pages = await Promise.all([0, 1000, 2000, 2500].map((offset) => list(`/cloud/v1/images/100/1?offset=${offset}`)));
    expect(pages.map((page) => [page.count, page.results.length])).toEqual([
      [2500, 1000],
      [2500, 1000],
      [2500, 500],
      [2500, 0],
    ]);
    const seen = pages.flatMap((page) => page.results.map((result) => result.id));
    expect(new Set(seen).size).toBe(2500);
    expect(seen).toEqual(range(1, 2500));
    expect(await ids('/cloud/v1/images/100/1?limit=3&offset=998')).toEqual(range(999, 1001));
  });

  it('answers a project and region without images with an empty list, not 404', async () => {
    expect(await list('/cloud/v1/images/100/2')).toEqual({ count: 0, results: [] });
    expect(await list('/cloud/v1/bmimages/999/1')).toEqual({ count: 0, results: [] });
  });

  it('lists bare-metal images only under /bmimages, and moves an image that changes kind', async () => {
    const [a, b, c] = [triple(200, 1, 1), triple(200, 1, 2), triple(200, 1, 3)];
    fake.putImage(a, contractImage(a));
    fake.putImage(b, contractImage(b, { is_baremetal: true }));
    fake.putImage(c, contractImage(c));
    expect(await ids('/cloud/v1/images/200/1')).toEqual([a.imageId, c.imageId]);
    expect(await ids('/cloud/v1/bmimages/200/1')).toEqual([b.imageId]);
    fake.updateImage(a, { is_baremetal: true });
    expect(await list('/cloud/v1/images/200/1')).toMatchObject({ count: 1, results: [{ id: c.imageId }] });
    expect(await list('/cloud/v1/bmimages/200/1')).toMatchObject({ count: 2, results: [{ id: b.imageId }, { id: a.imageId }] });
    fake.deleteImage(b);
    expect(await ids('/cloud/v1/bmimages/200/1')).toEqual([a.imageId]);
  });

  describe('filters', () => {
    const tag = (key: string, value: string) => ({ key, value, read_only: false });
    const [web, debian, gpu, bm] = [1, 2, 3, 4].map((n) => triple(300, 1, n)) as [Triple, Triple, Triple, Triple];
    beforeAll(() => {
      fake.putImage(web, contractImage(web, { name: 'Ubuntu-22.04-web', tags_v2: [tag('team', 'platform'), tag('env', 'prod')] }));
      fake.putImage(
        debian,
        contractImage(debian, {
          visibility: 'public',
          name: 'debian-12',
          os_distro: 'Debian',
          os_version: '12',
          architecture: 'aarch64',
          tags_v2: [tag('team', 'data')],
        }),
      );
      // Both names: `tags_v2`, the list, wins.
      fake.putImage(
        gpu,
        contractImage(gpu, {
          visibility: 'shared',
          name: 'ubuntu-24.04-gpu',
          os_version: '24.04',
          tags_v2: [tag('team', 'platform'), tag('env', 'dev')],
        }),
      );
      fake.updateImage(gpu, { tags: [tag('legacy', 'x')] });
      fake.putImage(bm, contractImage(bm, { name: 'bm-ubuntu', is_baremetal: true }));
    });
    const filtered = (query: string) => ids(`/cloud/v1/images/300/1?${query}`);

    it('by visibility', async () => {
      expect(await filtered('visibility=private')).toEqual([web.imageId]);
      expect(await filtered('visibility=public')).toEqual([debian.imageId]);
      expect(await filtered('visibility=shared')).toEqual([gpu.imageId]);
    });

    it('by tag keys, every one present', async () => {
      expect(await filtered('tag_key=team')).toEqual([web.imageId, debian.imageId, gpu.imageId]);
      expect(await filtered('tag_key=team&tag_key=env')).toEqual([web.imageId, gpu.imageId]);
      expect(await filtered('tag_key=legacy')).toEqual([]);
      expect(await filtered('tag_key=os')).toEqual([]);
    });

    it('reads tags under their older name, `tags`, when there is no tags_v2 (such an answer is not contract-complete)', async () => {
      const old = triple(301, 1, 1);
      fake.putImage(old, sampleImage(old, { tags: [tag('team', 'platform'), tag('os', 'ubuntu')] }));
      const raw = async (query: string) => {
        const answer = await get(`/cloud/v1/images/301/1?${query}`);
        return (JSON.parse(answer.text) as Listing).results.map((result) => result.id);
      };
      expect(await raw('tag_key=os&tag_key=team')).toEqual([old.imageId]);
      expect(await raw(`tag_key_value=${encodeURIComponent('{"os":"ubuntu"}')}`)).toEqual([old.imageId]);
      expect(await raw('tag_key=env')).toEqual([]);
    });

    it('by tag key-value pairs, every one matching', async () => {
      const pairs = (value: object) => filtered(`tag_key_value=${encodeURIComponent(JSON.stringify(value))}`);
      expect(await pairs({ team: 'platform' })).toEqual([web.imageId, gpu.imageId]);
      expect(await pairs({ team: 'platform', env: 'prod' })).toEqual([web.imageId]);
      expect(await pairs({ team: 'data' })).toEqual([debian.imageId]);
      expect(await pairs({ legacy: 'x' })).toEqual([]);
      expect(await pairs({ team: 'Data' })).toEqual([]);
      expect(await pairs({})).toEqual([web.imageId, debian.imageId, gpu.imageId]);
    });

    it('by name (case-insensitive substring), os_distro and os_version (case-insensitive equality), architecture', async () => {
      expect(await filtered('name=UBUNTU')).toEqual([web.imageId, gpu.imageId]);
      expect(await filtered('name=gpu')).toEqual([gpu.imageId]);
      expect(await filtered('os_distro=DEBIAN')).toEqual([debian.imageId]);
      expect(await filtered('os_distro=ubu')).toEqual([]);
      expect(await filtered('os_version=22.04')).toEqual([web.imageId]);
      expect(await filtered('architecture=aarch64')).toEqual([debian.imageId]);
      expect(await filtered('architecture=AARCH64')).toEqual([]);
    });

    it('combines filters, counts what matches across pages, ignores private and include_prices, and filters /bmimages too', async () => {
      expect(await filtered('os_distro=ubuntu&visibility=shared')).toEqual([gpu.imageId]);
      expect(await list('/cloud/v1/images/300/1?name=ubuntu&limit=1&offset=1')).toMatchObject({ count: 2, results: [{ id: gpu.imageId }] });
      expect(await filtered('private=yes&include_prices=true')).toEqual([web.imageId, debian.imageId, gpu.imageId]);
      expect(await ids('/cloud/v1/bmimages/300/1?name=UBUNTU&visibility=private')).toEqual([bm.imageId]);
      expect(await ids('/cloud/v1/bmimages/300/1?name=debian')).toEqual([]);
    });
  });

  it('refuses out-of-range paging and bad filters with 422 and a Gcore error body', async () => {
    const refused = async (path: string) => {
      const answer = await get(path);
      expect(answer.status, path).toBe(422);
      expect(answer.headers.get('content-type')).toBe('application/json');
      return (JSON.parse(answer.text) as { exception_class: string; message: string }).message;
    };
    expect(await refused('/cloud/v1/images/100/1?limit=0')).toBe('limit: must be a whole number from 1 to 1000 (got "0")');
    expect(await refused('/cloud/v1/bmimages/100/1?limit=1001')).toBe('limit: must be a whole number from 1 to 1000 (got "1001")');
    expect(await refused('/cloud/v1/images/100/1?limit=ten')).toBe('limit: must be a whole number from 1 to 1000 (got "ten")');
    expect(await refused('/cloud/v1/images/100/1?offset=-1')).toBe(
      `offset: must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER} (got "-1")`,
    );
    expect(await refused('/cloud/v1/images/100/1?visibility=secret')).toBe(
      'visibility: must be one of private, public, shared (got "secret")',
    );
    expect(await refused('/cloud/v1/images/100/1?tag_key_value=team')).toBe('tag_key_value: not JSON (got "team")');
    expect(await refused('/cloud/v1/images/100/1?tag_key_value=%5B1%5D')).toBe(
      'tag_key_value: must be a JSON object of strings (got "[1]")',
    );
    expect(await refused('/cloud/v1/images/100/1?tag_key_value=%7B%22a%22%3A1%7D')).toBe(
      'tag_key_value: must be a JSON object of strings (got "{\\"a\\":1}")',
    );
    expect(await refused('/cloud/v1/images/one/1')).toBe('project_id, region_id: must be integers');
    const body = JSON.parse((await get('/cloud/v1/images/100/1?limit=0')).text);
    expect(body).toEqual({ exception_class: 'ValidationError', message: expect.any(String), request_id: 'fake-request' });
    expect((await list('/cloud/v1/images/100/1?limit=1000&offset=0')).results).toHaveLength(1000);
    expect((await list('/cloud/v1/images/100/1?limit=1')).results).toHaveLength(1);
  });

  it('asks for the key on every list, and answers unknown paths with the HTML 404', async () => {
    for (const path of ['/cloud/v1/images/100/1', '/cloud/v1/bmimages/100/1', '/cloud/v1/projects', '/cloud/v1/regions']) {
      const answer = await get(path, null);
      expect(answer.status, path).toBe(401);
      expect(JSON.parse(answer.text)).toMatchObject({ exception_class: 'NotAuthenticated' });
      expect((await get(path, 'wrong')).status, path).toBe(401);
    }
    for (const path of [
      '/cloud/v1/images/100',
      '/cloud/v1/images/100/1/',
      '/cloud/v1/bmimages/100/1/x',
      '/cloud/v1/projects/1',
      '/cloud/v1/regions/1',
    ]) {
      const answer = await get(path);
      expect([answer.status, answer.headers.get('content-type'), answer.text], path).toEqual([
        404,
        'text/html',
        '<html><body>404 Not Found</body></html>',
      ]);
    }
  });

  it('fails only the page a list fault selects, as many times as it says', async () => {
    fake.setListFault({ endpoint: 'images', projectId: 100, regionId: 1, offset: 1000 }, { kind: 'status', status: 503 }, 1);
    expect((await list('/cloud/v1/images/100/1')).results).toHaveLength(1000);
    expect((await get('/cloud/v1/images/100/1?offset=1000&limit=1000')).status).toBe(503);
    expect((await list('/cloud/v1/images/100/1?offset=2000')).results).toHaveLength(500);
    expect((await list('/cloud/v1/images/100/1?offset=1000')).results).toHaveLength(1000);

    // Unset fields match any request of the endpoint; until cleared.
    fake.setListFault({ endpoint: 'bmimages' }, { kind: 'rateLimited', retryAfter: '3' });
    for (const path of ['/cloud/v1/bmimages/100/1', '/cloud/v1/bmimages/7/7?offset=5']) {
      const answer = await get(path);
      expect([answer.status, answer.headers.get('retry-after')]).toEqual([429, '3']);
    }
    expect((await get('/cloud/v1/images/100/1?limit=1')).status).toBe(200);
    fake.clearFaults();
    expect((await get('/cloud/v1/bmimages/100/1')).status).toBe(200);
  });

  it('injects every kind of fault into lists', async () => {
    const selector = { endpoint: 'images' as const, projectId: 100 };
    fake.setListFault(selector, { kind: 'unauthorized' }, 1);
    expect((await get('/cloud/v1/images/100/1?limit=1')).status).toBe(401);
    fake.setListFault(selector, { kind: 'bare404' }, 1);
    expect(await get('/cloud/v1/images/100/1?limit=1')).toMatchObject({ status: 404, text: '' });
    fake.setListFault(selector, { kind: 'malformed' }, 1);
    expect(await get('/cloud/v1/images/100/1?limit=1')).toMatchObject({ status: 200, text: '{"id": "truncated' });
    fake.setListFault(selector, { kind: 'slow', ms: 150 }, 1);
    const started = Date.now();
    expect((await list('/cloud/v1/images/100/1?limit=1')).count).toBe(2500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
    expect((await list('/cloud/v1/images/100/1?limit=1')).count).toBe(2500);
  });

  it('lies as told: a short count cuts the list there, consistently across pages; an empty list; a list without some ids', async () => {
    fake.setListLie({ endpoint: 'images', projectId: 100, regionId: 1 }, { kind: 'shortCount', count: 1500 });
    const pages = await Promise.all([0, 1000].map((offset) => list(`/cloud/v1/images/100/1?offset=${offset}`)));
    expect(pages.map((page) => [page.count, page.results.length])).toEqual([
      [1500, 1000],
      [1500, 500],
    ]);
    expect(pages.flatMap((page) => page.results.map((result) => result.id))).toEqual(range(1, 1500));
    // After the query's filters: the count is of what matches.
    expect(await list('/cloud/v1/images/100/1?name=nothing-is-named-so')).toEqual({ count: 0, results: [] });
    fake.clearFaults();

    fake.setListLie({ endpoint: 'images', projectId: 100 }, { kind: 'empty' }, 1);
    expect(await list('/cloud/v1/images/100/1')).toEqual({ count: 0, results: [] });
    expect((await list('/cloud/v1/images/100/1?limit=1')).count).toBe(2500);

    fake.setListLie({ endpoint: 'images' }, { kind: 'omit', ids: [sampleImageId(2), sampleImageId(4)] }, 1);
    const told = await list('/cloud/v1/images/100/1?limit=3');
    expect([told.count, told.results.map((result) => result.id)]).toEqual([2498, [sampleImageId(1), sampleImageId(3), sampleImageId(5)]]);
    // Lies leave the single-image GET alone.
    fake.setListLie({ endpoint: 'images' }, { kind: 'empty' });
    expect((await get(`/cloud/v1/images/100/1/${sampleImageId(2)}`)).status).toBe(200);
  });

  it('with ignoreOffset answers every page from the start, count unchanged', async () => {
    fake.ignoreOffset = true;
    const [first, second] = await Promise.all([list('/cloud/v1/images/100/1'), list('/cloud/v1/images/100/1?offset=1000')]);
    expect(second.count).toBe(2500);
    expect(second.results.map((result) => result.id)).toEqual(range(1, 1000));
    expect(second).toEqual(first);
  });

  it('runs an afterListPage hook once, right after its page, so the next page sees the change', async () => {
    putMany(fake, 101, 1, 2100);
    let runs = 0;
    fake.afterListPage({ endpoint: 'images', projectId: 101, offset: 0 }, () => {
      runs += 1;
      fake.deleteImage(triple(101, 1, 1));
    });
    // A page elsewhere does not run it.
    await list('/cloud/v1/images/100/1?limit=1');
    expect(runs).toBe(0);
    expect((await ids('/cloud/v1/images/101/1')).slice(0, 2)).toEqual(range(1, 2));
    expect(runs).toBe(1);
    // Image 1001 moved to offset 999, a page already read: a lister that trusts offsets never sees it.
    const next = await list('/cloud/v1/images/101/1?offset=1000');
    expect([next.count, next.results[0]!.id]).toEqual([2099, sampleImageId(1002)]);
    await list('/cloud/v1/images/101/1');
    expect(runs).toBe(1);

    fake.afterListPage(
      { endpoint: 'images', projectId: 101 },
      () => fake.putImage(triple(101, 1, 5000), contractImage(triple(101, 1, 5000))),
      2,
    );
    await list('/cloud/v1/images/101/1?limit=1');
    await list('/cloud/v1/images/101/1?limit=1');
    const last = await list('/cloud/v1/images/101/1?offset=2098');
    expect([last.count, last.results.map((result) => result.id)]).toEqual([2100, [sampleImageId(2100), sampleImageId(5000)]]);
  });
});

describe('projects and regions', () => {
  const { fake, get, list, ids } = fakeFor((fake) => {
    for (const project of fixtureProjects()) fake.putProject(project);
    for (const region of fixtureRegions()) fake.putRegion(region);
  });

  it('lists projects with every field the contract requires; deleted ones only with include_deleted=true', async () => {
    expect(await list('/cloud/v1/projects')).toEqual({
      count: 2,
      results: [
        {
          id: 1,
          client_id: 1,
          name: 'default',
          description: null,
          state: 'ACTIVE',
          is_default: true,
          created_at: '2024-01-01T00:00:00',
          deleted_at: null,
          task_id: null,
        },
        expect.objectContaining({ id: 2, name: 'staging', state: 'ACTIVE', is_default: false, deleted_at: null }),
      ],
    });
    expect(await ids('/cloud/v1/projects?include_deleted=false')).toEqual([1, 2]);
    const all = await list('/cloud/v1/projects?include_deleted=true');
    expect(all.count).toBe(3);
    expect(all.results[2]).toMatchObject({
      id: 3,
      name: 'retired',
      state: 'DELETED',
      deleted_at: '2025-06-30T12:00:00',
      is_default: false,
    });
    expect(await ids('/cloud/v1/projects?name=STAG')).toEqual([2]);
    expect(await ids('/cloud/v1/projects?name=retired')).toEqual([]);
    expect(await ids('/cloud/v1/projects?name=retired&include_deleted=true')).toEqual([3]);
    expect((await get('/cloud/v1/projects?include_deleted=maybe')).status).toBe(422);
  });

  it('lists every region whatever its state, with every field the contract requires', async () => {
    const regions = await list('/cloud/v1/regions');
    expect(regions.count).toBe(4);
    expect(regions.results.map((region) => [region.id, region.display_name, region.state, region.has_baremetal])).toEqual([
      [1, 'Luxembourg-2', 'ACTIVE', true],
      [2, 'Frankfurt', 'ACTIVE', true],
      [3, 'Amsterdam', 'ACTIVE', true],
      [4, 'Closing', 'INACTIVE', false],
    ]);
    expect(await list('/cloud/v1/regions?limit=2&offset=2')).toMatchObject({ count: 4, results: [{ id: 3 }, { id: 4 }] });
  });

  it('pages projects and regions by 100 unless told, up to 1000', async () => {
    for (let id = 10; id < 160; id++) {
      fake.putProject({ id });
      fake.putRegion({ id, state: 'NEW' });
    }
    for (const endpoint of ['projects', 'regions']) {
      const all = endpoint === 'projects' ? 152 : 154;
      expect((await list(`/cloud/v1/${endpoint}`)).results).toHaveLength(100);
      expect(await list(`/cloud/v1/${endpoint}?offset=100`)).toMatchObject({ count: all, results: expect.any(Array) });
      expect((await list(`/cloud/v1/${endpoint}?offset=100`)).results).toHaveLength(all - 100);
      expect((await list(`/cloud/v1/${endpoint}?limit=1000`)).results).toHaveLength(all);
      expect((await get(`/cloud/v1/${endpoint}?limit=1001`)).status).toBe(422);
      expect((await get(`/cloud/v1/${endpoint}?offset=-3`)).status).toBe(422);
    }
    expect((await list('/cloud/v1/projects?limit=1&offset=2')).results[0]).toMatchObject({ id: 10, name: 'project-10', state: 'ACTIVE' });
  });

  it('a projects list can omit a live project, as a lying one would', async () => {
    const all = await list('/cloud/v1/projects?limit=1000');
    const [first] = all.results;
    fake.setListLie({ endpoint: 'projects' }, { kind: 'omit', ids: [first!.id as number] }, 1);
    const told = await list('/cloud/v1/projects?limit=1000');
    expect(told.count).toBe(all.count - 1);
    expect(told.results.map((p) => p.id)).toEqual(all.results.slice(1).map((p) => p.id));
    expect(await list('/cloud/v1/projects?limit=1000')).toEqual(all);
  });

  it('faults and ignoreOffset apply to them too', async () => {
    fake.setListFault({ endpoint: 'regions', offset: 2 }, { kind: 'status', status: 500 }, 1);
    expect((await get('/cloud/v1/regions?offset=2')).status).toBe(500);
    expect((await get('/cloud/v1/projects?offset=2')).status).toBe(200);
    fake.ignoreOffset = true;
    expect(await ids('/cloud/v1/regions?limit=2&offset=2')).toEqual([1, 2]);
  });
});

describe('control endpoints', () => {
  const { fake, get, list, ids, control } = fakeFor((fake) => {
    putMany(fake, 1, 1, 10);
    fake.putProject({ id: 1 });
    fake.putRegion({ id: 1 });
  });

  it('counts API requests by endpoint in /__fake/stats (control requests are not counted) and resets them', async () => {
    expect(await control('reset-stats')).toEqual({ status: 200, body: {} });
    await get(`/cloud/v1/images/1/1/${sampleImageId(1)}`);
    await get('/cloud/v1/images/1/1');
    await get('/cloud/v1/images/1/1', null);
    await get('/cloud/v1/bmimages/1/1');
    await get('/cloud/v1/projects');
    await get('/cloud/v1/regions?limit=0');
    await get('/cloud/v1/nothing');
    const stats = JSON.parse((await get('/__fake/stats', null)).text);
    expect(stats).toMatchObject({ requests: 6, byEndpoint: { image: 1, images: 2, bmimages: 1, projects: 1, regions: 1 } });
    expect(Object.values(stats.perSecond as Record<string, number>).reduce((sum, n) => sum + n, 0)).toBe(6);
    expect(fake.requestsByEndpoint).toEqual({ image: 1, images: 2, bmimages: 1, projects: 1, regions: 1, user_actions: 0 });
    await control('reset-stats');
    expect(JSON.parse((await get('/__fake/stats', null)).text)).toEqual({
      requests: 0,
      perSecond: {},
      perSecondByAccount: {},
      byEndpoint: { image: 0, images: 0, bmimages: 0, projects: 0, regions: 0, user_actions: 0 },
      pushes: {
        webhook: { sent: 0, failed: 0, dropped: 0, lastError: null },
        amqp: { sent: 0, failed: 0, dropped: 0, lastError: null },
        held: 0,
        amqpConnections: 0,
      },
    });
  });

  it('set a list fault, ignore offsets, and clear faults', async () => {
    expect(await control('list-fault', { selector: { endpoint: 'projects' }, fault: { kind: 'status', status: 502 }, times: 2 })).toEqual({
      status: 200,
      body: {},
    });
    expect((await get('/cloud/v1/projects')).status).toBe(502);
    expect((await get('/cloud/v1/projects')).status).toBe(502);
    expect((await get('/cloud/v1/projects')).status).toBe(200);

    await control('list-fault', {
      selector: { endpoint: 'images', projectId: 1, regionId: 1, offset: 5 },
      fault: { kind: 'rateLimited', retryAfter: '1' },
    });
    expect((await get('/cloud/v1/images/1/1?offset=5')).status).toBe(429);
    expect((await get('/cloud/v1/images/1/1?offset=5')).status).toBe(429);
    expect((await get('/cloud/v1/images/1/1?offset=4')).status).toBe(200);
    expect(await control('clear-faults')).toEqual({ status: 200, body: {} });
    expect((await get('/cloud/v1/images/1/1?offset=5')).status).toBe(200);

    expect(await control('ignore-offset', { on: true })).toEqual({ status: 200, body: { ignoreOffset: true } });
    expect(fake.ignoreOffset).toBe(true);
    expect(await ids('/cloud/v1/images/1/1?offset=5&limit=2')).toEqual(range(1, 2));
    expect(await control('ignore-offset', { on: false })).toEqual({ status: 200, body: { ignoreOffset: false } });
    expect(await ids('/cloud/v1/images/1/1?offset=5&limit=2')).toEqual(range(6, 7));
  });

  it('set a list lie, and clear it with the faults', async () => {
    expect(
      await control('list-lie', { selector: { endpoint: 'images', projectId: 1, regionId: 1 }, lie: { kind: 'shortCount', count: 4 } }),
    ).toEqual({
      status: 200,
      body: {},
    });
    expect((await list('/cloud/v1/images/1/1')).count).toBe(4);
    expect((await list('/cloud/v1/images/1/1')).count).toBe(4);
    await control('clear-faults');
    expect((await list('/cloud/v1/images/1/1')).count).toBe(10);
    await control('list-lie', { selector: { endpoint: 'images' }, lie: { kind: 'empty' }, times: 1 });
    expect((await list('/cloud/v1/images/1/1')).count).toBe(0);
    expect((await list('/cloud/v1/images/1/1')).count).toBe(10);
    await control('list-lie', { selector: { endpoint: 'projects' }, lie: { kind: 'omit', ids: [1] }, times: 1 });
    expect(await list('/cloud/v1/projects')).toEqual({ count: 0, results: [] });
    expect((await list('/cloud/v1/projects')).count).toBe(1);
    expect(await control('list-lie', { selector: { endpoint: 'images' }, lie: { kind: 'fib' } })).toEqual({
      status: 400,
      body: { error: 'lie.kind: must be one of shortCount, empty, omit, countOff' },
    });
    expect(await control('list-lie', { selector: { endpoint: 'images' }, lie: { kind: 'shortCount' } })).toEqual({
      status: 400,
      body: { error: 'lie.count: required' },
    });
    expect(await control('list-lie', { selector: { endpoint: 'images' }, lie: { kind: 'omit', ids: 'all' } })).toEqual({
      status: 400,
      body: { error: 'lie.ids: must be an array of ids (numbers or strings)' },
    });
    expect((await list('/cloud/v1/images/1/1')).count).toBe(10);
  });

  it('refuses a control body it cannot read with 400 and the reason', async () => {
    expect(await control('delete', { every: 0 })).toEqual({ status: 400, body: { error: 'every: must be a whole number >= 1' } });
    expect(await control('delete', {})).toEqual({ status: 400, body: { error: 'every: required' } });
    expect(await control('delete', 'every=2')).toEqual({ status: 400, body: { error: 'body: not JSON (got "every=2")' } });
    expect(await control('ignore-offset', { on: 'yes' })).toEqual({ status: 400, body: { error: 'on: must be true or false' } });
    expect(await control('list-fault', { selector: { endpoint: 'image' }, fault: { kind: 'malformed' } })).toEqual({
      status: 400,
      body: {
        error:
          'selector.endpoint: must be one of images, bmimages, projects, regions, user_actions, volumes, snapshots, gpu_virtual_clusters, gpu_baremetal_clusters',
      },
    });
    expect(await control('list-fault', { selector: { endpoint: 'images' }, fault: { kind: 'explode' } })).toEqual({
      status: 400,
      body: { error: 'fault.kind: must be one of status, unauthorized, bare404, rateLimited, malformed, slow' },
    });
    expect(await control('list-fault', { selector: { endpoint: 'images' }, fault: { kind: 'status' } })).toEqual({
      status: 400,
      body: { error: 'fault.status: must be a number' },
    });
    expect(await control('list-fault', { selector: { endpoint: 'images', offset: -1 }, fault: { kind: 'malformed' } })).toEqual({
      status: 400,
      body: { error: 'selector.offset: must be a whole number >= 0' },
    });
    expect((await list('/cloud/v1/images/1/1')).count).toBe(10);
  });

  it('log an entry incomplete and complete it later: the same id and time, is_complete true, naming its image', async () => {
    const image = triple(1, 1, 2);
    const entries = async () => (await list('/cloud/v1/user_actions?order_by=asc')).results;
    const logged = await control('log-incomplete', {
      email: 'carol@example.com',
      action_type: 'update',
      project_id: 1,
      region_id: 1,
      image_id: image.imageId,
    });
    expect(logged).toEqual({ status: 200, body: { id: expect.any(String) } });
    const { id } = logged.body as { id: string };
    const [incomplete] = await entries();
    expect(incomplete).toMatchObject({ id, email: 'carol@example.com', action_type: 'update', is_complete: false, resources: [] });

    expect(await control('complete-action', { id })).toEqual({ status: 200, body: { id } });
    const [complete] = await entries();
    expect(complete).toEqual({
      ...incomplete,
      is_complete: true,
      resources: [{ resource_id: image.imageId, resource_type: 'image', resource_body: null, search_field: null }],
    });
    // Once complete, there is nothing left to complete.
    expect(await control('complete-action', { id })).toEqual({
      status: 400,
      body: { error: `id: the audit log holds no incomplete entry ${id}` },
    });

    // In-process: one that names its image from the start.
    const named = fake.logIncompleteAction({ email: null }, 'delete', image, null, { namesImage: true });
    expect((await entries()).find((e) => e.id === named)).toMatchObject({
      is_complete: false,
      resources: [{ resource_id: image.imageId }],
    });
    fake.completeAction(named);
    expect((await entries()).find((e) => e.id === named)).toMatchObject({ is_complete: true });
    expect(() => fake.completeAction(named)).toThrow(`the fake audit log holds no incomplete entry ${named}`);

    expect(await control('log-incomplete', { action_type: 'update', project_id: 1, region_id: 1 })).toEqual({
      status: 400,
      body: { error: 'image_id: must be a string' },
    });
    expect(await control('log-incomplete', { email: null, action_type: 'update', project_id: 1, region_id: 1, image_id: 'nope' })).toEqual({
      status: 400,
      body: { error: 'no image 1/1/nope' },
    });
    expect(await control('complete-action', {})).toEqual({ status: 400, body: { error: 'id: must be a string' } });
  });

  it('deletes every N-th stored image (the N-th, 2N-th, ...) in insertion order', async () => {
    expect(await control('delete', { every: 3 })).toEqual({ status: 200, body: { deleted: 3 } });
    const left = [1, 2, 4, 5, 7, 8, 10].map(sampleImageId);
    expect(await ids('/cloud/v1/images/1/1')).toEqual(left);
    expect((await get(`/cloud/v1/images/1/1/${sampleImageId(3)}`)).status).toBe(404);
    expect(await control('delete', { every: 1 })).toEqual({ status: 200, body: { deleted: 7 } });
    expect(await list('/cloud/v1/images/1/1')).toEqual({ count: 0, results: [] });
  });
});

describe('fixtures', () => {
  it('spreadImages deals images round-robin over projects and regions; each pair gets its bare-metal, public and shared', () => {
    const images = spreadImages(120);
    expect(images.map(([t]) => t)).toEqual(spreadTriples(120));
    expect(images.map(([t]) => t.imageId)).toEqual(range(1, 120));
    expect(images.slice(0, 7).map(([t]) => [t.projectId, t.regionId])).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
      [2, 2],
      [2, 3],
      [1, 1],
    ]);
    // Per pair (20 images each) the 10th and 20th are bare-metal, the 5th public, the 3rd shared.
    const ofPair = images.filter(([t]) => t.projectId === 2 && t.regionId === 3).map(([, image]) => image);
    expect(ofPair.flatMap((image, n) => (image.is_baremetal ? [n + 1] : []))).toEqual([10, 20]);
    expect(ofPair.flatMap((image, n) => (image.visibility === 'public' ? [n + 1] : []))).toEqual([5]);
    expect(ofPair.flatMap((image, n) => (image.visibility === 'shared' ? [n + 1] : []))).toEqual([3]);
    expect(ofPair[9]!.name).toBe(`bm-ubuntu-22.04-x64-${sampleImageId(60).slice(-4)}`);
    expect(images.filter(([, image]) => image.is_baremetal).length).toBe(12);
    expect(spreadImages(4, { projects: [5], regions: [6, 7] }).map(([t]) => [t.projectId, t.regionId, t.imageId])).toEqual([
      [5, 6, sampleImageId(1)],
      [5, 7, sampleImageId(2)],
      [5, 6, sampleImageId(3)],
      [5, 7, sampleImageId(4)],
    ]);
  });

  it("spread images pass the contract check and the sync's own validation", () => {
    const results = spreadImages(60).map(([, image]) => image);
    expect(contractProblems({ count: 60, results }, schemas.ImageCollectionSerializer!, schemas)).toEqual([]);
    for (const [t, image] of spreadImages(60)) expect(() => validateImage(image, t)).not.toThrow();
  });
});

describe('fake-api', () => {
  async function serve(args: string[]) {
    const cli = startCli(['fake-api', '--port', '0', '--api-key', 'cli-key', ...args], {});
    let line: string | undefined;
    const exited = cli.exited.then((result) => {
      if (line === undefined) throw new Error(`fake-api exited (${result.code}) before it served: ${result.stderr}`);
    });
    while (line === undefined) {
      await Promise.race([exited, delay(20)]);
      line = /fake Gcore API on .*/.exec(cli.stderr() + cli.stdout())?.[0];
    }
    const base = /on (http:\/\/\S+) /.exec(line)![1]!;
    const listing = async (path: string) => JSON.parse((await request(base, path, 'cli-key')).text) as Listing;
    return { cli, line, base, listing };
  }

  it('--images N serves spreadImages with the fixture projects and regions, and says so', async () => {
    const { cli, line, listing } = await serve(['--images', '120']);
    try {
      expect(line).toMatch(/^fake Gcore API on http:\/\/127\.0\.0\.1:\d+ serving 120 images over 2 projects and 3 regions; /);
      expect((await listing('/cloud/v1/projects?include_deleted=true')).results.map((p) => [p.id, p.state])).toEqual([
        [1, 'ACTIVE'],
        [2, 'ACTIVE'],
        [3, 'DELETED'],
      ]);
      expect((await listing('/cloud/v1/regions')).results.map((r) => [r.id, r.state])).toEqual([
        [1, 'ACTIVE'],
        [2, 'ACTIVE'],
        [3, 'ACTIVE'],
        [4, 'INACTIVE'],
      ]);
      const counts = [];
      for (const project of [1, 2, 3]) {
        for (const region of [1, 2, 3, 4]) {
          const [images, bm] = await Promise.all(['images', 'bmimages'].map((list) => listing(`/cloud/v1/${list}/${project}/${region}`)));
          counts.push(images!.count + bm!.count);
          if (project < 3 && region < 4) expect([images!.count, bm!.count]).toEqual([18, 2]);
        }
      }
      expect(counts.reduce((sum, n) => sum + n, 0)).toBe(120);
    } finally {
      await cli.stop();
    }
  });

  it('--volumes N serves N volumes made from the --images, spread as they are; without --images it is refused', async () => {
    const { cli, line, listing } = await serve(['--images', '12', '--projects', '1', '--regions', '2', '--volumes', '7']);
    try {
      expect(line).toMatch(/ serving 12 images and 7 volumes over 1 projects and 2 regions; /);
      const volumes = await Promise.all([1, 2].map((region) => listing(`/cloud/v1/volumes/1/${region}`)));
      expect(volumes.map((v) => v.count)).toEqual([4, 3]);
    } finally {
      await cli.stop();
    }
    expect(await runCli(['fake-api', '--volumes', '7'], {})).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'gcore-image-sync fake-api: configuration error in fake-api flags: 1 problem\n  --volumes: needs --images (the volumes are made from them)\n',
    });
  });

  it('without --images serves the demo images with their projects and regions', async () => {
    const { cli, line, listing } = await serve([]);
    try {
      expect(line).toMatch(/ serving 5 images over 2 projects and 2 regions; /);
      expect((await listing('/cloud/v1/projects')).results.map((p) => p.id)).toEqual([1, 2]);
      expect((await listing('/cloud/v1/regions')).results.map((r) => [r.id, r.state])).toEqual([
        [7, 'ACTIVE'],
        [76, 'ACTIVE'],
      ]);
      const listed = [];
      for (const [project, region] of [
        [1, 7],
        [1, 76],
        [2, 7],
        [2, 76],
      ]) {
        listed.push(...(await listing(`/cloud/v1/images/${project}/${region}`)).results.map((image) => image.id));
      }
      expect(listed.sort()).toEqual(
        demoImages()
          .map(([t]) => t.imageId)
          .sort(),
      );
    } finally {
      await cli.stop();
    }
  });
});
