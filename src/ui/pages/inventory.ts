// /ui: every live image (or those deleted lately), filtered, in keyset pages.
import { imageKinds } from '../../images/image-kinds.js';
import {
  EXACT_COUNT_CAP,
  inventoryCount,
  inventoryPage as readInventory,
  type InventoryCursor,
  type InventoryQuery,
  type InventorySort,
} from '../../sql/uiInventory.js';
import { html, type Html } from '../html.js';
import { imagePath, when, withQuery, type Page } from '../layout.js';
import { encodeCursor, type QueryReader } from '../query.js';
import { UiInputError } from '../page-errors.js';
import type { PageRequest } from '../page-request.js';

const PAGE_SIZE = 50;
const SORTS: readonly InventorySort[] = ['name', 'changed'];
const OWNERSHIP = ['own', 'other'] as const;

const PG_INT = (value: unknown) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 2_147_483_647;
/** Text Postgres can hold: no NUL, no lone surrogate. */
const storable = (value: unknown) => typeof value === 'string' && !value.includes('\0') && !/[\ud800-\udfff]/u.test(value);

const isCursor = (value: unknown): value is InventoryCursor =>
  Array.isArray(value) && value.length === 4 && storable(value[0]) && PG_INT(value[1]) && PG_INT(value[2]) && storable(value[3]);

/** The filters as the form and the links carry them, and as SQL takes them. */
function readFilters(query: QueryReader): { params: Record<string, string | undefined>; sql: InventoryQuery } {
  const tagText = query.text('tag');
  const eq = tagText?.indexOf('=') ?? -1;
  const tag = tagText === undefined ? undefined : eq < 0 ? { key: tagText } : { key: tagText.slice(0, eq), value: tagText.slice(eq + 1) };
  if (tag && tag.key === '') throw new UiInputError('tag: give a key, or key=value');
  const kinds = imageKinds().map((k) => k.name);
  const owned = query.oneOf('owned', OWNERSHIP);
  const unused = query.oneOf('unused', ['1']);
  const sql: InventoryQuery = {
    account: query.text('account'),
    projectId: query.integer('project'),
    regionId: query.integer('region'),
    kind: query.oneOf('kind', kinds),
    owned: owned === undefined ? undefined : owned === 'own',
    os: query.text('os'),
    tag,
    search: query.text('q'),
    unused: unused === '1' || undefined,
    deletedWithinDays: query.integer('deleted', 1, 36_500),
    sort: query.oneOf('sort', SORTS) ?? 'name',
    after: query.cursor('after', isCursor),
    limit: PAGE_SIZE,
  };
  // The last change's time, in the order by last change: a time the page wrote (microseconds, UTC).
  if (sql.after && sql.sort === 'changed' && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(sql.after[0]))
    throw new UiInputError('after: not a position this page wrote; start again from the first page');
  const params: Record<string, string | undefined> = {
    account: sql.account,
    project: sql.projectId?.toString(),
    region: sql.regionId?.toString(),
    kind: sql.kind,
    owned,
    os: sql.os,
    tag: tagText,
    q: sql.search,
    unused,
    deleted: sql.deletedWithinDays?.toString(),
    sort: sql.sort === 'name' ? undefined : sql.sort,
  };
  return { params, sql };
}

