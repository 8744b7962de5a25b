// Finds the Postgres and Redis the tests run against: TEST_DATABASE_URL and
// TEST_REDIS_URL when set; otherwise containers started by testcontainers when
// a Docker engine answers; otherwise the run stops and says how to provide them.
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
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
  if (!databaseUrl || !redisUrl) {
    throw new Error(
      'The tests need a real Postgres and Redis. Set TEST_DATABASE_URL (a role that may CREATE DATABASE, ' +
        'e.g. postgres://postgres@127.0.0.1:5432/postgres) and TEST_REDIS_URL (e.g. redis://127.0.0.1:6379), ' +
        'or run them where a Docker engine answers so testcontainers can start both.',
    );
  }
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const stop of stops) await stop();
  };
}
