// Prometheus metrics of one worker process (names start with image_sync_).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from '../db/db.js';
import { queueDepths, type Queues } from '../queues/queue.js';
import { loadAccounts } from '../sql/accounts.js';

// Counters about the API carry the account (its name), so each account's answers, limits and outcomes can be told apart.
export interface WorkerMetrics {
  registry: Registry;
  refreshes: Counter<'account' | 'outcome'>;
  apiAnswers: Counter<'account' | 'status'>;
  fetchSeconds: Histogram;
  rateLimitedSeconds: Counter<'account'>;
  slotsGivenUp: Counter;
  lastSuccess: Gauge;
  warnings: Counter;
  listings: Counter<'account' | 'status'>;
  scopeExits: Counter;
  pushes: Counter<'kind' | 'outcome'>;
  wakeups: Counter<'account'>;
}

export function createMetrics(queues: Queues, sql: Sql): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'image_sync_queue_jobs',
    help: 'Jobs in the queues by state (all processes), read at scrape time; refresh and list queues per account',
    labelNames: ['queue', 'account', 'state'],
    registers,
    async collect() {
      const depths = await queueDepths(
        queues,
        (await loadAccounts(sql)).map((a) => a.name),
      );
      for (const [state, n] of Object.entries(depths.schedule)) this.set({ queue: 'schedule', account: '', state }, n);
      for (const [account, perQueue] of Object.entries(depths.accounts)) {
        for (const [queue, counts] of Object.entries(perQueue)) {
          for (const [state, n] of Object.entries(counts)) this.set({ queue, account, state }, n);
        }
      }
    },
  });
  return {
    registry,
    refreshes: new Counter({
      name: 'image_sync_refreshes_total',
      help: 'Refreshes by account and outcome',
      labelNames: ['account', 'outcome'],
      registers,
    }),
    apiAnswers: new Counter({
      name: 'image_sync_api_answers_total',
      help: 'Answers from the Gcore API by account and HTTP status ("none" when no answer came)',
      labelNames: ['account', 'status'],
      registers,
    }),
    fetchSeconds: new Histogram({
      name: 'image_sync_fetch_seconds',
      help: 'Time from sending a request to the Gcore API to the whole answer',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    rateLimitedSeconds: new Counter({
      name: 'image_sync_rate_limited_seconds_total',
      help: 'Time requests of an account were held back because the API answered 429',
      labelNames: ['account'],
      registers,
    }),
    slotsGivenUp: new Counter({
      name: 'image_sync_rate_limit_slots_given_up_total',
      help: 'Request slots given up because the store answered too late to keep the limit, and taken again',
      registers,
    }),
    warnings: new Counter({
      name: 'image_sync_stored_with_warnings_total',
      help: 'Sanity rules stricter than the API contract that stored images broke (each is logged)',
      registers,
    }),
    listings: new Counter({
      name: 'image_sync_listings_total',
      help: 'Scope listings ended by this process, by account and status (incomplete: nothing deleted or confirmed)',
      labelNames: ['account', 'status'],
      registers,
    }),
    scopeExits: new Counter({
      name: 'image_sync_scope_exits_total',
      help: 'Images a confirming GET found alive outside the scope that had listed them',
      registers,
    }),
    pushes: new Counter({
      name: 'image_sync_audit_pushes_total',
      help: 'Audit-log pushes this process received, by kind (webhook, amqp) and outcome (accepted, unauthorized, too_large, failed)',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    wakeups: new Counter({
      name: 'image_sync_audit_wakeups_total',
      help: "Wake-ups of an account's audit-log follower in this process by a push (the one holding the lease reads the log)",
      labelNames: ['account'],
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'image_sync_last_success_timestamp_seconds',
      help: 'When this process last refreshed an image successfully (Unix time)',
      registers,
    }),
  };
}

/** Counts an account's API answer (its HTTP status, or "none") and times it: what every request reports, GET or list page. */
export function answerRecorder(metrics: WorkerMetrics | undefined, account: string): (status: string, seconds: number) => void {
  return (status, seconds) => {
    metrics?.apiAnswers.inc({ account, status });
    metrics?.fetchSeconds.observe(seconds);
  };
}