function filterForm(params: Record<string, string | undefined>): Html {
  const input = (name: string, label: string, placeholder = '', size = 12) =>
    html`<label>${label}<input name="${name}" value="${params[name] ?? ''}" placeholder="${placeholder}" size="${size}" /></label>`;
  const select = (name: string, label: string, options: Array<[string, string]>) =>
    html`<label
      >${label}<select name="${name}">
        ${options.map(
          ([value, text]) =>
            html`<option value="${value}" ${params[name] === value || (!params[name] && value === '') ? html` selected` : ''}>
              ${text}
            </option>`,
        )}
      </select></label
    >`;
  return html`<form class="filters" method="get" action="/ui">
    ${input('q', 'name or id', 'text in the name, or an id', 24)} ${input('account', 'account')} ${input('project', 'project id', '', 8)}
    ${input('region', 'region id', '', 8)}
    ${select('kind', 'kind', [['', 'any'], ...imageKinds().map((k): [string, string] => [k.name, k.name])])}
    ${select('owned', 'whose', [
      ['', 'any'],
      ['own', "the project's own"],
      ['other', 'public or shared'],
    ])}
    ${input('os', 'OS distro', 'ubuntu', 10)} ${input('tag', 'tag', 'key or key=value', 14)}
    ${select('unused', 'use', [
      ['', 'any'],
      ['1', 'unused'],
    ])}
    ${input('deleted', 'deleted in the last N days', 'live', 6)}
    ${select('sort', 'order', [
      ['', 'name'],
      ['changed', 'last changed'],
    ])}
    <button type="submit">Show</button> <a href="/ui">clear</a>
  </form>`;
}

export async function inventoryPage({ query, read }: PageRequest): Promise<Page> {
  const { params, sql } = readFilters(query);
  // The page and its count side by side, each in a read of its own: the page waits for the slower, not for both.
  const [rows, count] = await Promise.all([read((tx) => readInventory(tx, sql)), read((tx) => inventoryCount(tx, sql))]);
  const last = rows.at(-1);
  const next =
    rows.length === PAGE_SIZE && last
      ? withQuery('/ui', { ...params, after: encodeCursor([last.sort_key, last.project_id, last.region_id, last.image_id]) })
      : undefined;
  const what = sql.deletedWithinDays === undefined ? 'live images' : `images deleted in the last ${sql.deletedWithinDays} days`;
  const why = {
    many: `more than ${EXACT_COUNT_CAP.toLocaleString('en')} match`,
    slow: 'counting them exactly would take too long; it can be far off',
  };
  const counted =
    count.estimated === undefined
      ? html`<strong>${count.count.toLocaleString('en')}</strong> ${what} match`
      : html`<strong class="estimate">about ${count.count.toLocaleString('en')}</strong> ${what} match
          <span class="estimate">(the planner's estimate: ${why[count.estimated]})</span>`;
  const body = html`${filterForm(params)}
    <p id="count">${counted}${sql.after ? ' (showing a later page)' : ''}</p>
    <table id="inventory">
      <thead>
        <tr>
          <th>name</th>
          <th>kind</th>
          <th>project / region</th>
          <th>OS</th>
          <th>whose</th>
          <th>status</th>
          <th>tags</th>
          <th>account</th>
          <th>last changed</th>
          <th>${sql.deletedWithinDays === undefined ? 'last seen' : 'deleted'}</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (row) =>
            html`<tr>
              <td><a href="${imagePath(row)}">${row.name}</a><br /><span class="muted">${row.image_id}</span></td>
              <td>${row.kind}</td>
              <td>${row.project_id} / ${row.region_id}${row.region ? html`<br /><span class="muted">${row.region}</span>` : ''}</td>
              <td>${[row.os_distro, row.os_version].filter(Boolean).join(' ') || '–'}</td>
              <td>${row.owned ? 'own' : row.visibility}</td>
              <td>${row.status}</td>
              <td>${row.tags.map((tag) => html`<span class="tag">${tag}</span>`)}</td>
              <td>${row.account}</td>
              <td>${when(row.last_changed_at)}</td>
              <td>${when(row.deleted_at ?? row.last_seen_at)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${rows.length === 0 ? html`<p>No image matches.</p>` : ''}
    <p class="pager">
      ${sql.after ? html`<a href="${withQuery('/ui', params)}">first page</a>` : ''}${next ? html`<a id="next" href="${next}">next ${PAGE_SIZE}</a>` : ''}
    </p>`;
  return { title: 'Inventory', body };
}
