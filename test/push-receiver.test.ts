// The webhook receiver in this process, against hostile or unlucky pushes: a
// body that never ends, and a flood while Postgres is away. What it may hold
// and what it says are bounded either way.
import { connect } from 'node:net';
import postgres from 'postgres';
import { afterEach, expect, it } from 'vitest';
import { pushReceiver, type PushReceiver } from '../src/audit-log/push-receiver.js';
import { startReceiverServer, type HttpServer } from '../src/ops/http-server.js';
import { capturedLogger } from './support/pipeline.js';
import { sparePort } from './support/throwaway.js';

const SECRET = 'Bearer receiver-secret-0123456789abcdef';
const PATH = '/gcore/audit-push';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A receiver on a port of its own, over a Postgres that is not there: every write it makes fails. */
async function receiverWithoutPostgres(): Promise<{ receiver: PushReceiver; server: HttpServer; lines: string[] }> {
  const sql = postgres(`postgres://postgres@127.0.0.1:${await sparePort()}/none`, { max: 2, connect_timeout: 5, onnotice: () => {} });
  cleanups.push(() => sql.end({ timeout: 1 }));
  const { logger, lines } = capturedLogger();
  const receiver = pushReceiver({ sql, path: PATH, headerValue: SECRET, accounts: ['default'], logger });
  const server = await startReceiverServer({ host: '127.0.0.1', port: 0 }, receiver);
  cleanups.push(() => server.close());
  return { receiver, server, lines };
}

it('a push whose body never ends is cut off within seconds, and wakes nothing', async () => {
  const { server, lines } = await receiverWithoutPostgres();
  const socket = connect(server.port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => (answer += String(chunk)));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: ${SECRET}\r\nContent-Length: 100\r\n\r\n{`);
  // Node's own bound is five minutes: the test's 60 s would run out first.
  await closed;
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(lines.filter((line) => line.includes('could not wake'))).toEqual([]);
}, 60_000);

it('a flood of pushes while Postgres is away is said in a few lines, not one for each', async () => {
  const { receiver, server, lines } = await receiverWithoutPostgres();
  const post = (authorization: string) =>
    fetch(`http://127.0.0.1:${server.port}${PATH}`, { method: 'POST', headers: { authorization }, body: '{}' }).then((r) => r.status);
  const statuses = await Promise.all([
    ...Array.from({ length: 60 }, () => post('Bearer wrong')),
    ...Array.from({ length: 20 }, () => post(SECRET)),
  ]);
  expect(statuses.filter((s) => s === 401)).toHaveLength(60);
  expect(statuses.filter((s) => s === 503)).toHaveLength(20);
  await receiver.close();
  const said = lines.filter((line) => line.includes('could not'));
  expect(said.length).toBeGreaterThanOrEqual(2);
  expect(said.length).toBeLessThanOrEqual(10);
  // Each line says how many pushes it stands for; together, all of them.
  const pushes = (text: string) =>
    said.filter((l) => l.includes(text)).reduce((n, l) => n + (JSON.parse(l) as { pushes: number }).pushes, 0);
  expect(pushes('could not count refused pushes')).toBe(60);
  expect(pushes('could not wake the followers')).toBe(20);
});
