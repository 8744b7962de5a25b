// The hand-written pipeline the benchmark compares against: one BullMQ job
// per image, concurrency 50, fetch, a one-row upsert of the raw answer; no
// validation, no history, no rate limit. Run as its own process, like ours.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import postgres from 'postgres';

const env = process.env as Record<string, string>;
// The queue's name comes from the benchmark: a constant exported from here would make importing it start a worker.
const queueName = process.argv[2]!;
const sql = postgres(env.DATABASE_URL!, { max: 20, onnotice: () => {} });
const connection = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null });

const worker = new Worker<{ projectId: number; regionId: number; imageId: string }>(
  queueName,
  async (job) => {
    const { projectId, regionId, imageId } = job.data;
    const response = await fetch(`${env.GCORE_BASE_URL}/cloud/v1/images/${projectId}/${regionId}/${imageId}`, {
      headers: { authorization: `APIKey ${env.GCORE_API_KEY}` },
    });
    const raw = await response.text();
    await sql`
      INSERT INTO baseline_images (project_id, region_id, image_id, raw, seen_at)
      VALUES (${projectId}, ${regionId}, ${imageId}, ${raw}::jsonb, now())
      ON CONFLICT (project_id, region_id, image_id) DO UPDATE SET raw = EXCLUDED.raw, seen_at = EXCLUDED.seen_at`;
  },
  { connection, prefix: env.QUEUE_PREFIX, concurrency: 50, removeOnComplete: { count: 0 } },
);
console.log(JSON.stringify({ msg: 'worker started' }));

async function stop(): Promise<void> {
  await worker.close();
  connection.disconnect();
  await sql.end();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
