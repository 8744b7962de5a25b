// /ui/runs: recent runs with their counts and scope listings (in keyset pages),
// failures by cause over the last day and week, and how far behind each
// account's audit log is read.
import { describeSchedule } from '../../schedule/schedule.js';
import {
  auditLogLag,
  failuresByCause,
  recentRuns,
  runListings,
  type AuditLagRow,
  type FailureCause,
  type ListingRow,
  type RunRow,
} from '../../sql/uiRuns.js';
import { html, type Html } from '../html.js';
import { when, withQuery, type Page } from '../layout.js';
import type { PageRequest } from '../page-request.js';

const PAGE_SIZE = 50;
const PATH = '/ui/runs';

const COUNTS = [
  'planned',
  'attempted',
  'changed',
  'created',
  'deleted',
  'failed',
  'listings_failed',
  'unattempted',
] as const satisfies ReadonlyArray<keyof RunRow>;

function listingLine(listing: ListingRow): Html {
  const counted = (label: string, value: number | null) => (value === null ? '' : html`, ${label} <span class="num">${value}</span>`);
  return html`<li class="listing" id="listing-${listing.id}">
    scope <span class="scope">${listing.scope_name ?? listing.scope_key}</span> (${listing.account}):
    <span class="listing-status">${listing.status}</span
    >${counted('expected', listing.expected)}${counted('listed', listing.listed)}${counted(
      'absent',
      listing.absent,
    )}${listing.error ? html`; <span class="error">${listing.error}</span>` : ''}${
      listing.suspect ? html`; suspect: <span class="suspect">${listing.suspect}</span>` : ''
    }
  </li>`;
}

function runRows(run: RunRow, listings: ListingRow[]): Html {
  return html`<tr class="run" id="run-${run.id}">
      <td>${run.id}</td>
      <td class="status">${run.status}</td>
      <td>${run.kind}</td>
      <td>${run.account ?? 'every account'}</td>
      <td>${describeSchedule(run.schedule_key) ?? '–'}</td>
      <td>${when(run.started_at)}</td>
      <td>${when(run.finished_at)}</td>
      ${COUNTS.map((name) => html`<td class="num ${name}">${run[name]}</td>`)}
      <td class="error">${run.error ?? ''}</td>
    </tr>
    ${
      listings.length === 0
        ? ''
        : html`<tr class="listings">
            <td></td>
            <td colspan="${7 + COUNTS.length}">
              <ul>
                ${listings.map(listingLine)}
              </ul>
            </td>
          </tr>`
    }`;
}

function runsTable(runs: RunRow[], listings: ListingRow[]): Html {
  const byRun = Map.groupBy(listings, (listing) => listing.run_id);
  return html`<table id="runs">
    <thead>
      <tr>
        <th>run</th>
        <th>status</th>
        <th>kind</th>
        <th>account</th>
        <th>schedule</th>
        <th>started</th>
        <th>finished</th>
        ${COUNTS.map((name) => html`<th class="num">${name.replace('_', ' ')}</th>`)}
        <th>error</th>
      </tr>
    </thead>
    <tbody>
      ${runs.map((run) => runRows(run, byRun.get(run.id) ?? []))}
    </tbody>
  </table>`;
}

function failuresTable(id: string, causes: FailureCause[]): Html {
  if (causes.length === 0) return html`<p id="${id}" class="muted">None.</p>`;
  return html`<table id="${id}">
    <thead>
      <tr>
        <th>cause</th>
        <th class="num">refreshes</th>
        <th>latest</th>
        <th>its message</th>
      </tr>
    </thead>
    <tbody>
      ${causes.map(
        (cause) =>
          html`<tr class="cause">
            <td class="error-class">${cause.error_class}</td>
            <td class="num count">${cause.count}</td>
            <td>${when(cause.latest_at)}</td>
            <td class="message">${cause.latest_message}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A lag as text to the second (days, hours, minutes, seconds). */
function duration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const parts: Array<[number, string]> = [
    [Math.floor(whole / 86_400), 'd'],
    [Math.floor(whole / 3_600) % 24, 'h'],
    [Math.floor(whole / 60) % 60, 'min'],
    [whole % 60, 's'],
  ];
  const shown = parts.filter(([value]) => value > 0).map(([value, unit]) => `${value} ${unit}`);
  return shown.length === 0 ? '0 s' : shown.join(' ');
}

function lagTable(rows: AuditLagRow[]): Html {
  if (rows.length === 0) return html`<p id="audit-lag" class="muted">No account's audit log is followed yet.</p>`;
  return html`<table id="audit-lag">
    <thead>
      <tr>
        <th>account</th>
        <th>read to its end up to</th>
        <th>lag</th>
        <th>last error</th>
        <th>entries dated ahead</th>
        <th>read by</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) =>
          html`<tr class="lag">
            <td class="account">${row.account}</td>
            <td>${when(row.polled_at)}</td>
            <td class="lag-value">${row.lag_seconds === null ? 'not read to its end yet' : duration(row.lag_seconds)}</td>
            <td class="error">${row.last_error ?? ''}</td>
            <td>${row.ahead_count > 0 ? html`${row.ahead_count}, the furthest at ${when(row.ahead_at)}` : '0'}</td>
            <td>${row.lease_holder ? html`${row.lease_holder} until ${when(row.lease_until)}` : '–'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export async function runsPage({ query, read }: PageRequest): Promise<Page> {
  const before = query.integer('before', 1, Number.MAX_SAFE_INTEGER);
  const data = await read(async (tx) => {
    const runs = await recentRuns(tx, PAGE_SIZE, before);
    return {
      runs,
      listings: await runListings(
        tx,
        runs.map((run) => run.id),
      ),
      day: await failuresByCause(tx, '24 hours'),
      week: await failuresByCause(tx, '7 days'),
      lag: await auditLogLag(tx),
    };
  });
  const last = data.runs.at(-1);
  const next = data.runs.length === PAGE_SIZE && last ? withQuery(PATH, { before: last.id }) : undefined;
  const body = html`${runsTable(data.runs, data.listings)} ${data.runs.length === 0 ? html`<p id="no-runs">No run yet.</p>` : ''}
    <p class="pager">
      ${before !== undefined ? html`<a href="${PATH}">newest</a>` : ''}${next ? html`<a id="next" href="${next}">older ${PAGE_SIZE}</a>` : ''}
    </p>
    <h2>Failures by cause</h2>
    <p class="muted">Refreshes that gave up after their attempts (sync_failures), by error class.</p>
    <h3>Last 24 hours</h3>
    ${failuresTable('failures-day', data.day)}
    <h3>Last 7 days</h3>
    ${failuresTable('failures-week', data.week)}
    <h2>Audit log, per account</h2>
    <p class="muted">Lag: how long ago the log was last read to its end (every entry dated before then is stored).</p>
    ${lagTable(data.lag)}`;
  return { title: 'Runs', body };
}
