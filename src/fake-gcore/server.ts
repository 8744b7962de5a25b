// A fake of Gcore's single-image endpoint for tests, the demo and benchmarks.
// It answers like the real API (auth, JSON NotFoundError, error bodies) and
// lets a caller change, delete and restore images and inject faults.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Triple } from '../interfaces.js';
import type { ImagePayload } from './fixtures.js';

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'unauthorized' }
  | { kind: 'bare404' }
  | { kind: 'rateLimited'; retryAfter: string }
  | { kind: 'malformed' }
  | { kind: 'slow'; ms: number };

interface FaultRule {
  fault: Fault;
  /** How many more requests it applies to; Infinity until cleared. */
  remaining: number;
}

export interface FakeGcoreOptions {
  apiKey?: string;
  /** Added to every answer. */
  latencyMs?: number;
}

const PATH = /^\/cloud\/v1\/images\/([^/]+)\/([^/]+)\/([^/?]+)(?:\?.*)?$/;
const ALL = '*';

function key({ projectId, regionId, imageId }: Triple): string {
  return `${projectId}/${regionId}/${imageId}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function gcoreError(exceptionClass: string, message: string) {
  return { exception_class: exceptionClass, message, request_id: 'fake-request' };
}

export class FakeGcore {
  readonly apiKey: string;
  latencyMs: number;
  private readonly images = new Map<string, ImagePayload>();
  private readonly faults = new Map<string, FaultRule>();
  private server: Server | undefined;
  /** Requests to the image endpoint, by the second (epoch seconds) they arrived in. */
  readonly requestsPerSecond = new Map<number, number>();
  requestCount = 0;
  /** When each image request arrived (ms since the epoch), for tests that check pauses. */
  readonly requestTimes: number[] = [];
  /** Authorization headers seen, for tests that check what was sent. */
  readonly authorizations = new Set<string>();

  constructor(options: FakeGcoreOptions = {}) {
    this.apiKey = options.apiKey ?? 'fake-key';
    this.latencyMs = options.latencyMs ?? 0;
  }

  putImage(triple: Triple, payload: ImagePayload): void {
    this.images.set(key(triple), structuredClone(payload));
  }

  /** Changes fields of an image; a field set to undefined is removed. */
  updateImage(triple: Triple, patch: ImagePayload): void {
    const current = this.images.get(key(triple));
    if (!current) throw new Error(`fake API has no image ${key(triple)}`);
    this.images.set(key(triple), { ...current, ...structuredClone(patch) });
  }

  deleteImage(triple: Triple): ImagePayload | undefined {
    const current = this.images.get(key(triple));
    this.images.delete(key(triple));
    return current;
  }

  getImage(triple: Triple): ImagePayload | undefined {
    return this.images.get(key(triple));
  }

  /** Makes requests for `triple` (or every triple) answer with `fault`, `times` times. */
  setFault(triple: Triple | 'all', fault: Fault, times = Infinity): void {
    this.faults.set(triple === 'all' ? ALL : key(triple), { fault, remaining: times });
  }

  clearFaults(): void {
    this.faults.clear();
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        if (!res.headersSent) sendJson(res, 500, gcoreError('InternalError', error.message));
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    return this.url;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) throw new Error('fake API is not listening');
    return `http://${address.address}:${address.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private takeFault(imageKey: string): Fault | undefined {
    for (const k of [imageKey, ALL]) {
      const rule = this.faults.get(k);
      if (!rule) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.faults.delete(k);
      return rule.fault;
    }
    return undefined;
  }

  /** Changes every image (a new `updated_at` and description), as a mass update would. */
  touchAll(stamp = new Date().toISOString()): number {
    for (const image of this.images.values()) {
      image.updated_at = stamp;
      image.description = `touched ${stamp}`;
    }
    return this.images.size;
  }

  /** Control endpoints for a fake running in another process (benchmarks, demos). */
  private handleControl(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.url === '/__fake/stats' && req.method === 'GET') {
      sendJson(res, 200, { requests: this.requestCount, perSecond: Object.fromEntries(this.requestsPerSecond) });
      return true;
    }
    if (req.url === '/__fake/touch-all' && req.method === 'POST') {
      sendJson(res, 200, { touched: this.touchAll() });
      return true;
    }
    if (req.url === '/__fake/reset-stats' && req.method === 'POST') {
      this.requestCount = 0;
      this.requestsPerSecond.clear();
      this.requestTimes.length = 0;
      sendJson(res, 200, {});
      return true;
    }
    return false;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url?.startsWith('/__fake/') && this.handleControl(req, res)) return;
    const match = PATH.exec(req.url ?? '');
    if (req.method !== 'GET' || !match) {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body>404 Not Found</body></html>');
      return;
    }
    const second = Math.floor(Date.now() / 1000);
    this.requestsPerSecond.set(second, (this.requestsPerSecond.get(second) ?? 0) + 1);
    this.requestCount += 1;
    this.requestTimes.push(Date.now());
    const authorization = req.headers.authorization ?? '';
    this.authorizations.add(authorization);
    if (this.latencyMs > 0) await delay(this.latencyMs);

    const [, project, region, rawId] = match;
    const imageKey = `${project}/${region}/${decodeURIComponent(rawId!)}`;
    const fault = this.takeFault(imageKey);
    if (fault?.kind === 'slow') await delay(fault.ms);
    if (fault?.kind === 'unauthorized' || authorization !== `APIKey ${this.apiKey}`) {
      sendJson(res, 401, gcoreError('NotAuthenticated', 'Authentication credentials were not provided.'));
      return;
    }
    switch (fault?.kind) {
      case 'status':
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(fault.body ?? JSON.stringify(gcoreError('InternalServerError', `injected ${fault.status}`)));
        return;
      case 'bare404':
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('');
        return;
      case 'rateLimited':
        sendJson(res, 429, gcoreError('TooManyRequests', 'Too many requests'), { 'retry-after': fault.retryAfter });
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "truncated');
        return;
    }
    const image = this.images.get(imageKey);
    if (!image) {
      sendJson(res, 404, gcoreError('NotFoundError', `Image ${rawId} not found`));
      return;
    }
    sendJson(res, 200, image);
  }
}
