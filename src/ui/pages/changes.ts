// /ui/changes: the fleet's change feed (image_change_log, newest first, in
// keyset pages), filtered; and what changed between two dates, from the audit
// snapshots in force at each.
import { imageKinds } from '../../images/image-kinds.js';
import { CHANGE_TYPES } from '../../interfaces.js';
import {
  ACTOR_SEARCH_LIMIT,
  changeFeed,
  snapshotAtOrBefore,
  snapshotDifferences,
  type ChangesCursor,
  type ChangesQuery,
  type FeedRow,
  type SnapshotRow,
} from '../../sql/uiChanges.js';
import { html, type Html } from '../html.js';
import { actor, imagePath, jsonText, when, withQuery, type Page } from '../layout.js';
import { encodeCursor, type QueryReader } from '../query.js';
import { UiInputError } from '../page-errors.js';
import type { PageRequest } from '../page-request.js';

const PAGE_SIZE = 50;
const PATH = '/ui/changes';
/** Differences between snapshots shown at most: a whole fleet can differ. */
const DIFF_ROWS = 500;

const isCursor = (value: unknown): value is ChangesCursor =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isSafeInteger(value[1]);

/** The filters as the form and the links carry them, and as SQL takes them. */
function readFilters(query: QueryReader): { params: Record<string, string | undefined>; sql: ChangesQuery } {
  const sql: ChangesQuery = {
    from: query.time('from'),
    to: query.time('to'),
    account: query.text('account'),
    actor: query.text('actor'),
    field: query.text('field'),
    kind: query.oneOf(
      'kind',
      imageKinds().map((k) => k.name),
    ),
    changeType: query.oneOf('type', CHANGE_TYPES),
    after: query.cursor('after', isCursor),
    limit: PAGE_SIZE,
  };
  const params = {
    from: query.text('from'),
    to: query.text('to'),
    account: sql.account,
    actor: sql.actor,
    field: sql.field,
    kind: sql.kind,
    type: sql.changeType,
  };
  return { params, sql };
}

function input(params: Record<string, string | undefined>, name: string, label: string, placeholder = '', size = 14): Html {
  return html`<label>${label}<input name="${name}" value="${params[name] ?? ''}" placeholder="${placeholder}" size="${size}" /></label>`;
}

function select(params: Record<string, string | undefined>, name: string, label: string, values: readonly string[]): Html {
  return html`<label
    >${label}<select name="${name}">
      ${['', ...values].map(
        (value) => html`<option value="${value}" ${(params[name] ?? '') === value ? html` selected` : ''}>${value || 'any'}</option>`,
      )}
    </select></label
  >`;
}

function filterForm(params: Record<string, string | undefined>): Html {
  return html`<form class="filters" method="get" action="${PATH}">
    ${input(params, 'from', 'from', '2026-12-06', 22)} ${input(params, 'to', 'before', '2026-12-07T18:00:00Z', 22)}
    ${input(params, 'account', 'account')} ${input(params, 'actor', 'who (email)', 'alice@example.com', 20)}
    ${input(params, 'field', 'field', 'name, or tags. for any tag')}
    ${select(
      params,
      'kind',
      'kind',
      imageKinds().map((k) => k.name),
    )}
    ${select(params, 'type', 'change', CHANGE_TYPES)}
    <button type="submit">Show</button> <a href="${PATH}">clear</a>
  </form>`;
}

function what(row: FeedRow): Html {
  if (row.change_type !== 'updated') return html`<span class="type">${row.change_type}</span>`;
  return html`<span class="field">${row.field}</span> <span class="old">${jsonText(row.old_value)}</span> →
    <span class="new">${jsonText(row.new_value)}</span>`;
}

