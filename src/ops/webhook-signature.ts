// Change alerts are signed so a receiver can tell them from forgeries and
// replays, the way Stripe and GitHub sign theirs: an HMAC-SHA256, keyed with
// ALERT_WEBHOOK_SECRET, over `<unix seconds>.<body>`, sent as
//   X-Gcore-Image-Sync-Signature: t=<unix seconds>,v1=<hex digest>
// The timestamp is signed with the body, so an old request cannot be replayed
// with a fresh one. This module depends on node:crypto alone, so a receiver
// written in TypeScript or JavaScript can copy it as it is.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Gcore-Image-Sync-Signature';

/** How far a request's timestamp may be from the receiver's clock: clock skew plus delivery time. */
const TOLERANCE_SECONDS = 300;

function digest(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The header value for `body`, sent at `timestamp` (unix seconds). */
export function signatureHeader(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${digest(secret, timestamp, body)}`;
}

export type Verification = { valid: true; timestamp: number } | { valid: false; reason: string };

/**
 * Checks a request: `header` as received, `body` as the exact text received
 * (before any JSON parsing), `now` in unix seconds. Several v1 values are
 * accepted (one must match), and unknown schemes are ignored, so the sender
 * can add schemes or sign with two secrets during a rotation.
 */
export function verifySignature(
  header: string | undefined,
  body: string,
  secret: string,
  now = Math.floor(Date.now() / 1000),
  toleranceSeconds = TOLERANCE_SECONDS,
): Verification {
  if (!header) return { valid: false, reason: 'no signature header' };
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [key, value = ''] = part.trim().split('=', 2);
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0) return { valid: false, reason: 'malformed signature header' };
  const expected = Buffer.from(digest(secret, timestamp, body));
  // Compared in constant time, so response timing reveals nothing of the expected digest.
  if (!signatures.some((signature) => timingSafeEqual(Buffer.from(signature), expected))) {
    return { valid: false, reason: 'signature does not match' };
  }
  if (Math.abs(now - timestamp) > toleranceSeconds) return { valid: false, reason: 'timestamp outside the tolerance' };
  return { valid: true, timestamp };
}
