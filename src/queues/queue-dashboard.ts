// The queue dashboard (bull-board) at /queues, when QUEUE_DASHBOARD=1. It shows
// and can retry or remove jobs, so it is off unless an operator turns it on.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express from 'express';
import type { RequestListener } from 'node:http';
import type { Queues } from './queue.js';

export const DASHBOARD_PATH = '/queues';

/** The dashboard of the schedule queue and of each account's refresh and list queues. */
export function queueDashboard(queues: Queues, accounts: string[]): RequestListener {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    // bull-board reads either store through the queue (its types name only Redis's).
    queues: [...accounts.flatMap((account) => [queues.forAccount(account).refresh, queues.forAccount(account).list]), queues.schedule].map(
      (queue) => new BullMQAdapter(queue as never),
    ),
    serverAdapter,
  });
  const app = express();
  app.use(DASHBOARD_PATH, serverAdapter.getRouter());
  return app;
}