function feedTable(rows: FeedRow[]): Html {
  return html`<table id="changes">
    <thead>
      <tr>
        <th>seen at</th>
        <th>image</th>
        <th>change</th>
        <th>who</th>
        <th>account</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) =>
          html`<tr class="change" id="change-${row.id}">
            <td class="time">${when(row.changed_at)}</td>
            <td class="image"><a href="${imagePath(row)}">${row.image_name ?? row.image_id}</a></td>
            <td class="what">${what(row)}</td>
            <td class="who">${actor(row)}</td>
            <td class="account">${row.account ?? '–'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The two dates to compare, both or neither. */
function readDiffDates(query: QueryReader): { params: Record<string, string | undefined>; dates?: [Date, Date] } {
  const [a, b] = [query.time('diff_from'), query.time('diff_to')];
  const params = { diff_from: query.text('diff_from'), diff_to: query.text('diff_to') };
  if ((a === undefined) !== (b === undefined))
    throw new UiInputError(`${a === undefined ? 'diff_from' : 'diff_to'}: give both dates to compare (diff_from and diff_to)`);
  return { params, dates: a && b ? [a, b] : undefined };
}

function diffForm(params: Record<string, string | undefined>): Html {
  return html`<form class="filters" method="get" action="${PATH}">
    ${input(params, 'diff_from', 'from', '2026-12-01', 22)} ${input(params, 'diff_to', 'to', '2026-12-06', 22)}
    <button type="submit">Compare</button>
  </form>`;
}

type DiffResult = { missing: Date } | { a: SnapshotRow; b: SnapshotRow; rows: Awaited<ReturnType<typeof snapshotDifferences>> };

function snapshotLabel(snapshot: SnapshotRow): Html {
  return html`snapshot ${snapshot.id}, taken ${when(snapshot.taken_at)} (${snapshot.image_count.toLocaleString('en')} images)`;
}

function diffSection(result: DiffResult): Html {
  if ('missing' in result)
    return html`<p id="snapshot-diff" class="problem">No audit snapshot was taken at or before ${when(result.missing)}.</p>`;
  const { a, b, rows } = result;
  const total = rows[0]?.total ?? 0;
  return html`<p id="snapshots-used">
      From <span id="snapshot-a">${snapshotLabel(a)}</span> to <span id="snapshot-b">${snapshotLabel(b)}</span>:
      ${total.toLocaleString('en')} images differ${total > rows.length ? `, the first ${rows.length} shown` : ''}.
    </p>
    ${
      rows.length === 0
        ? ''
        : html`<table id="snapshot-diff">
            <thead>
              <tr>
                <th>image</th>
                <th>difference</th>
                <th>versions</th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (row) =>
                  html`<tr class="difference">
                    <td class="image"><a href="${imagePath(row)}">${row.image_name ?? row.image_id}</a></td>
                    <td class="difference-type">${row.difference}</td>
                    <td>
                      ${
                        row.version_a && row.version_b
                          ? html`<a href="${withQuery(imagePath(row, '/diff'), { a: row.version_a, b: row.version_b })}"
                              >${row.version_a} → ${row.version_b}</a
                            >`
                          : (row.version_a ?? row.version_b)
                      }
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }`;
}

export async function changesPage({ query, read }: PageRequest): Promise<Page> {
  const { params, sql } = readFilters(query);
  const diff = readDiffDates(query);
  const { feed, compared } = await read(async (tx) => {
    const compare = async (dates: [Date, Date]): Promise<DiffResult> => {
      const [a, b] = [await snapshotAtOrBefore(tx, dates[0]), await snapshotAtOrBefore(tx, dates[1])];
      if (!a || !b) return { missing: a ? dates[1] : dates[0] };
      return { a, b, rows: await snapshotDifferences(tx, a.id, b.id, DIFF_ROWS) };
    };
    return { feed: await changeFeed(tx, sql), compared: diff.dates && (await compare(diff.dates)) };
  });
  const { rows, cutShort } = feed;
  const next = feed.next && withQuery(PATH, { ...params, after: encodeCursor(feed.next) });
  const body = html`${filterForm(params)} ${feedTable(rows)}
    ${rows.length === 0 && !cutShort ? html`<p id="no-changes">No change matches.</p>` : ''}
    ${
      cutShort
        ? html`<p id="cut-short" class="muted">
            This page looked at ${ACTOR_SEARCH_LIMIT.toLocaleString('en')} changes an audit-log entry of ${sql.actor} may explain, and
            stopped; older ones may match: see the next page.
          </p>`
        : ''
    }
    <p class="pager">
      ${sql.after ? html`<a href="${withQuery(PATH, params)}">newest</a>` : ''}${
        next ? html`<a id="next" href="${next}">next ${PAGE_SIZE}</a>` : ''
      }
    </p>
    <h2>What changed between two dates</h2>
    <p class="muted">Compares the audit snapshots in force at each date: the latest taken at or before it.</p>
    ${diffForm(diff.params)} ${compared ? diffSection(compared) : ''}`;
  return { title: 'Changes', body };
}
