// /ui/runs: to be written.
import { html } from '../html.js';
import type { Page } from '../layout.js';
import type { PageRequest } from '../page-request.js';

export function runsPage(_request: PageRequest): Promise<Page> {
  return Promise.resolve({ title: 'Runs', body: html`<p>to come</p>` });
}
