// Kinds of image, the pure parts: the registry's rules, validation by a kind's
// field table, the merge of an answer with what other kinds' endpoints said,
// which kind an image is stored as, and a kind's paths.
import { describe, expect, it } from 'vitest';
import { sampleImage, SAMPLE_TRIPLE } from '../src/fake-gcore/fixtures.js';
import { imageUrl } from '../src/gcore/gcore-client.js';
import { canonicalJson, contentHash, diffSnapshots } from '../src/images/image-diff.js';
import { IMAGE_FIELDS } from '../src/images/image-fields.js';
import {
  defineKind,
  fieldsOthersCarry,
  fillPath,
  imageKinds,
  kindList,
  kindNamed,
  kindOfList,
  KindDefinitionError,
  mergedState,
  GPU_BAREMETAL,
  ORDINARY,
  resolvedKind,
  storedColumns,
  type ImageKind,
} from '../src/images/image-kinds.js';
import { InvalidPayloadError, validateImage } from '../src/images/image-payload.js';
import { scopeKey, scopeName, type Visibility } from '../src/config/scope.js';
import { parseTargetsFile } from '../src/config/targets.js';
import { listParts } from '../src/gcore/list-query.js';
import { acceleratedImage, ACCELERATED } from './support/second-kind.js';

const ordinary = (overrides = {}) => validateImage(sampleImage(SAMPLE_TRIPLE, overrides), SAMPLE_TRIPLE).snapshot;
const accelerated = (overrides = {}) => validateImage(acceleratedImage(SAMPLE_TRIPLE, overrides), SAMPLE_TRIPLE, ACCELERATED).snapshot;

const kind = (overrides: Partial<ImageKind>): ImageKind => ({
  name: 'probe',
  fields: { id: IMAGE_FIELDS.id },
  precedence: 0,
  getPath: '/probe/{project_id}/{region_id}/{image_id}',
  lists: [],
  ...overrides,
});

describe('the registry', () => {
  it('holds the ordinary kind, whose table is image-fields.ts and whose lists are images and bmimages, the GPU kinds, and the kind a test defines', () => {
    expect(ORDINARY.fields).toEqual(IMAGE_FIELDS);
    expect(imageKinds().map((k) => k.name)).toEqual(['ordinary', 'gpu_virtual', 'gpu_baremetal', 'test_accelerated']);
    expect(kindNamed('test_accelerated')).toBe(ACCELERATED);
    expect(kindNamed('gpu')).toBeUndefined();
    expect(kindList('bmimages')).toEqual({
      endpoint: 'bmimages',
      path: '/cloud/v1/bmimages/{project_id}/{region_id}',
      filters: true,
      baremetal: true,
    });
    expect(kindList('gpu_virtual_images')).toEqual({
      endpoint: 'gpu_virtual_images',
      path: '/cloud/v3/gpu/virtual/{project_id}/{region_id}/images',
      filters: false,
    });
    expect(kindOfList('gpu_baremetal_images')).toBe(GPU_BAREMETAL);
    expect(kindList('accelerated_images')?.filters).toBe(false);
    expect(kindOfList('bmimages')).toBe(ORDINARY);
    expect(kindOfList('accelerated_images')).toBe(ACCELERATED);
    expect(kindOfList('projects')).toBeUndefined();
  });

  it('refuses a kind that clashes: a name or list endpoint taken, no id, a column fed by another field or type, a GET without the id', () => {
    const problem = (k: ImageKind) => {
      try {
        defineKind(k);
        return 'defined';
      } catch (error) {
        expect(error).toBeInstanceOf(KindDefinitionError);
        return (error as Error).message;
      }
    };
    expect(problem(kind({ name: 'ordinary' }))).toBe('kind ordinary: a kind named ordinary is already defined');
    expect(problem(kind({ fields: {} }))).toBe('kind probe: its field table needs id: a required string with no column');
    expect(problem(kind({ getPath: '/probe/{project_id}' }))).toBe('kind probe: its getPath has no {image_id}');
    expect(problem(kind({ fields: { id: IMAGE_FIELDS.id, tags: { kind: 'string', nullable: true, column: null } } }))).toBe(
      'kind probe: tags and tags_v2 are the tag list, not fields',
    );
    expect(problem(kind({ lists: [{ endpoint: 'images', path: '/x/{project_id}/{region_id}', filters: true }] }))).toBe(
      'kind probe: list endpoint images belongs to another kind',
    );
    expect(problem(kind({ fields: { id: IMAGE_FIELDS.id, title: { kind: 'string', nullable: false, column: 'name' } } }))).toBe(
      "kind probe: field title (string) would share column name with ordinary's name (string)",
    );
    expect(problem(kind({ fields: { id: IMAGE_FIELDS.id, size: { kind: 'string', nullable: true, column: 'size' } } }))).toBe(
      "kind probe: field size (string) would share column size with ordinary's size (integer)",
    );
    expect(imageKinds()).toHaveLength(4);
  });

  it("fills the columns of `images` once each: shared fields add none, the GPU kinds' own one, the test kind's own none", () => {
    expect(storedColumns().map((c) => c.column)).toEqual([
      ...Object.values(IMAGE_FIELDS)
        .map((d) => d.column)
        .filter((c) => c !== null),
      'cuda_toolkit_version',
    ]);
  });
});

