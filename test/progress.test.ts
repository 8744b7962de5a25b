import { describe, expect, it } from 'vitest';
import { progressReporter } from '../src/progress.js';

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
