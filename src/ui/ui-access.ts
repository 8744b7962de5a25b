// Who may see the web view: the one place that decides it. On loopback only
// this machine reaches it; beyond loopback it asks for UI_PASSWORD (HTTP basic),
// unless the operator opened it with UI_OPEN=1. Beyond loopback with neither,
// it stays closed (and says why) rather than stopping the worker, whose
// HTTP_HOST may have been opened for /metrics alone.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage, RequestListener } from 'node:http';
import type { UiSettings } from '../config/config.js';

export type UiAccess =
  { kind: 'off' } | { kind: 'closed'; reason: string } | { kind: 'password'; password: string } | { kind: 'open'; reason: string };

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export function uiAccess(settings: UiSettings, httpHost: string): UiAccess {
  if (!settings.enabled) return { kind: 'off' };
  if (settings.password !== undefined) return { kind: 'password', password: settings.password };
  if (settings.open) return { kind: 'open', reason: 'UI_OPEN=1' };
  if (isLoopback(httpHost)) return { kind: 'open', reason: `HTTP_HOST ${httpHost} is loopback` };
  return {
    kind: 'closed',
    reason: `the server listens beyond loopback (HTTP_HOST ${httpHost}): set UI_PASSWORD to serve it with a password, UI_OPEN=1 to serve it to anyone who reaches it, or UI=off`,
  };
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether a request carries HTTP basic credentials with this password (any user name), compared in constant time. */
export function passwordGiven(req: IncomingMessage, password: string): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  return timingSafeEqual(digest(decoded.slice(colon + 1)), digest(password));
}

/** A listener that answers 401 unless the request carries the password: the queue dashboard, which can act on jobs, beside the web view. */
export function behindPassword(listener: RequestListener, password: string): RequestListener {
  return (req, res) => {
    if (passwordGiven(req, password)) return listener(req, res);
    res.writeHead(401, {
      'content-type': 'text/plain; charset=utf-8',
      'www-authenticate': 'Basic realm="gcore-image-sync", charset="UTF-8"',
    });
    res.end('this needs the password (UI_PASSWORD)\n');
  };
}
