// Debian's Chromium driven by playwright-core: the browser of the web view's
// tests (browser.ts) and of its screenshot (scripts/ui-screenshot.ts).
// Playwright's own browser builds are downloaded from outside the package
// registries, which CI cannot reach; .ci/run installs Debian's package instead.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** No sandbox (CI runs as root), nothing fetched or synced by the browser itself: only the pages asked for are loaded. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium with a fresh profile of its own (playwright's launch makes one and removes it on close). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: the web view is tested in Debian's Chromium (apt-get install chromium; .ci/run installs it)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}