describe('validation by kind', () => {
  it("checks the second kind's own fields by its table and keeps them in the state", () => {
    const snapshot = accelerated();
    expect(snapshot.cuda_toolkit_version).toBe('12.4');
    expect(snapshot.accelerator_count).toBe(8);
    expect(snapshot.size).toBeUndefined();
    expect(() => validateImage(acceleratedImage(SAMPLE_TRIPLE, { accelerator_count: 'eight' }), SAMPLE_TRIPLE, ACCELERATED)).toThrow(
      InvalidPayloadError,
    );
    expect(() => validateImage(acceleratedImage(SAMPLE_TRIPLE, { accelerator_count: undefined }), SAMPLE_TRIPLE, ACCELERATED)).toThrow(
      /accelerator_count/,
    );
  });

  it("an ordinary answer is checked by the ordinary table, as before: the second kind's fields are unknown ones, kept as received", () => {
    expect(validateImage(acceleratedImage(SAMPLE_TRIPLE, { accelerator_count: 'eight' }), SAMPLE_TRIPLE).snapshot.accelerator_count).toBe(
      'eight',
    );
  });
});

describe('one image, several endpoints', () => {
  it('an answer of one kind keeps the stored values of fields only the other kind carries, both ways', () => {
    const both = mergedState(ACCELERATED, ordinary(), accelerated());
    expect(both.size).toBe(2361393152);
    expect(both.architecture).toBe('x86_64');
    expect(both.cuda_toolkit_version).toBe('12.4');
    const again = mergedState(ORDINARY, both, ordinary());
    expect(diffSnapshots(both, again)).toEqual([]);
    expect(contentHash(again)).toBe(contentHash(both));
  });

  it("a kind's own fields are the answer's, null included; a field no kind lists follows the answer, as it did with one kind", () => {
    const stored = mergedState(ACCELERATED, ordinary(), accelerated());
    const after = mergedState(ACCELERATED, stored, accelerated({ cuda_toolkit_version: null, name: 'renamed' }));
    expect(diffSnapshots(stored, after).map((c) => c.field)).toEqual(['cuda_toolkit_version', 'name']);
    // A field no kind lists is the answering endpoint's to say: the ordinary one's `surprise` goes when the other answers.
    const surprised = mergedState(ACCELERATED, ordinary({ surprise: 1 }), accelerated());
    expect(surprised.surprise).toBeUndefined();
  });

  it('with no stored state, or no other kind, the answer is taken as it is (the same object: nothing to hash again)', () => {
    const answer = accelerated();
    expect(mergedState(ACCELERATED, null, answer)).toBe(answer);
    const lone = ordinary();
    expect(mergedState(ORDINARY, { id: SAMPLE_TRIPLE.imageId }, lone)).toBe(lone);
    expect([...fieldsOthersCarry(ORDINARY)].sort()).toEqual(['accelerator_count', 'cuda_toolkit_version']);
    expect(fieldsOthersCarry(ACCELERATED).has('size')).toBe(true);
  });

  it('a stored field named __proto__ stays a field', () => {
    const stored = JSON.parse(`{"id":"${SAMPLE_TRIPLE.imageId}","__proto__":{"x":1},"size":5}`) as Record<string, unknown>;
    const merged = mergedState(ACCELERATED, stored, accelerated());
    expect(canonicalJson(merged)).toContain('"size":5');
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
  });

  it('the image is of the most specific kind that returned it, whichever answered last', () => {
    expect(resolvedKind(null, ORDINARY)).toBe('ordinary');
    expect(resolvedKind('ordinary', ACCELERATED)).toBe('test_accelerated');
    expect(resolvedKind('test_accelerated', ORDINARY)).toBe('test_accelerated');
    expect(resolvedKind('retired_kind', ORDINARY)).toBe('ordinary');
  });
});

describe("a kind's paths", () => {
  it('fills and encodes the placeholders, and says which one is missing', () => {
    expect(fillPath('/a/{project_id}/{image_id}', { project_id: 1, image_id: 'x/y' })).toBe('/a/1/x%2Fy');
    expect(() => fillPath('/a/{region_id}', {})).toThrow('path /a/{region_id}: no value for {region_id}');
  });

  it("the client GETs an image with its kind's path; the ordinary one is today's", () => {
    expect(imageUrl('http://h', SAMPLE_TRIPLE)).toBe(`http://h/cloud/v1/images/1/7/${SAMPLE_TRIPLE.imageId}`);
    expect(imageUrl('http://h', SAMPLE_TRIPLE, ACCELERATED)).toBe(`http://h/cloud/v9/accelerated/1/7/images/${SAMPLE_TRIPLE.imageId}`);
  });
});

