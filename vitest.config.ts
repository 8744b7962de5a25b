import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files of pure rules and units: no Postgres, Redis, HTTP server or child process. `npm run test:unit` runs
 * only these (in seconds); a file that starts to need a service moves out of this list.
 */
const UNIT = [
  'test/audit-cursor.test.ts',
  'test/audit-page.test.ts',
  'test/compile-cache.test.ts',
  'test/docs.test.ts',
  'test/frame-helpers.test.ts',
  'test/paced-client.test.ts',
  'test/image-diff.test.ts',
  'test/image-kinds.test.ts',
  'test/image-payload.test.ts',
  'test/list-page.test.ts',
  'test/progress.test.ts',
  'test/redis-keys.test.ts',
  'test/rate-limiter-late-slots.test.ts',
  'test/rate-limiter-store-away.test.ts',
  'test/retry-policy.test.ts',
  'test/refresh-settle.test.ts',
  'test/repeated-errors.test.ts',
  'test/scope-rules.test.ts',
  'test/targets.test.ts',
  'test/terminal-output.test.ts',
];

/**
 * Files that take a minute or more on their own (the benchmark at quick scale, every command started
 * dozens of times, embedded servers started and killed). They start first: one of them started last
 * would run on alone for its minutes while the other workers sit idle. Vitest orders by the last run's
 * durations only where it kept them, which a fresh clone has not.
 */
const LONG = [
  'test/bench.test.ts',
  'test/cli.test.ts',
  'test/embedded.test.ts',
  'test/infrastructure.test.ts',
  'test/input-ranges.test.ts',
];

class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = LONG.findIndex((name) => file.moduleId.endsWith(name));
      return at === -1 ? LONG.length : at;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    // Limits for a machine whose cores are busy, not bounds on how quick a test is: a test waits for events
    // (test/support/throwaway.ts waitFor), and a quiet machine runs nearly every one in seconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The files mostly wait on Postgres, Redis, HTTP and child processes, and each has its own database and
    // queue prefix (test/support/env.ts): four at a time on two cores, where vitest's default is one.
    maxWorkers: 4,
    sequence: { sequencer: LongFilesFirst },
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      // Postgres and Redis found (or the embedded PostgreSQL started) once for the run: only when these files run.
      {
        extends: true,
        test: { name: 'services', include: ['test/**/*.test.ts'], exclude: UNIT, globalSetup: ['test/support/services.ts'] },
      },
    ],
  },
});
