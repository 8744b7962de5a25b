import { describe, expect, it } from 'vitest';
import { progressReporter } from '../src/ops/progress.js';
import {
  describeCounts,
  describeUnfinished,
  doneOf,
  onlyStoppedRemain,
  rejectedKeysError,
  runExitCode,
  runSummary,
  totalOf,
} from '../src/ops/run-summary.js';
import type { RunProgress } from '../src/sql/getRun.js';

function stream(isTTY: boolean) {
  const written: string[] = [];
  return { written, stream: { isTTY, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream };
}

describe('sync progress', () => {
  it('rewrites one line on a terminal with done/total, rate and ETA', () => {
    const { written, stream: out } = stream(true);
    let now = 0;
    const progress = progressReporter(out, 'run 7', () => now);
    now = 2000;
    progress.update(50, 200);
    progress.update(50, 200);
    now = 4000;
    progress.update(100, 200);
    progress.finish();
    expect(written).toEqual([
      '\rrun 7: 50/200 refreshed, 25.0/s, ETA 6 s\u001b[K',
      '\rrun 7: 100/200 refreshed, 25.0/s, ETA 4 s\u001b[K',
      '\n',
    ]);
  });

  it('writes plain lines elsewhere', () => {
    const { written, stream: out } = stream(false);
    let now = 0;
    const progress = progressReporter(out, 'run 8', () => now);
    progress.update(0, 10);
    now = 1000;
    progress.update(10, 10);
    progress.finish();
    expect(written).toEqual(['run 8: 0/10 refreshed, 0.0/s, ETA ?\n', 'run 8: 10/10 refreshed, 10.0/s, ETA 0 s\n']);
  });
});

const run = (counts: Partial<RunProgress> = {}): RunProgress => ({
  id: 4,
  status: 'finished',
  kind: 'manual',
  scheduleKey: null,
  account: null,
  startedAt: '2026-01-01T00:00:00Z',
  finishedAt: '2026-01-01T00:01:00Z',
  planned: 0,
  error: null,
  unchanged: 0,
  changed: 0,
  created: 0,
  deleted: 0,
  failed: 0,
  markedLeft: 0,
  discovered: 0,
  listed: 0,
  listingsFailed: 0,
  unattempted: 0,
  listingsUnfinished: 0,
  ...counts,
});

describe('run summary', () => {
  it('counts what a discovery scope stored: the targets it found count in the total, the first sightings among the changes', () => {
    const found = run({ discovered: 37, listed: 37, changed: 37, created: 37 });
    expect(runSummary(found)).toBe(
      'run 4: 37/37 refreshed: 37 changed (37 created), 0 unchanged, 0 deleted, 0 failed; scope listings: 37 listed, 37 newly discovered, 0 marked left',
    );
    expect([doneOf(found), totalOf(found), runExitCode(found)]).toEqual([37, 37, 0]);
  });

  it('reads as before for a run without listings or first sightings', () => {
    const again = run({ planned: 2, unchanged: 1, changed: 1 });
    expect(runSummary(again)).toBe('run 4: 2/2 refreshed: 1 changed, 1 unchanged, 0 deleted, 0 failed');
    expect(describeCounts(run({ listingsFailed: 1 }))).toBe(
      '0 changed, 0 unchanged, 0 deleted, 0 failed; 1 scope listings incomplete (nothing deleted or confirmed there)',
    );
  });

  it('says what a run closed incomplete left queued, and why, and exits 1', () => {
    const closed = run({
      status: 'incomplete',
      planned: 600,
      changed: 400,
      created: 400,
      failed: 3,
      unattempted: 197,
      listingsUnfinished: 1,
      error: 'the API rejected GCORE_API_KEY_STAGING (401), the key of account staging',
    });
    expect(runSummary(closed)).toBe(
      'run 4: 403/600 refreshed: 400 changed (400 created), 0 unchanged, 0 deleted, 3 failed; INCOMPLETE: the API rejected ' +
        'GCORE_API_KEY_STAGING (401), the key of account staging: 197 refreshes and 1 scope listing not done stay queued for a worker with a valid key',
    );
    expect(runExitCode(closed)).toBe(1);
    expect(runExitCode(run({ failed: 1 }))).toBe(1);
    expect(runExitCode(run({ listingsFailed: 1 }))).toBe(1);
    expect(describeUnfinished(run({ unattempted: 5 }))).toBe('');
    expect(describeUnfinished(run({ status: 'incomplete', error: 'why' }))).toBe('; INCOMPLETE: why');
  });

  it('names every rejected account by its key variable, never anything else', () => {
    expect(
      rejectedKeysError([
        { name: 'staging', apiKeyEnv: 'GCORE_API_KEY_STAGING' },
        { name: 'qa', apiKeyEnv: 'GCORE_API_KEY_QA' },
      ]),
    ).toBe('the API rejected GCORE_API_KEY_QA (401), the key of account qa; and GCORE_API_KEY_STAGING (401), the key of account staging');
  });
});

describe('when a wait may stop short of a finished run', () => {
  const stopped = new Set(['staging']);
  it('stops once all the work left is of accounts this process no longer serves', () => {
    expect(onlyStoppedRemain([{ account: 'staging' }], stopped)).toBe(true);
  });
  it('waits while any other account has work left, and leaves a run with nothing left to be finished', () => {
    expect(onlyStoppedRemain([{ account: 'prod' }, { account: 'staging' }], stopped)).toBe(false);
    expect(onlyStoppedRemain([{ account: 'prod' }], stopped)).toBe(false);
    expect(onlyStoppedRemain([], stopped)).toBe(false);
    expect(onlyStoppedRemain([{ account: 'staging' }], new Set())).toBe(false);
  });
});