describe('discovery by kind', () => {
  const region = { id: 7, baremetal: true, gpu: false };
  const every = { visibility: ['private', 'shared', 'public'] as Visibility[], baremetal: true };

  it("lists the ordinary kind's images and bmimages as before kinds when a scope names no kind, or only the ordinary one", () => {
    const parts = listParts([1], [region], every);
    expect(parts.map((p) => p.endpoint)).toEqual(['images', 'bmimages']);
    expect(listParts([1], [region], { ...every, kinds: ['ordinary'] })).toEqual(parts);
    expect(scopeKey('default', [1], [7], { ...every, kinds: undefined })).toBe(scopeKey('default', [1], [7], every));
  });

  it('lists the GPU kinds by default in a region with GPU capacity, whole (no filters); bare-metal ones only where bare metal is wanted', () => {
    const gpuRegion = { id: 7, baremetal: true, gpu: true };
    const named = { ...every, name: 'cuda' };
    expect(listParts([1], [gpuRegion], named)).toEqual([
      { projectId: 1, regionId: 7, endpoint: 'images', query: [['name', 'cuda']] },
      { projectId: 1, regionId: 7, endpoint: 'bmimages', query: [['name', 'cuda']] },
      { projectId: 1, regionId: 7, endpoint: 'gpu_virtual_images', query: [] },
      { projectId: 1, regionId: 7, endpoint: 'gpu_baremetal_images', query: [] },
    ]);
    expect(listParts([1], [gpuRegion], { ...every, baremetal: false }).map((p) => p.endpoint)).toEqual(['images', 'gpu_virtual_images']);
    expect(listParts([1], [{ ...gpuRegion, baremetal: false }], every).map((p) => p.endpoint)).toEqual(['images', 'gpu_virtual_images']);
    // Named kinds are listed where they are named, GPU capacity or not; the ordinary kind named alone keeps the GPU lists out.
    expect(listParts([1], [region], { ...every, kinds: ['gpu_virtual'] }).map((p) => p.endpoint)).toEqual(['gpu_virtual_images']);
    expect(listParts([1], [gpuRegion], { ...every, kinds: ['ordinary'] }).map((p) => p.endpoint)).toEqual(['images', 'bmimages']);
  });

  it("lists another kind's list where the scope names it; a list that takes no filters is one part with no query", () => {
    const filters = { ...every, visibility: ['private'] as Visibility[], name: 'web', kinds: ['ordinary', ACCELERATED.name] };
    expect(listParts([1], [{ id: 7, baremetal: false, gpu: false }], filters)).toEqual([
      {
        projectId: 1,
        regionId: 7,
        endpoint: 'images',
        query: [
          ['visibility', 'private'],
          ['name', 'web'],
        ],
      },
      { projectId: 1, regionId: 7, endpoint: 'accelerated_images', query: [] },
    ]);
    expect(listParts([1], [region], { ...every, kinds: [ACCELERATED.name] }).map((p) => p.endpoint)).toEqual(['accelerated_images']);
  });

  it("a scope's kinds are part of its key and its name; the targets file takes only kinds defined here", () => {
    expect(scopeKey('default', [1], [7], { ...every, kinds: [ACCELERATED.name] })).not.toBe(scopeKey('default', [1], [7], every));
    expect(scopeName([1], [7], { ...every, kinds: ['ordinary', ACCELERATED.name] })).toBe(
      'project 1, region 7, kinds ordinary+test_accelerated',
    );
    const file = (kinds: string) => `targets:\n  - { project_id: 1, region_id: 7, discover: { kinds: ${kinds} } }\n`;
    expect(parseTargetsFile(file(`[${ACCELERATED.name}]`), 't.yaml').scopes[0]!.filters.kinds).toEqual([ACCELERATED.name]);
    // Named, the ordinary kind alone keeps a scope off the GPU kinds it lists by default: another scope.
    expect(parseTargetsFile(file('[ordinary]'), 't.yaml').scopes[0]!.filters.kinds).toEqual(['ordinary']);
    expect(scopeKey('default', [1], [7], { ...every, kinds: ['ordinary'] })).not.toBe(scopeKey('default', [1], [7], every));
    expect(parseTargetsFile(file('[gpu_virtual, gpu_baremetal]'), 't.yaml').scopes[0]!.filters.kinds).toEqual([
      'gpu_virtual',
      'gpu_baremetal',
    ]);
    expect(() => parseTargetsFile(file('[gpu]'), 't.yaml')).toThrow(/"gpu" is not a kind of image defined here/);
  });
});
