// /ui/changes: to be written.
import { html } from '../html.js';
import type { Page } from '../layout.js';
import type { PageRequest } from '../page-request.js';

export function changesPage(_request: PageRequest): Promise<Page> {
  return Promise.resolve({ title: 'Changes', body: html`<p>to come</p>` });
}
