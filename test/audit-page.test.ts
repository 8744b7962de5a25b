// A page of the audit log read (src/audit-log/audit-page.ts): the request, the entries kept, the order check, the images named.
import { describe, expect, it } from 'vitest';
import { auditLogRequest, checkAuditOrder, imagesActedOn, readAuditEntries } from '../src/audit-log/audit-page.js';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import { INT4_MAX } from '../src/config/input-ranges.js';
import { readUserAction } from '../src/gcore/user-action.js';

const entry = (id: string, timestamp: string, more: Record<string, unknown> = {}) => ({
  id,
  timestamp,
  api_group: 'image',
  action_type: 'create',
  project_id: 1,
  region_id: 7,
  resources: [{ resource_type: 'image', resource_id: sampleImageId(1) }],
  ...more,
});
const action = (id: string, timestamp: string, more: Record<string, unknown> = {}) => readUserAction(entry(id, timestamp, more));

describe('auditLogRequest', () => {
  it('asks for both image groups, in the order asked under both names, bounded when a bound is given', () => {
    expect(auditLogRequest('asc', 'A', 'B')).toEqual({
      endpoint: 'user_actions',
      query: [
        ['api_group', 'image'],
        ['api_group', 'shared_image'],
        ['order_by', 'asc'],
        ['sorting', 'asc'],
        ['from_timestamp', 'A'],
        ['to_timestamp', 'B'],
      ],
    });
    expect(auditLogRequest('desc', 'A', null).query.at(-1)).toEqual(['from_timestamp', 'A']);
  });
});

describe('readAuditEntries', () => {
  it('keeps the entries that can be stored and says why each other one cannot', () => {
    const read = readAuditEntries([entry('a', '2026-12-06T01:00:00Z'), 'text', entry('', '2026-12-06T01:00:00Z'), entry('b', 'later')]);
    expect(read.actions.map((a) => a.id)).toEqual(['a']);
    expect(read.unreadable).toHaveLength(3);
    expect(read.unreadable[0]).toBe('an entry that is not an object');
    expect(read.unreadable[2]).toContain('entry b: timestamp is not a date-time');
  });
});

describe('readUserAction', () => {
  it("reads is_complete as the contract's boolean; anything else is stored as null, and named when it is not null", () => {
    const at = '2026-12-06T01:00:00Z';
    expect(action('a', at, { is_complete: false })).toMatchObject({ isComplete: false, invalidFields: [] });
    expect(action('a', at, { is_complete: true })).toMatchObject({ isComplete: true, invalidFields: [] });
    expect(action('a', at)).toMatchObject({ isComplete: null, invalidFields: [] });
    expect(action('a', at, { is_complete: null })).toMatchObject({ isComplete: null, invalidFields: [] });
    expect(action('a', at, { is_complete: 'false' })).toMatchObject({ isComplete: null, invalidFields: ['is_complete'] });
  });
});

describe('checkAuditOrder', () => {
  const from = '2026-12-06T01:00:00Z';
  it('accepts entries from `from` on, in the order asked', () => {
    expect(() => checkAuditOrder(from, 'asc', [action('a', from), action('b', '2026-12-06T01:00:01Z')])).not.toThrow();
    expect(() => checkAuditOrder(from, 'desc', [action('b', '2026-12-06T01:00:01Z'), action('a', from)])).not.toThrow();
    expect(() => checkAuditOrder(from, 'asc', [])).not.toThrow();
  });

  it('refuses an entry older than asked, and entries out of the order asked', () => {
    expect(() => checkAuditOrder(from, 'asc', [action('a', '2026-12-06T00:59:59Z')])).toThrow(/older than from_timestamp/);
    expect(() => checkAuditOrder(from, 'asc', [action('b', '2026-12-06T01:00:01Z'), action('a', from)])).toThrow(
      /order_by=asc not honoured/,
    );
    expect(() => checkAuditOrder(from, 'desc', [action('a', from), action('b', '2026-12-06T01:00:01Z')])).toThrow(
      /order_by=desc not honoured/,
    );
  });
});

describe('imagesActedOn', () => {
  const at = '2026-12-06T01:00:00Z';
  it('names each image once, with the latest entry about it', () => {
    const first = action('a', at);
    const second = action('b', at, { action_type: 'update' });
    const acted = imagesActedOn([first, second]);
    expect(acted).toEqual([{ triple: { projectId: 1, regionId: 7, imageId: sampleImageId(1) }, action: second }]);
  });

  it('passes over read-only actions, entries without a project or region, and ids beyond what targets hold', () => {
    expect(imagesActedOn([action('a', at, { action_type: 'download' })])).toEqual([]);
    expect(imagesActedOn([action('a', at, { project_id: null })])).toEqual([]);
    expect(imagesActedOn([action('a', at, { region_id: null })])).toEqual([]);
    expect(imagesActedOn([action('a', at, { project_id: INT4_MAX + 1 })])).toEqual([]);
    expect(imagesActedOn([action('a', at, { region_id: -1 })])).toEqual([]);
  });

  it('names every image of an entry', () => {
    const many = action('a', at, {
      resources: [
        { resource_type: 'image', resource_id: sampleImageId(1) },
        { resource_type: 'shared_image', resource_id: sampleImageId(2) },
      ],
    });
    expect(imagesActedOn([many]).map((a) => a.triple.imageId)).toEqual([sampleImageId(1), sampleImageId(2)]);
  });
});
