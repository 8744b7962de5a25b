// The Gcore API as the work sees it: every request takes a slot of the
// account's shared request timeline first, every answer (or its absence) is
// reported for metrics, and a 429 holds back every process's requests of the
// account before the caller hears of it. Callers just ask; none of them paces.
import type { GcoreClient, ImageAnswer, ListPage, ListRequest, SubscriptionRequest } from './gcore-client.js';
import { GcoreApiError, RateLimitedError, RequestWithheldError } from './gcore-errors.js';
import { ORDINARY, type ImageKind } from '../images/image-kinds.js';
import type { Triple } from '../interfaces.js';
import type { ApiRateLimiter } from './rate-limiter.js';

export interface PacingHooks {
  /** Every answer, GET or list page: its HTTP status ("none" without one) and how long it took. */
  onAnswer?(status: string, seconds: number): void;
  /** The API answered 429: hold back every process's requests of the account, before the caller settles. */
  onRateLimited(error: RateLimitedError): Promise<void>;
}

export class PacedClient {
  constructor(
    private readonly client: GcoreClient,
    private readonly limiter: ApiRateLimiter,
    private readonly hooks: PacingHooks,
  ) {}

  /** One image, with its kind's GET: "found" or "gone", or a GcoreApiError (gcore-client.ts). */
  getImage(triple: Triple, kind: ImageKind = ORDINARY): Promise<ImageAnswer> {
    return this.ask(
      () => this.client.getImage(triple, kind),
      (answer) => (answer.kind === 'found' ? '200' : '404'),
    );
  }

  /** One page of a list, `limit` items from `offset` (numbers as `exactNumbers` says: GcoreClient.listPage). */
  listPage(request: ListRequest, offset: number, limit: number, exactNumbers = true): Promise<ListPage> {
    return this.ask(
      () => this.client.listPage(request, offset, limit, exactNumbers),
      () => '200',
    );
  }

  /** One call of an audit-log subscription endpoint (GcoreClient.subscriptionCall). */
  subscriptionCall(request: SubscriptionRequest): Promise<unknown> {
    return this.ask(
      () => this.client.subscriptionCall(request),
      () => '200',
    );
  }

  /** Closes the client's idle connections. */
  close(): void {
    this.client.close();
  }

  private async ask<T>(call: () => Promise<T>, statusOf: (answer: T) => string): Promise<T> {
    await this.limiter.acquire();
    const sent = performance.now();
    const took = () => (performance.now() - sent) / 1000;
    try {
      const answer = await call();
      this.hooks.onAnswer?.(statusOf(answer), took());
      return answer;
    } catch (error) {
      // A request withheld (its key already rejected) was never sent: it is no answer to count.
      if (!(error instanceof RequestWithheldError)) {
        const status = error instanceof GcoreApiError ? error.status : undefined;
        this.hooks.onAnswer?.(status === undefined ? 'none' : String(status), took());
      }
      if (error instanceof RateLimitedError) await this.hooks.onRateLimited(error);
      throw error;
    }
  }
}
