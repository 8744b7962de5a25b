// The web view's text handling: every value escaped, query parameters refused with their name.
import { describe, expect, it } from 'vitest';
import { html, Html } from '../src/ui/html.js';
import { UiInputError } from '../src/ui/page-errors.js';
import { encodeCursor, QueryReader } from '../src/ui/query.js';

const reader = (query: string) => new QueryReader(new URLSearchParams(query));
const refusal = (read: () => unknown) => {
  try {
    read();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UiInputError);
    return (error as Error).message;
  }
};

describe('html', () => {
  it('escapes every value, in text and in quoted attributes, and inserts only what it built itself', () => {
    const name = `<img src=x onerror="alert('1')">&amp;`;
    expect(html`<td title="${name}">${name}</td>`.text).toBe(
      '<td title="&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;amp;">&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;amp;</td>',
    );
    const list = ['<a>', html`<li>${'<b>'}</li>`];
    expect(
      html`<ul>
        ${list}
      </ul>`.text.replace(/\s+/g, ''),
    ).toBe('<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>');
    expect(html`${null}${undefined}${false}${0}${true}`.text).toBe('0true');
    // A lookalike of Html that html did not build is text, not markup.
    expect(html`${{ text: '<script>' }}`.text).toBe('[object Object]');
    expect(html`${new Html('<br>')}`.text).toBe('<br>');
  });
});

describe('query parameters', () => {
  it('reads what a page takes and refuses the rest, naming the parameter', () => {
    expect(reader('project=12&kind=ordinary').integer('project')).toBe(12);
    expect(reader('q=%20%20').text('q')).toBeUndefined();
    expect(refusal(() => reader('project=1e3').integer('project'))).toBe(
      'project: must be a whole number from 0 to 2147483647 (got "1e3")',
    );
    expect(refusal(() => reader('project=2147483648').integer('project'))).toBe(
      'project: must be a whole number from 0 to 2147483647 (got "2147483648")',
    );
    expect(refusal(() => reader('project=1&project=2').integer('project'))).toBe('project: given 2 times; give it once');
    expect(refusal(() => reader('kind=nope').oneOf('kind', ['ordinary', 'gpu_virtual']))).toBe(
      'kind: must be one of ordinary, gpu_virtual (got "nope")',
    );
    expect(refusal(() => reader(`q=${'x'.repeat(501)}`).text('q'))).toBe('q: at most 500 characters (got 501)');
    expect(refusal(() => reader('q=a%00b').text('q'))).toBe('q: holds a character Postgres cannot compare (NUL or a lone surrogate)');
  });

  it('takes real calendar times only', () => {
    expect(reader('from=2026-12-06').time('from')?.toISOString()).toBe('2026-12-06T00:00:00.000Z');
    expect(reader('from=2026-12-06T18:30:00%2B02:00').time('from')?.toISOString()).toBe('2026-12-06T16:30:00.000Z');
    for (const bad of ['2026-02-30', '2026-13-01', '2026-12-06T25:00:00Z', '2026-12-06T18:00', 'yesterday', '0000-01-01'])
      expect(refusal(() => reader(`from=${encodeURIComponent(bad)}`).time('from'))).toBe(
        `from: must be a date (2026-12-06) or a date-time with a zone (2026-12-06T18:00:00Z) (got "${bad}")`,
      );
  });

  it('takes back the cursors it wrote, and refuses anything else', () => {
    const isPair = (value: unknown): value is [string, number] => Array.isArray(value) && value.length === 2;
    expect(reader(`after=${encodeCursor(['b', 2])}`).cursor('after', isPair)).toEqual(['b', 2]);
    for (const bad of ['not-base64!', encodeCursor({ a: 1 }), encodeCursor([1, 2, 3])])
      expect(refusal(() => reader(`after=${bad}`).cursor('after', isPair))).toBe(
        'after: not a position this page wrote; start again from the first page',
      );
  });
});
