// The pure parts of audit-log pushes: what to do about a client's listed
// subscriptions, how a listed one is read as this deployment's, the settings,
// and how a burst of pushes is carried by few wake-ups.
import { describe, expect, it } from 'vitest';
import {
  amqpTarget,
  listSubscriptions,
  planSubscription,
  webhookTarget,
  type ListedSubscription,
} from '../src/audit-log/push-subscriptions.js';
import { MalformedAnswerError } from '../src/gcore/gcore-errors.js';
import { loadConfig } from '../src/config/config.js';
import { Coalescer } from '../src/ops/coalescer.js';

const URL_ = 'https://sync.example.com/gcore/audit-push';
const SECRET = 'Bearer s3cret-s3cret-s3cret-s3cret-00';
const wanted: ListedSubscription = { target: URL_, wanted: true, ours: true };
const stale: ListedSubscription = { target: 'https://old.example.com/push', wanted: false, ours: true };
const foreign: ListedSubscription = { target: 'https://siem.example.org/gcore', wanted: false, ours: false };

describe('planSubscription', () => {
  it('keeps the one wanted, and creates it when missing, whatever else is listed', () => {
    expect(planSubscription([wanted])).toEqual({ action: 'keep', problem: null });
    expect(planSubscription([])).toEqual({ action: 'create', problem: null });
    expect(planSubscription([foreign])).toEqual({ action: 'create', problem: null });
    expect(planSubscription([foreign, wanted])).toEqual({ action: 'keep', problem: null });
  });

  it("replaces this deployment's stale or doubled subscriptions only when nothing else is listed", () => {
    expect(planSubscription([stale])).toEqual({ action: 'replace' });
    expect(planSubscription([wanted, wanted])).toEqual({ action: 'replace' });
    expect(planSubscription([stale, wanted])).toEqual({ action: 'replace' });
    const beside = planSubscription([stale, foreign]);
    expect(beside).toMatchObject({ action: 'create' });
    expect('problem' in beside && beside.problem).toContain('https://siem.example.org/gcore');
    expect('problem' in beside && beside.problem).toContain('push unsubscribe --force');
    expect(planSubscription([wanted, wanted, foreign])).toMatchObject({ action: 'keep', problem: expect.stringContaining('1 more') });
    // Gcore's list may be long, and its URLs too: the problem, stored and shown, names a few, cut short.
    const many = Array.from({ length: 500 }, (_, n) => ({ ...foreign, target: `https://siem.example.org/${n}/${'x'.repeat(10_000)}` }));
    const long = planSubscription([stale, ...many]);
    expect('problem' in long && (long.problem ?? '').length).toBeLessThan(1000);
    expect('problem' in long && long.problem).toContain('the client also has 500 to https://siem.example.org/0/');
    expect('problem' in long && long.problem).toContain('and 497 more');
  });
});

describe('reading listed subscriptions', () => {
  const webhook = webhookTarget(URL_, SECRET);
  it('is ours by its URL or by its secret, and wanted only with both and the Authorization header', () => {
    const entry = { id: 1, url: URL_, auth_header_name: 'Authorization', auth_header_value: SECRET };
    expect(webhook.read(entry)).toEqual({ target: URL_, wanted: true, ours: true });
    // As the client reads it back: the secret it sent is taken out of every answer.
    expect(webhook.read({ ...entry, auth_header_value: '[redacted]' })).toEqual({ target: URL_, wanted: true, ours: true });
    expect(webhook.read({ ...entry, auth_header_value: 'Bearer another' })).toEqual({ target: URL_, wanted: false, ours: true });
    expect(webhook.read({ ...entry, url: 'https://old.example.com/push' })).toEqual({
      target: 'https://old.example.com/push',
      wanted: false,
      ours: true,
    });
    expect(webhook.read({ ...entry, auth_header_name: 'X-Token' })).toMatchObject({ wanted: false, ours: true });
    // Listed as a URL parser writes it back: the same address.
    const bare = webhookTarget('https://Sync.Example.com:443', SECRET);
    expect(bare.read({ ...entry, url: 'https://sync.example.com/' })).toMatchObject({ wanted: true, ours: true });
    expect(webhook.read({ ...entry, url: `${URL_}/` })).toMatchObject({ wanted: false });
    // Not Gcore's shape: no URL to show, and not this deployment's.
    expect(webhook.read({ id: 4, url: 42, auth_header_name: null, auth_header_value: { a: 1 } })).toEqual({
      target: '(no url)',
      wanted: false,
      ours: false,
    });
    expect(webhook.read({ id: 2, url: '<b>x</b>', auth_header_name: 'Authorization', auth_header_value: 'other' })).toEqual({
      target: '<b>x</b>',
      wanted: false,
      ours: false,
    });
  });

  it('shows an AMQP subscription without its password, and wants the same broker, exchange and routing key', () => {
    const amqp = amqpTarget('amqps://gcore:pa55word@mq.example.com:5671/audit', 'gcore-audit', 'user-actions');
    expect(amqp.target).toBe('amqps://mq.example.com:5671/audit exchange gcore-audit routing key user-actions');
    const entry = {
      id: 3,
      connection_string: 'amqps://gcore:pa55word@mq.example.com:5671/audit',
      exchange: 'gcore-audit',
      routing_key: 'user-actions',
      receive_child_client_events: false,
    };
    expect(amqp.read(entry)).toMatchObject({ wanted: true, ours: true });
    expect(amqp.read({ ...entry, routing_key: null })).toMatchObject({ wanted: false, ours: true });
    expect(amqp.read({ ...entry, connection_string: '[redacted]' })).toEqual({ target: amqp.target, wanted: true, ours: true });
    expect(JSON.stringify(amqp.read({ ...entry, connection_string: 'amqp://u:other-pass@mq.example.org/' }))).not.toContain('other-pass');
  });
});

