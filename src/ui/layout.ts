// The frame every page shares, and the small pieces pages are made of: links
// to an image, times, JSON as text. Everything here goes through `html`.
import { html, type Html } from './html.js';
import { ICON_PATH, STYLE_PATH } from './assets.js';

export interface Page {
  title: string;
  body: Html;
  status?: number;
}

const NAV = [
  ['/ui', 'Inventory'],
  ['/ui/changes', 'Changes'],
  ['/ui/runs', 'Runs'],
] as const;

export function document(page: Page, current: string): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${page.title} · gcore-image-sync</title>
        <link rel="stylesheet" href="${STYLE_PATH}" />
        <link rel="icon" href="${ICON_PATH}" />
      </head>
      <body>
        <header>
          <strong>gcore-image-sync</strong>
          <nav>
            ${NAV.map(([href, label]) => html`<a href="${href}" ${current === href ? html` aria-current="page"` : ''}>${label}</a> `)}
          </nav>
          <span class="muted">read-only</span>
        </header>
        <main>
          <h1>${page.title}</h1>
          ${page.body}
        </main>
      </body>
    </html> `.text;
}

/** Where an image's timeline is: each part of the triple a path segment of its own. */
export function imagePath(image: { project_id: number; region_id: number; image_id: string }, rest = ''): string {
  return `/ui/images/${image.project_id}/${image.region_id}/${encodeURIComponent(image.image_id)}${rest}`;
}

/** A path with a query string of the non-empty values given. */
export function withQuery(path: string, params: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') query.set(key, String(value));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** A time in UTC to the second, as text; a dash for none. */
export function when(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '–';
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A JSON value as text for a cell: strings bare, the rest as JSON; a dash for null. */
export function jsonText(value: unknown): string {
  if (value === null || value === undefined) return '–';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A definition list of label and value pairs; null values show as a dash. */
export function facts(rows: Array<[string, string | number | boolean | Html | null | undefined]>): Html {
  const shown = (value: string | number | boolean | Html | null | undefined) =>
    typeof value === 'boolean' ? (value ? 'yes' : 'no') : (value ?? '–');
  return html`<dl class="facts">
    ${rows.map(
      ([label, value]) =>
        html`<dt>${label}</dt>
          <dd>${shown(value)}</dd>`,
    )}
  </dl>`;
}

/** A table of rows of cells under the headings given; `id` names it for links and tests. */
export function table(id: string, headings: string[], rows: Array<Array<Html | string | number | null>>): Html {
  return html`<table id="${id}">
    <thead>
      <tr>
        ${headings.map((heading) => html`<th>${heading}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (cells) =>
          html`<tr>
            ${cells.map((cell) => html`<td>${cell ?? '–'}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** What image_change_log says of who made a change. */
export interface Attribution {
  actor_email: string | null;
  actor_user_id: string | null;
  action_type: string | null;
  actor_candidates: number;
}

/** Who made a change and by which action; "unknown" when no audit-log entry fits, "latest of N" when several do. */
export function actor(change: Attribution): Html {
  if (change.actor_email === null && change.actor_user_id === null) return html`<span class="muted">unknown</span>`;
  const who = change.actor_email ?? `user ${change.actor_user_id}`;
  const doubt =
    change.actor_candidates > 1 ? html` <span class="muted">(latest of ${change.actor_candidates} entries that could have)</span>` : '';
  return html`<span class="actor">${who}</span> <span class="muted">${change.action_type ?? ''}</span>${doubt}`;
}
