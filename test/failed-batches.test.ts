// The failed-batch sweep: another deployment's failed jobs are left alone, and
// of processes that race for one failed job exactly one takes it.
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sampleImageId } from '../src/fake-gcore/fixtures.js';
import type { Triple } from '../src/interfaces.js';
import { failedBatches, REFRESH_JOB } from '../src/queues/queue.js';
import { startScenario, withWorker, type Scenario } from './support/pipeline.js';
import { waitFor } from './support/throwaway.js';

const T: Triple = { projectId: 4, regionId: 2, imageId: sampleImageId(1) };
const OWN: Triple = { projectId: 4, regionId: 2, imageId: sampleImageId(2) };
let s: Scenario;
beforeAll(async () => {
  s = await startScenario([T, OWN], { noWorker: true, env: { SYNC_ATTEMPTS: '1' } });
});
afterAll(() => s?.close());

it("a job of another deployment that failed for good is left for that deployment's workers", async () => {
  const { queues, backend, sql } = s.pipeline.services;
  const other = '00000000-0000-4000-8000-000000000000';
  await queues.refresh.add(REFRESH_JOB, { deployment: other, items: [{ ...T, attempt: 0 }] }, { jobId: 'foreign-1', attempts: 1 });
  // A failed job of this deployment too: once the sweep has settled it, it has looked at the other one.
  await queues.refresh.add(
    REFRESH_JOB,
    { deployment: queues.refresh.deployment, items: [{ ...OWN, attempt: 0 }] },
    { jobId: 'mine-1', attempts: 1 },
  );
  const taker = backend.worker(queues.refresh, null, { autorun: false });
  for (const id of ['foreign-1', 'mine-1']) {
    const job = await taker.getNextJob('dying-worker');
    expect(job?.id).toBe(id);
    await job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'dying-worker', false);
  }
  await taker.close();
  await withWorker(s.pipeline, () =>
    waitFor("the sweep to settle this deployment's failed job", async () => (await sql`SELECT 1 FROM sync_failures`).length > 0),
  );
  // Still there for its own deployment to recover, and nothing written into this database.
  expect(await queues.refresh.getJobState('foreign-1')).toBe('failed');
  expect(await sql`SELECT image_id, error_class FROM sync_failures`).toEqual([{ image_id: OWN.imageId, error_class: 'BatchFailedError' }]);
  expect(await sql`SELECT last_outcome, queued_job FROM targets WHERE image_id = ${T.imageId}`).toEqual([
    { last_outcome: null, queued_job: null },
  ]);
});

it('of two processes that found the same failed batch, exactly one takes it', async () => {
  const { queues, backend } = s.pipeline.services;
  await queues.refresh.add(
    REFRESH_JOB,
    { deployment: queues.refresh.deployment, items: [{ ...T, attempt: 0 }] },
    { jobId: 'own-1', attempts: 1 },
  );
  const taker = backend.worker(queues.refresh, null, { autorun: false });
  const job = await taker.getNextJob('dying-worker');
  expect(job?.id).toBe('own-1');
  await job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'dying-worker', false);
  await taker.close();
  const [first, second] = await Promise.all([
    failedBatches(queues.refresh, backend.takeFailed),
    failedBatches(queues.refresh, backend.takeFailed),
  ]);
  const own = (batches: typeof first) => batches.filter((batch) => batch.jobId === 'own-1');
  expect([own(first).length, own(second).length]).toEqual([1, 1]);
  // Which one wins is up to the store; that exactly one does is not.
  expect((await Promise.all([own(first)[0]!.take(), own(second)[0]!.take()])).sort()).toEqual([false, true]);
  expect(await queues.refresh.getJobState('own-1')).toBe('unknown');
});
