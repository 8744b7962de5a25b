import { describe, expect, it } from 'vitest';
import type { GcoreClient, ImageAnswer } from '../src/gcore/gcore-client.js';
import { RateLimitedError, RequestWithheldError, TransientApiError } from '../src/gcore/gcore-errors.js';
import { PacedClient } from '../src/gcore/paced-client.js';
import type { ApiRateLimiter } from '../src/gcore/rate-limiter.js';

const triple = { projectId: 1, regionId: 7, imageId: '6a1e2e0c-0f8a-4f37-9d5e-1c3f4b2a7e10' };

/** A client whose GET answers (or throws) what the test says, and a limiter that records each slot taken. */
function paced(answer: () => Promise<ImageAnswer>) {
  const events: string[] = [];
  const client = {
    getImage: async () => {
      events.push('sent');
      return answer();
    },
  } as unknown as GcoreClient;
  const limiter = {
    acquire: async () => {
      events.push('slot');
    },
  } as unknown as ApiRateLimiter;
  const api = new PacedClient(client, limiter, {
    onAnswer: (status) => events.push(`answer ${status}`),
    onRateLimited: async (error) => {
      events.push(`paused ${error.retryAfterMs}`);
    },
  });
  return { api, events };
}

describe('PacedClient', () => {
  it('takes a slot before each request and reports the answer', async () => {
    const found = paced(async () => ({ kind: 'found', body: {}, observedAt: new Date() }));
    expect((await found.api.getImage(triple)).kind).toBe('found');
    expect(found.events).toEqual(['slot', 'sent', 'answer 200']);
    const gone = paced(async () => ({ kind: 'gone', observedAt: new Date() }));
    await gone.api.getImage(triple);
    expect(gone.events).toEqual(['slot', 'sent', 'answer 404']);
  });

  it('pauses every request of the account on a 429 before the caller hears of it', async () => {
    const limited = new RateLimitedError('429', 3000, true);
    const { api, events } = paced(() => Promise.reject(limited));
    await expect(api.getImage(triple)).rejects.toBe(limited);
    expect(events).toEqual(['slot', 'sent', 'answer 429', 'paused 3000']);
  });

  it('reports a request without an answer as "none", and a withheld one (never sent) not at all', async () => {
    const broken = paced(() => Promise.reject(new TransientApiError('connection failed', undefined, true)));
    await expect(broken.api.getImage(triple)).rejects.toThrow('connection failed');
    expect(broken.events).toEqual(['slot', 'sent', 'answer none']);
    const withheld = paced(() => Promise.reject(new RequestWithheldError('request not sent', undefined, false)));
    await expect(withheld.api.getImage(triple)).rejects.toThrow('request not sent');
    expect(withheld.events).toEqual(['slot', 'sent']);
  });
});
