import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeIsolating } from '../src/work/isolating-write.js';
import { every } from '../src/ops/periodic.js';

describe('writeIsolating', () => {
  const refusing = (bad: Set<number>) => {
    const calls: number[][] = [];
    const write = async (batch: number[]) => {
      calls.push(batch);
      if (batch.some((n) => bad.has(n))) throw Object.assign(new Error('value out of range'), { code: '22003' });
      return batch.map((n) => n * 10);
    };
    return { calls, write };
  };

  it('writes a clean batch in one call', async () => {
    const { calls, write } = refusing(new Set());
    expect(await writeIsolating([1, 2, 3], write)).toEqual({ written: [10, 20, 30], refused: [] });
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('isolates each refused item and keeps every other', async () => {
    const { write } = refusing(new Set([2, 7]));
    const result = await writeIsolating([1, 2, 3, 4, 5, 6, 7, 8], write);
    expect(result.written).toEqual([10, 30, 40, 50, 60, 80]);
    expect(result.refused.map((r) => r.item)).toEqual([2, 7]);
    expect((result.refused[0]!.error as Error).message).toBe('value out of range');
  });

  it('throws a transient store error for the whole batch, without splitting', async () => {
    const calls: number[][] = [];
    const away = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    await expect(
      writeIsolating([1, 2, 3], async (batch) => {
        calls.push(batch);
        throw away;
      }),
    ).rejects.toBe(away);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('makes no call for nothing', async () => {
    const { calls, write } = refusing(new Set());
    expect(await writeIsolating([], write)).toEqual({ written: [], refused: [] });
    expect(calls).toEqual([]);
  });
});

describe('every', () => {
  afterEach(() => vi.useRealTimers());

  it('runs at each interval, never two runs at once, and stop waits for the run in flight', async () => {
    vi.useFakeTimers();
    let started = 0;
    let finishRun: () => void = () => {};
    const loop = every(
      1000,
      () => {
        started += 1;
        return new Promise<void>((resolve) => (finishRun = resolve));
      },
      { onError: () => {} },
    );
    expect(started).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toBe(1);
    // The run is still going: the next two ticks are skipped, not queued.
    await vi.advanceTimersByTimeAsync(2000);
    expect(started).toBe(1);
    finishRun();
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toBe(2);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finishRun();
    await stopping;
    await vi.advanceTimersByTimeAsync(5000);
    expect(started).toBe(2);
  });

  it('runs at once when asked, reports a failure and goes on, and ends when the task says stop', async () => {
    vi.useFakeTimers();
    const errors: string[] = [];
    const answers: Array<unknown> = [new Error('Postgres away'), undefined, 'stop'];
    let runs = 0;
    every(
      500,
      () => {
        const answer = answers[runs++];
        if (answer instanceof Error) throw answer;
        return answer;
      },
      { now: true, onError: (error) => errors.push(error.message) },
    );
    await vi.advanceTimersByTimeAsync(0);
    expect([runs, errors]).toEqual([1, ['Postgres away']]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(3);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(3);
  });
});
