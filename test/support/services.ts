// Finds the Postgres and Redis the tests run against: TEST_DATABASE_URL and
// TEST_REDIS_URL when set; otherwise containers started by testcontainers when
// a Docker engine answers; otherwise what the product itself runs on with
// neither named: its embedded PostgreSQL (in a throwaway home), with the
// queues on Postgres.
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { openEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { runMigrations } from '../../src/db/migrate.js';
import { throwawayHome } from './home.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** A database migrated once for the run, which each test's database is copied from (CREATE DATABASE ... TEMPLATE). */
    templateDatabase: string;
    /** Empty when the queues run on Postgres. */
    redisUrl: string;
    runId: string;
  }
}

function dockerAnswers(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject) {
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  project.provide('runId', runId);
  let databaseUrl = process.env.TEST_DATABASE_URL;
  let redisUrl = process.env.TEST_REDIS_URL;
  const stops: Array<() => Promise<unknown>> = [];
  if ((!databaseUrl || !redisUrl) && dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const { RedisContainer } = await import('@testcontainers/redis');
    if (!databaseUrl) {
      const postgres = await new PostgreSqlContainer('postgres:15-alpine').start();
      stops.push(() => postgres.stop());
      databaseUrl = postgres.getConnectionUri();
    }
    if (!redisUrl) {
      const redis = await new RedisContainer('redis:7-alpine').start();
      stops.push(() => redis.stop());
      redisUrl = redis.getConnectionUrl();
    }
  }
  if (!databaseUrl) {
    const home = await throwawayHome('gis-test-home-');
    const embedded = await openEmbeddedPostgres(home);
    stops.push(async () => {
      await embedded.close();
      await rm(home, { recursive: true, force: true });
    });
    databaseUrl = embedded.url;
  }
  project.provide('databaseUrl', databaseUrl);
  // Migrating costs a second or more per database, and files make dozens: each copies this one instead.
  // Nothing may stay connected to it, or the copies are refused.
  const templateDatabase = `gis_test_${runId}_template`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${templateDatabase}`);
  stops.unshift(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
  });
  const templateUrl = new URL(databaseUrl);
  templateUrl.pathname = `/${templateDatabase}`;
  await runMigrations(templateUrl.toString());
  project.provide('templateDatabase', templateDatabase);
  project.provide('redisUrl', redisUrl ?? '');
  process.stderr.write(`tests: queues on ${redisUrl ? 'Redis' : 'Postgres'}\n`);
  return async () => {
    for (const stop of stops) await stop();
  };
}
