// targets -> schedule against real Postgres and Redis: idempotent, safe from
// two processes at once, and never two queued refreshes of one triple.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Target } from '../src/interfaces.js';
import { queueRefreshes } from '../src/work/fan-out.js';
import { SNAPSHOT_JOB } from '../src/queues/queue.js';
import { releaseClaims } from '../src/sql/releaseClaims.js';
import { reconcile } from '../src/schedule/reconcile.js';
import { schedulerId } from '../src/schedule/schedule.js';
import { openServices, type Services } from '../src/queues/services.js';
import { parseTargets } from '../src/config/targets.js';
import { createTestEnv, type TestEnv } from './support/env.js';

let env: TestEnv;
let first: Services;
let second: Services;

const QUIET = '{ cron: "0 0 1 1 *" }';

function targetsFor(yaml: string): Target[] {
  return parseTargets(yaml, 'targets.yaml');
}

const initial = targetsFor(`schedule: ${QUIET}
targets:
  - { project_id: 1, region_id: 7, image_ids: [a, b, c] }
  - { project_id: 1, region_id: 8, image_ids: [d], schedule: { cron: "0 3 1 1 *", tz: Europe/Berlin } }
  - { project_id: 2, region_id: 7, image_ids: [e], schedule: { cron: "0 4 1 1 *" } }
`);

async function targetRows(services: Services) {
  return services.sql`SELECT project_id, region_id, image_id, schedule_key FROM targets ORDER BY 1, 2, 3`;
}

async function schedulerIds(services: Services): Promise<string[]> {
  return (await services.queues.schedule.getJobSchedulers(0, -1)).map((s) => s.key).sort();
}

/** The ids of this deployment's schedulers for the audit snapshot and these groups. */
function ownSchedulerIds(groups: string[]): string[] {
  return ['audit-snapshot', ...groups.map(schedulerId)].map((id) => `${id}-${first.deployment}`).sort();
}

beforeAll(async () => {
  env = await createTestEnv();
  first = await openServices(env.config());
  second = await openServices(env.config());
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await env?.cleanup();
});

