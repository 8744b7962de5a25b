// What pages load besides themselves, served by the UI from memory: the stylesheet (the CSP allows no
// inline style) and an icon (else every browser asks for /favicon.ico and logs its 404).
export const STYLE_PATH = '/ui/style.css';
export const ICON_PATH = '/ui/icon.svg';

const STYLE = `
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --old: #fde2e2; --new: #dcfce7; --accent: #2563eb; }
@media (prefers-color-scheme: dark) { :root { --line: #374151; --old: #4c1d1d; --new: #14391f; --accent: #60a5fa; } }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; }
header { display: flex; gap: 1.2em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
header nav a { margin-right: .8em; }
header nav a[aria-current] { font-weight: 600; text-decoration: none; }
main { padding: 0 1.2em 2em; }
h1 { font-size: 1.3em; overflow-wrap: anywhere; }
h2 { font-size: 1.1em; margin-top: 1.6em; }
a { color: var(--accent); }
.muted, .estimate { color: var(--muted); }
.problem { padding: .8em; border: 1px solid #dc2626; }
table { border-collapse: collapse; width: 100%; margin: .6em 0; }
th, td { text-align: left; vertical-align: top; padding: .3em .5em; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.old { background: var(--old); }
.new { background: var(--new); }
form.filters { display: flex; flex-wrap: wrap; gap: .5em 1em; align-items: end; margin: .6em 0; }
form.filters label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
input, select, button { font: inherit; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre.json { white-space: pre-wrap; overflow-wrap: anywhere; padding: .8em; border: 1px solid var(--line); }
.tag { display: inline-block; margin: 0 .3em .2em 0; padding: 0 .35em; border: 1px solid var(--line); border-radius: 3px; }
.version { border-left: 3px solid var(--line); padding-left: .8em; margin: 1em 0; }
.pager { display: flex; gap: 1.5em; }
/* A value's own direction marks (U+202E in a name) never turn the text around it. */
td, dd, h1, option { unicode-bidi: plaintext; }
`;

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2563eb"/><path d="M4 8h8M8 4v8" stroke="#fff" stroke-width="2"/></svg>`;

/** Each asset by its path, with its content type. */
export const ASSETS: ReadonlyMap<string, { type: string; body: string }> = new Map([
  [STYLE_PATH, { type: 'text/css; charset=utf-8', body: STYLE }],
  [ICON_PATH, { type: 'image/svg+xml', body: ICON }],
]);
