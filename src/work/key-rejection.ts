// The one latch of an account whose key the API rejected (401): whichever
// unit of work sees it first (a refresh, a listing, an audit-log poll) trips
// it, and every unit of the account stops taking its work in this process at
// once, said once. The client withholds every later request itself
// (gcore-client.ts), so what the other units see after it only hands work back.
import { hostname } from 'node:os';
import type { KeyedAccount } from '../config/accounts.js';
import type { QueueBackend } from '../queues/backend.js';
import type { HeldRejection } from '../queues/key-health.js';
import type { Logger } from '../ops/logger.js';

/** What the rejected-key lines and readiness say; `jobs` names the work that saw the 401. */
function keyRejectedMessage(account: KeyedAccount, jobs: string): string {
  return `the API rejected ${account.apiKeyEnv} (401), the key of account ${account.name}: this worker takes no more of its ${jobs} until it is restarted with a valid key`;
}

/** A queue worker the latch stops from taking jobs. */
interface Pausable {
  pause(doNotWaitActive?: boolean): Promise<void>;
}

interface KeyRejectionSubject {
  account: KeyedAccount;
  backend: QueueBackend;
  workerId: string;
  /** The account's logger. */
  logger: Logger;
  /** Told once, after the account's workers have been paused. */
  onRejected?: (account: KeyedAccount) => void;
}

export class KeyRejectionLatch {
  private tripped = false;
  private held: HeldRejection | undefined;
  private readonly workers: Pausable[] = [];

  constructor(private readonly subject: KeyRejectionSubject) {}

  /** Whether the key has been rejected in this process. */
  get rejected(): boolean {
    return this.tripped;
  }

  /** The queue workers that stop taking jobs once the key is rejected. */
  stops(...workers: Pausable[]): void {
    this.workers.push(...workers);
  }

  /** The API rejected the key for `work`: the first time, stop the account's workers, hold the record for status, and tell. */
  reject(work: string): void {
    if (this.tripped) return;
    this.tripped = true;
    const { account, backend, workerId, logger } = this.subject;
    logger.error(keyRejectedMessage(account, work));
    for (const worker of this.workers) void worker.pause(true);
    this.held = backend.holdKeyRejection(
      { account: account.name, at: new Date().toISOString(), worker: workerId, hostname: hostname(), pid: process.pid },
      (error) => logger.warn({ error: error.message }, 'could not record the rejected key for status'),
    );
    this.subject.onRejected?.(account);
  }

  /** Stops holding the record of the rejection (the account's work is closing). */
  async release(): Promise<void> {
    await this.held?.release();
  }
}
