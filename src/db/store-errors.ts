// Whether a database error is about Postgres right now (a restart, killed
// connections, a failover, a deadlock between two batches) rather than about
// the images. Such a batch waits and runs again without spending attempts.

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01', // admin_shutdown: the server is stopping, or our backend was terminated
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '40P01', // deadlock_detected: the other transaction went on, this one can too
  '40001', // serialization_failure
]);

export function isTransientStoreError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return false;
  return CONNECTION_CODES.has(code) || code.startsWith('08');
}

/** Postgres refused to store one image (a value it cannot hold): that image's failure, never its batch's. */
export class UnstorableImageError extends Error {
  constructor(cause: unknown) {
    super(`Postgres refused to store this image: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'UnstorableImageError';
  }
}