describe('reconcile', () => {
  it('schedules one Job Scheduler per schedule group and stores every target', async () => {
    const result = await reconcile(first.sql, first.queues, initial);
    expect(result).toEqual({ targets: { added: 5, rescheduled: 0, removed: 0 }, schedulers: { upserted: 3, removed: 0 } });
    expect(await schedulerIds(first)).toEqual(
      ownSchedulerIds(['cron 0 0 1 1 * UTC', 'cron 0 3 1 1 * Europe/Berlin', 'cron 0 4 1 1 * UTC']),
    );
    expect(await targetRows(first)).toEqual([
      { project_id: 1, region_id: 7, image_id: 'a', schedule_key: 'cron 0 0 1 1 * UTC' },
      { project_id: 1, region_id: 7, image_id: 'b', schedule_key: 'cron 0 0 1 1 * UTC' },
      { project_id: 1, region_id: 7, image_id: 'c', schedule_key: 'cron 0 0 1 1 * UTC' },
      { project_id: 1, region_id: 8, image_id: 'd', schedule_key: 'cron 0 3 1 1 * Europe/Berlin' },
      { project_id: 2, region_id: 7, image_id: 'e', schedule_key: 'cron 0 4 1 1 * UTC' },
    ]);
  });

  it('changes nothing more when run again, or from two processes at once', async () => {
    const before = await targetRows(first);
    const [a, b] = await Promise.all([reconcile(first.sql, first.queues, initial), reconcile(second.sql, second.queues, initial)]);
    expect(a.targets).toEqual({ added: 0, rescheduled: 0, removed: 0 });
    expect(b.targets).toEqual({ added: 0, rescheduled: 0, removed: 0 });
    expect(await targetRows(first)).toEqual(before);
    expect(await first.queues.schedule.getJobSchedulersCount()).toBe(4);
    // Each scheduler (three groups and the audit snapshot) holds exactly one delayed job.
    expect(await first.queues.schedule.getDelayedCount()).toBe(4);
  });

  it('reschedules changed entries and unschedules removed ones', async () => {
    const next = targetsFor(`schedule: ${QUIET}
targets:
  - { project_id: 1, region_id: 7, image_ids: [a, c] }
  - { project_id: 1, region_id: 8, image_ids: [d], schedule: { cron: "0 5 1 1 *" } }
`);
    const result = await reconcile(first.sql, first.queues, next);
    expect(result).toEqual({ targets: { added: 0, rescheduled: 1, removed: 2 }, schedulers: { upserted: 2, removed: 2 } });
    expect(await schedulerIds(first)).toEqual(ownSchedulerIds(['cron 0 0 1 1 * UTC', 'cron 0 5 1 1 * UTC']));
    expect((await targetRows(first)).map((t) => `${t.image_id}:${t.schedule_key}`)).toEqual([
      'a:cron 0 0 1 1 * UTC',
      'c:cron 0 0 1 1 * UTC',
      'd:cron 0 5 1 1 * UTC',
    ]);
    expect(await first.queues.schedule.getDelayedCount()).toBe(3);
  });

  it('never queues two refreshes of one triple, however many ask at once', async () => {
    const counts = await Promise.all([
      queueRefreshes(first.sql, first.queues, { scheduleKey: null }, 'a', 2),
      queueRefreshes(second.sql, second.queues, { scheduleKey: null }, 'b', 2),
      queueRefreshes(first.sql, first.queues, { scheduleKey: 'cron 0 0 1 1 * UTC' }, 'c', 2),
    ]);
    expect(counts.reduce((sum, c) => sum + c.queued, 0)).toBe(3);
    expect(await queuedImageIds()).toEqual(['a', 'c', 'd']);
    expect(await queueRefreshes(first.sql, first.queues, { scheduleKey: null }, 'again', 2)).toEqual({ queued: 0, recovered: 0 });
  });

  it('queues a target once more while its batch runs, and recovers claims of a lost job', async () => {
    const [waiting] = await first.queues.refresh.getWaiting();
    await releaseClaims(first.sql, [waiting!.id!]);
    const again = await queueRefreshes(first.sql, first.queues, { scheduleKey: null }, 'during', 50);
    expect(again.queued).toBe(waiting!.data.items.length);
    expect(await queueRefreshes(first.sql, first.queues, { scheduleKey: null }, 'once-more', 50)).toEqual({ queued: 0, recovered: 0 });

    await first.queues.refresh.obliterate({ force: true });
    await first.sql`UPDATE targets SET queued_at = now() - interval '2 minutes'`;
    const recovered = await queueRefreshes(first.sql, first.queues, { scheduleKey: null }, 'after-loss', 50);
    expect(recovered).toEqual({ queued: 3, recovered: 3 });
    expect(await queuedImageIds()).toEqual(['a', 'c', 'd']);
  });

  it("replaces the schedulers of an older release, and leaves another deployment's alone", async () => {
    const other = randomUUID();
    const nightly = { pattern: '0 0 * * *', tz: 'UTC' };
    await first.queues.schedule.upsertJobScheduler('audit-snapshot', nightly, { name: SNAPSHOT_JOB, data: {} });
    await first.queues.schedule.upsertJobScheduler(`audit-snapshot-${other}`, nightly, { name: SNAPSHOT_JOB, data: { deployment: other } });
    const result = await reconcile(first.sql, first.queues, initial);
    // Removed: the older release's snapshot scheduler, and the group an earlier test dropped.
    expect(result.schedulers).toEqual({ upserted: 3, removed: 2 });
    expect(await schedulerIds(first)).toEqual(
      [`audit-snapshot-${other}`, ...ownSchedulerIds(['cron 0 0 1 1 * UTC', 'cron 0 3 1 1 * Europe/Berlin', 'cron 0 4 1 1 * UTC'])].sort(),
    );
  });
});

async function queuedImageIds(): Promise<string[]> {
  const jobs = await first.queues.refresh.getWaiting();
  return jobs.flatMap((job) => job.data.items.map((item) => item.imageId)).sort();
}