describe('listing subscriptions', () => {
  /** A list endpoint answering `page` to every request, whatever its offset; it gives up after 50 requests. */
  const answering = (page: (offset: number) => unknown) => {
    let calls = 0;
    return {
      calls: () => calls,
      subscriptionCall: ({ path }: { path: string }) => {
        if (++calls > 50) throw new Error('listed on and on');
        return Promise.resolve(page(Number(new URL(path, 'http://x/').searchParams.get('offset'))));
      },
    };
  };
  const entry = (n: number) => ({ id: n, url: `https://x.example/${n}`, auth_header_name: 'A', auth_header_value: 'v' });

  it('reads page by page to the count, and passes over entries that are not objects', async () => {
    const api = answering((offset) => ({
      count: 1001,
      results: offset === 0 ? [...Array.from({ length: 999 }, (_, i) => entry(i)), 'junk'] : [entry(1000), null],
    }));
    expect(await listSubscriptions(api, 'subscriptions_list')).toHaveLength(1000);
    expect(api.calls()).toBe(2);
  });

  it('refuses an answer that is no list page, and stops paging an answer that never ends', async () => {
    for (const page of [null, [], 'text', { count: 1, results: {} }, { count: '1', results: [] }, { results: [] }]) {
      await expect(
        listSubscriptions(
          answering(() => page),
          'subscriptions_list',
        ),
      ).rejects.toBeInstanceOf(MalformedAnswerError);
    }
    const endless = answering(() => ({ count: 1e12, results: Array.from({ length: 1000 }, (_, i) => entry(i)) }));
    await expect(listSubscriptions(endless, 'subscriptions_list')).rejects.toThrow('more than 10 full pages');
    expect(endless.calls()).toBe(10);
  });
});

describe('AUDIT_PUSH_URL and its settings', () => {
  const base = { AUDIT_PUSH_URL: URL_, AUDIT_PUSH_SECRET: 'x'.repeat(32), HTTP_PORT: '8080' };
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  };

  it('reads the URL, its path and the header Gcore is to send; loopback by default', () => {
    expect(loadConfig(base).auditPush).toEqual({
      url: URL_,
      path: '/gcore/audit-push',
      headerValue: `Bearer ${'x'.repeat(32)}`,
      port: undefined,
    });
    expect(loadConfig(base).httpHost).toBe('127.0.0.1');
    expect(loadConfig({}).auditPush).toBeUndefined();
  });

  it('refuses, naming the variable and never the secret, what cannot work', () => {
    expect(problems({ ...base, AUDIT_PUSH_URL: 'http://sync.example.com/push' })).toContain(
      'AUDIT_PUSH_URL: must be an https URL, or http to localhost',
    );
    expect(problems({ ...base, AUDIT_PUSH_URL: 'https://u:pw@sync.example.com/push' })).toContain('must not hold a user name or password');
    expect(problems({ ...base, AUDIT_PUSH_URL: 'https://sync.example.com/metrics' })).toContain('is one the HTTP server answers itself');
    expect(problems({ ...base, AUDIT_PUSH_SECRET: '' })).toContain('AUDIT_PUSH_SECRET: required with AUDIT_PUSH_URL');
    const short = problems({ ...base, AUDIT_PUSH_SECRET: 'short-secret' });
    expect(short).toContain('at least 32 characters (has 12)');
    expect(short).not.toContain('short-secret');
    expect(problems({ ...base, AUDIT_PUSH_SECRET: `${'y'.repeat(32)} z` })).toContain('a space (U+0020) at character 33');
    expect(problems({ ...base, AUDIT_LOG_POLL_SECONDS: '0' })).toContain('AUDIT_LOG_POLL_SECONDS is 0');
    expect(problems({ ...base, AUDIT_PUSH_PORT: '8080' })).toContain('AUDIT_PUSH_PORT: the same as HTTP_PORT');
    expect(problems({ AUDIT_PUSH_SECRET: 'x'.repeat(32) })).toContain('AUDIT_PUSH_SECRET: set without AUDIT_PUSH_URL');
    expect(problems({ HTTP_HOST: 'not a host!' })).toContain('HTTP_HOST: must be an IP address');
  });
});

describe('Coalescer', () => {
  it('carries a hundred adds made together in two flushes, and settles each with the flush that carried it', async () => {
    const flushed: number[] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const coalescer = new Coalescer(10, async (count) => {
      flushed.push(count);
      if (flushed.length === 1) await first;
    });
    const adds = [coalescer.add()];
    // The first add's flush has started (at once) and is held: every later add waits for the next one.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let n = 1; n < 100; n++) adds.push(coalescer.add());
    release();
    await Promise.all(adds);
    expect(flushed).toEqual([1, 99]);
  });

  it('rejects the adds a failed flush carried, and flushes later adds afresh', async () => {
    let fail = true;
    const coalescer = new Coalescer(0, async () => {
      if (fail) throw new Error('database away');
    });
    await expect(coalescer.add()).rejects.toThrow('database away');
    fail = false;
    await expect(coalescer.add()).resolves.toBeUndefined();
    await coalescer.close();
  });
});
