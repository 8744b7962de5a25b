// A store that is away makes every queue retry report the same error: the log
// keeps the first report and then one line per interval with the count.
import { Writable } from 'node:stream';
import { expect, it, vi } from 'vitest';
import { createLogger } from '../src/ops/logger.js';
import { repeatedErrorLog } from '../src/ops/repeated-errors.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

const fields = (lines: Array<Record<string, unknown>>) =>
  lines.map(({ msg, error, times_since_last_line }) => ({ msg, error, times_since_last_line }));

it('logs the first of a run of equal queue errors, and a different one at once', () => {
  const { logger, lines } = capture();
  const report = repeatedErrorLog(logger, 'image-refresh', 60_000);
  for (let n = 0; n < 500; n++) report(new Error('database "x" does not exist'));
  report(new Error('terminating connection due to administrator command'));
  report(new Error('terminating connection due to administrator command'));
  logger.flush();
  expect(fields(lines)).toEqual([
    { msg: 'image-refresh: queue error', error: 'database "x" does not exist', times_since_last_line: undefined },
    { msg: 'image-refresh: queue error', error: 'terminating connection due to administrator command', times_since_last_line: undefined },
  ]);
});

it('logs a repeated error again once the interval has passed, saying how often it came in between', () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    const { logger, lines } = capture();
    const report = repeatedErrorLog(logger, 'image-list', 30_000);
    for (let n = 0; n < 3; n++) report(new Error('sorry, too many clients already'));
    vi.advanceTimersByTime(30_001);
    report(new Error('sorry, too many clients already'));
    logger.flush();
    expect(fields(lines)).toEqual([
      { msg: 'image-list: queue error', error: 'sorry, too many clients already', times_since_last_line: undefined },
      { msg: 'image-list: queue error', error: 'sorry, too many clients already', times_since_last_line: 2 },
    ]);
  } finally {
    vi.useRealTimers();
  }
});
