// Prometheus metrics of one worker process (names start with image_sync_).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { queueDepths, type Queues } from './queue.js';

export interface WorkerMetrics {
  registry: Registry;
  refreshes: Counter<'outcome'>;
  apiAnswers: Counter<'status'>;
  fetchSeconds: Histogram;
  rateLimitedSeconds: Counter;
  slotsGivenUp: Counter;
  lastSuccess: Gauge;
  warnings: Counter;
  listings: Counter<'status'>;
  scopeExits: Counter;
}

export function createMetrics(queues: Queues): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'image_sync_queue_jobs',
    help: 'Jobs in the queues by state (all processes), read at scrape time',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const depths = await queueDepths(queues);
      for (const [queue, counts] of Object.entries(depths)) {
        for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
      }
    },
  });
  return {
    registry,
    refreshes: new Counter({ name: 'image_sync_refreshes_total', help: 'Refreshes by outcome', labelNames: ['outcome'], registers }),
    apiAnswers: new Counter({
      name: 'image_sync_api_answers_total',
      help: 'Answers from the Gcore API by HTTP status ("none" when no answer came)',
      labelNames: ['status'],
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
      help: 'Time requests were held back because the API answered 429',
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
      help: 'Scope listings ended by this process, by status (incomplete: nothing deleted or confirmed)',
      labelNames: ['status'],
      registers,
    }),
    scopeExits: new Counter({
      name: 'image_sync_scope_exits_total',
      help: 'Images a confirming GET found alive outside the scope that had listed them',
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'image_sync_last_success_timestamp_seconds',
      help: 'When this process last refreshed an image successfully (Unix time)',
      registers,
    }),
  };
}

/** Counts an API answer (its HTTP status, or "none") and times it: what every request reports, GET or list page. */
export function answerRecorder(metrics: WorkerMetrics | undefined): (status: string, seconds: number) => void {
  return (status, seconds) => {
    metrics?.apiAnswers.inc({ status });
    metrics?.fetchSeconds.observe(seconds);
  };
}
