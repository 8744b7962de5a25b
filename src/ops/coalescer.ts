// Many calls, few writes: each add() is carried by the next flush, which runs
// at once when none has run for `gapMs`, else `gapMs` after the last ended.
// A burst of a hundred adds in a second then costs a few flushes, each told
// how many adds it carries, and every add settles with the flush that carried it.

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

export class Coalescer {
  private waiters: Waiter[] = [];
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastEnded = 0;

  constructor(
    private readonly gapMs: number,
    private readonly flush: (count: number) => Promise<void>,
  ) {}

  /** Settles when the flush that carries this add has. */
  add(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Flushes what is held now, and waits for any flush in flight. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    if (this.waiters.length > 0) await this.run();
  }

  private schedule(): void {
    if (this.running || this.timer) return;
    const wait = this.lastEnded + this.gapMs - Date.now();
    if (wait <= 0) {
      void this.run();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, wait);
  }

  private run(): Promise<void> {
    const carried = this.waiters;
    this.waiters = [];
    this.running = this.flush(carried.length)
      .then(
        () => carried.forEach((w) => w.resolve()),
        (error: unknown) => carried.forEach((w) => w.reject(error)),
      )
      .finally(() => {
        this.running = undefined;
        this.lastEnded = Date.now();
        if (this.waiters.length > 0) this.schedule();
      });
    return this.running;
  }
}
