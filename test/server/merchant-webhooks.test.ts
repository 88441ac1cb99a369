import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../server/db/database.js';
import { createMemoryLogger } from '../../server/log.js';
import {
  MERCHANT_EVENT_TYPES,
  MerchantWebhookDispatcher,
  SIGNATURE_HEADER,
  enqueueMerchantEvent,
  signMerchantWebhook,
  verifyMerchantWebhook,
  type MerchantWebhookDispatcherConfig,
} from '../../server/webhooks/merchant-webhooks.js';
import { ENGINES, POSTGRES_URL, openTestDatabase, type TestDatabase } from '../support/databases.js';

const SECRET = 'whsec_test_0123456789abcdef';

type Received = { path: string; headers: IncomingHttpHeaders; body: string; atMs: number };
type Reply = number | 'hang';

/** A merchant endpoint on port 0: records every request and answers each path from its script (last reply repeats). */
async function startReceiver() {
  const requests: Received[] = [];
  const scripts = new Map<string, Reply[]>();
  const state = { delayMs: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), atMs: performance.now() });
      const script = scripts.get(path) ?? [];
      const reply = (script.length > 1 ? script.shift() : script[0]) ?? 200;
      if (reply === 'hang') return;
      setTimeout(() => res.writeHead(reply, { 'content-type': 'text/plain' }).end(`answer ${reply}`), state.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    requests,
    state,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    script: (path: string, replies: Reply[]) => void scripts.set(path, [...replies]),
    reset() {
      requests.length = 0;
      scripts.clear();
      state.delayMs = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Time as the dispatcher sees it, moved forward by the tests instead of sleeping. */
function createClock() {
  const clock = {
    ms: Date.now(),
    now: () => new Date(clock.ms),
    nowMs: () => clock.ms,
    set: (date: Date) => void (clock.ms = date.getTime()),
    advance: (seconds: number) => void (clock.ms += seconds * 1000),
  };
  return clock;
}

describe('merchant webhook signature', () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'order.paid', created: '2030-01-01T00:00:00.000Z', data: { amount: 100 } });
  const t = 1_900_000_000;
  const at = (seconds: number) => () => seconds * 1000;

  it('when verified with the secret that signed it, then it is accepted', () => {
    const header = signMerchantWebhook(SECRET, t, body);
    expect(header).toMatch(/^t=1900000000,v1=[0-9a-f]{64}$/);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t) })).toBe(true);
  });

  it('when verified with another secret, then it is rejected', () => {
    expect(verifyMerchantWebhook('whsec_other', signMerchantWebhook(SECRET, t, body), body, { now: at(t) })).toBe(false);
  });

  it('when the body was modified by one character, then it is rejected', () => {
    const header = signMerchantWebhook(SECRET, t, body);
    expect(verifyMerchantWebhook(SECRET, header, body.replace('100', '900'), { now: at(t) })).toBe(false);
    expect(verifyMerchantWebhook(SECRET, header, `${body} `, { now: at(t) })).toBe(false);
  });

  it('when the timestamp is older or newer than the tolerance, then it is rejected; within it, accepted', () => {
    const header = signMerchantWebhook(SECRET, t, body);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t + 300) })).toBe(true);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t + 301) })).toBe(false);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t - 301) })).toBe(false);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t + 3600), toleranceSeconds: 7200 })).toBe(true);
  });

  it('when the timestamp in the header was changed, then it is rejected', () => {
    const header = signMerchantWebhook(SECRET, t, body).replace(`t=${t}`, `t=${t + 1}`);
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t) })).toBe(false);
  });

  it('when the header carries several v1 signatures (secret rotation), then one matching is enough', () => {
    const oldSigned = signMerchantWebhook('whsec_old', t, body);
    const newSigned = signMerchantWebhook(SECRET, t, body);
    const header = `${oldSigned},${newSigned.split(',')[1]}`;
    expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t) })).toBe(true);
    expect(verifyMerchantWebhook('whsec_old', header, body, { now: at(t) })).toBe(true);
    expect(verifyMerchantWebhook('whsec_third', header, body, { now: at(t) })).toBe(false);
  });

  it('when the header is missing or malformed, then it is rejected without throwing', () => {
    for (const header of [undefined, '', 'v1=abc', `t=${t}`, `t=abc,v1=${'0'.repeat(64)}`, `t=${t},v1=short`, 'garbage']) {
      expect(verifyMerchantWebhook(SECRET, header, body, { now: at(t) })).toBe(false);
    }
  });

  it('when the event types are listed, then the ones in use today are there once each', () => {
    expect(MERCHANT_EVENT_TYPES).toEqual(expect.arrayContaining(['order.registered', 'order.paid', 'payment.failed']));
    expect(new Set(MERCHANT_EVENT_TYPES).size).toBe(MERCHANT_EVENT_TYPES.length);
  });
});

describe.each(ENGINES)('merchant webhooks on %s', (engine) => {
  let t: TestDatabase;
  let receiver: Receiver;
  let clock: ReturnType<typeof createClock>;
  const dispatchers: MerchantWebhookDispatcher[] = [];

  const newDispatcher = (config: Partial<MerchantWebhookDispatcherConfig> = {}, db: Database = t.db, logger = createMemoryLogger()) => {
    const dispatcher = new MerchantWebhookDispatcher(
      db,
      { secret: SECRET, timeoutMs: 2000, backoffSeconds: [10, 30, 120], concurrency: 4, leaseSeconds: 60, ...config },
      { logger, now: clock.now },
    );
    dispatchers.push(dispatcher);
    return dispatcher;
  };
  const deliveryOf = async (eventId: string) => {
    const { rows } = await t.db.query<{
      id: number; status: string; attempts: number; next_attempt_at: Date; last_status: number | null; delivered_at: Date | null;
    }>('SELECT id, status, attempts, next_attempt_at, last_status, delivered_at FROM webhook_deliveries WHERE event_id = $1', [eventId]);
    expect(rows).toHaveLength(1);
    return rows[0]!;
  };
  const attemptsOf = async (eventId: string) =>
    (
      await t.db.query<{ attempt: number; response_status: number | null; error: string | null; created_at: Date }>(
        `SELECT a.attempt, a.response_status, a.error, a.created_at FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1 ORDER BY a.attempt`,
        [eventId],
      )
    ).rows;

  beforeAll(async () => {
    t = await openTestDatabase(engine);
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await t?.drop();
  });
  beforeEach(async () => {
    clock = createClock();
    receiver.reset();
    await t.db.query('DELETE FROM webhook_attempts');
    await t.db.query('DELETE FROM webhook_deliveries');
    await t.db.query('DELETE FROM webhook_events');
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  });

  it('when an event is enqueued in a transaction that rolls back, then it is neither stored nor delivered', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await enqueueMerchantEvent(tx, receiver.url('/hooks'), 'order.paid', { orderId: 'ord_rolled_back' }, clock.now());
        throw new Error('order update failed');
      }),
    ).rejects.toThrow('order update failed');
    expect(await newDispatcher().runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    expect(receiver.requests).toHaveLength(0);
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_events');
    expect(rows[0]!.n).toBe(0);
  });

  it('when no webhook URL is configured, then the event is stored but no delivery is created', async () => {
    const event = await t.db.transaction((tx) => enqueueMerchantEvent(tx, null, 'order.registered', { orderId: 'ord_1' }, clock.now()));
    const { rows } = await t.db.query<{ type: string }>('SELECT type FROM webhook_events WHERE id = $1', [event.id]);
    expect(rows).toEqual([{ type: 'order.registered' }]);
    const deliveries = await t.db.query('SELECT id FROM webhook_deliveries');
    expect(deliveries.rows).toHaveLength(0);
    expect(await newDispatcher().runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
  });

  it('when a delivery succeeds the first time, then it is sent signed, marked delivered and not sent again', async () => {
    const event = await t.db.transaction((tx) =>
      enqueueMerchantEvent(tx, receiver.url('/hooks'), 'order.paid',
        { orderId: 'ord_1', reference: 'KC-ABC', amount: { currency: 'MXN', centavos: 1_234_500 } }, clock.now()),
    );
    expect(event.id).toMatch(/^evt_[\w-]{16}$/);
    expect(event.created).toBe(clock.now().toISOString());

    const dispatcher = newDispatcher();
    const sentAtMs = clock.ms;
    expect(await dispatcher.runOnce()).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    clock.advance(86_400);
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });

    expect(receiver.requests).toHaveLength(1);
    const [received] = receiver.requests;
    expect(received!.body).toBe(JSON.stringify(event));
    expect(JSON.parse(received!.body)).toEqual({
      id: event.id, type: 'order.paid', created: event.created,
      data: { orderId: 'ord_1', reference: 'KC-ABC', amount: { currency: 'MXN', centavos: 1_234_500 } },
    });
    expect(received!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'kasu-checkout-webhooks/1',
      'kasu-event-id': event.id,
      'kasu-event-type': 'order.paid',
    });
    const signature = received!.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    expect(verifyMerchantWebhook(SECRET, signature, received!.body, { now: () => sentAtMs })).toBe(true);
    expect(verifyMerchantWebhook('whsec_wrong', signature, received!.body, { now: () => sentAtMs })).toBe(false);
    // A day later the same request is a replay.
    expect(verifyMerchantWebhook(SECRET, signature, received!.body, { now: clock.nowMs })).toBe(false);

    const delivery = await deliveryOf(event.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, last_status: 200 });
    expect(delivery.delivered_at).toBeInstanceOf(Date);
    expect(await attemptsOf(event.id)).toMatchObject([{ attempt: 1, response_status: 200, error: null }]);
  });

  it('when the receiver answers 500 twice and then 200, then exactly three attempts are made, none before its backoff', async () => {
    receiver.script('/flaky', [500, 500, 200]);
    const start = clock.now();
    const event = await t.db.transaction((tx) => enqueueMerchantEvent(tx, receiver.url('/flaky'), 'payment.failed', { paymentId: 'pay_1' }, start));
    const dispatcher = newDispatcher({ backoffSeconds: [10, 30, 120] });

    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    const afterFirst = await deliveryOf(event.id);
    expect(afterFirst).toMatchObject({ status: 'pending', attempts: 1, last_status: 500 });
    // The first backoff entry, plus at most 10% jitter, never less.
    expect(afterFirst.next_attempt_at.getTime() - start.getTime()).toBeGreaterThanOrEqual(10_000);
    expect(afterFirst.next_attempt_at.getTime() - start.getTime()).toBeLessThanOrEqual(11_000);

    clock.set(new Date(afterFirst.next_attempt_at.getTime() - 1));
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    expect(receiver.requests).toHaveLength(1);

    clock.set(afterFirst.next_attempt_at);
    const secondAt = clock.ms;
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    const afterSecond = await deliveryOf(event.id);
    expect(afterSecond.next_attempt_at.getTime() - secondAt).toBeGreaterThanOrEqual(30_000);
    expect(afterSecond.next_attempt_at.getTime() - secondAt).toBeLessThanOrEqual(33_000);

    clock.set(new Date(afterSecond.next_attempt_at.getTime() - 1));
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    clock.set(afterSecond.next_attempt_at);
    expect(await dispatcher.runOnce()).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    clock.advance(3600);
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });

    expect(receiver.requests).toHaveLength(3);
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
    for (const request of receiver.requests) expect(request.headers['kasu-event-id']).toBe(event.id);
    expect(await deliveryOf(event.id)).toMatchObject({ status: 'delivered', attempts: 3, last_status: 200 });
    expect(await attemptsOf(event.id)).toMatchObject([
      { attempt: 1, response_status: 500, error: null },
      { attempt: 2, response_status: 500, error: null },
      { attempt: 3, response_status: 200, error: null },
    ]);
  });

  it('when the receiver never succeeds, then the delivery ends failed once the backoff table is exhausted', async () => {
    receiver.script('/broken', [503]);
    const event = await t.db.transaction((tx) => enqueueMerchantEvent(tx, receiver.url('/broken'), 'order.registered', { orderId: 'ord_2' }, clock.now()));
    const logger = createMemoryLogger();
    const dispatcher = newDispatcher({ backoffSeconds: [1, 2] }, t.db, logger);

    const results = [];
    for (let run = 0; run < 5; run += 1) {
      results.push(await dispatcher.runOnce());
      clock.advance(10);
    }
    expect(results).toEqual([
      { delivered: 0, retrying: 1, failed: 0 },
      { delivered: 0, retrying: 1, failed: 0 },
      { delivered: 0, retrying: 0, failed: 1 },
      { delivered: 0, retrying: 0, failed: 0 },
      { delivered: 0, retrying: 0, failed: 0 },
    ]);
    expect(receiver.requests).toHaveLength(3);
    expect(await deliveryOf(event.id)).toMatchObject({ status: 'failed', attempts: 3, last_status: 503 });
    expect((await attemptsOf(event.id)).map((a) => a.response_status)).toEqual([503, 503, 503]);
    // Every attempt is logged with what an operator needs, and the secret never is.
    const attempts = logger.lines.map((line) => JSON.parse(line)).filter((line) => line.deliveryId !== undefined);
    expect(attempts).toHaveLength(3);
    expect(attempts[2]).toMatchObject({ level: 'error', eventType: 'order.registered', attempt: 3, status: 503, outcome: 'failed' });
    expect(typeof attempts[0].ms).toBe('number');
    expect(logger.lines.join('\n')).not.toContain(SECRET);
  });

  it('when the endpoint refuses connections, then the attempt is recorded with the error text and retried later', async () => {
    const closed = await startReceiver();
    const deadUrl = closed.url('/gone');
    await closed.close();
    const event = await t.db.transaction((tx) => enqueueMerchantEvent(tx, deadUrl, 'order.paid', { orderId: 'ord_3' }, clock.now()));
    expect(await newDispatcher().runOnce()).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    const [attempt] = await attemptsOf(event.id);
    expect(attempt).toMatchObject({ attempt: 1, response_status: null });
    expect(attempt!.error).toMatch(/ECONNREFUSED/);
  });

  it('when one endpoint never answers, then the other deliveries go out without waiting for its timeout', async () => {
    receiver.script('/slow', ['hang']);
    const slow = await enqueueMerchantEvent(t.db, receiver.url('/slow'), 'order.paid', { n: 0 }, new Date(clock.ms - 1000));
    const fast = [];
    for (let n = 1; n <= 6; n += 1) fast.push(await enqueueMerchantEvent(t.db, receiver.url('/fast'), 'order.paid', { n }, clock.now()));
    receiver.state.delayMs = 20;

    const started = performance.now();
    const result = await newDispatcher({ timeoutMs: 1500, concurrency: 2 }).runOnce();
    const elapsed = performance.now() - started;

    expect(result).toEqual({ delivered: 6, retrying: 1, failed: 0 });
    const fastArrivals = receiver.requests.filter((r) => r.path === '/fast').map((r) => r.atMs - started);
    expect(fastArrivals).toHaveLength(6);
    expect(Math.max(...fastArrivals)).toBeLessThan(1000);
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(4000);
    const [slowAttempt] = await attemptsOf(slow.id);
    expect(slowAttempt!.response_status).toBeNull();
    expect(slowAttempt!.error).toMatch(/^TimeoutError: .*timeout/);
    for (const event of fast) expect((await deliveryOf(event.id)).status).toBe('delivered');
  });

  it('when a delivery is leased by another instance, then it is left alone until the lease expires', async () => {
    const event = await enqueueMerchantEvent(t.db, receiver.url('/hooks'), 'order.paid', { orderId: 'ord_4' }, clock.now());
    // Another instance claimed it and crashed mid-send.
    await t.db.query('UPDATE webhook_deliveries SET locked_until = $1 WHERE event_id = $2', [new Date(clock.ms + 60_000), event.id]);
    const dispatcher = newDispatcher();
    expect(await dispatcher.runOnce()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    clock.advance(60);
    expect(await dispatcher.runOnce()).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    expect(receiver.requests).toHaveLength(1);
  });

  it('when two instances run at the same moment on one database, then each delivery is sent exactly once', async () => {
    receiver.state.delayMs = 15;
    const events = [];
    for (let n = 0; n < 24; n += 1) {
      events.push(await enqueueMerchantEvent(t.db, receiver.url('/hooks'), 'charge.succeeded', { n }, clock.now()));
    }
    // A second instance has a connection pool of its own; PGlite is one connection, shared.
    const otherDb = engine === 'postgres'
      ? await openDatabase({ kind: 'postgres', url: POSTGRES_URL, schema: t.schema!, maxConnections: 5 })
      : t.db;
    try {
      const [first, second] = await Promise.all([
        newDispatcher({ concurrency: 4 }, t.db).runOnce(),
        newDispatcher({ concurrency: 4 }, otherDb).runOnce(),
      ]);
      expect(first.delivered + second.delivered).toBe(24);
      if (engine === 'postgres') {
        // Both really worked in parallel; otherwise this test would not test the claim.
        expect(first.delivered).toBeGreaterThan(0);
        expect(second.delivered).toBeGreaterThan(0);
      }
    } finally {
      if (otherDb !== t.db) await otherDb.close();
    }
    const sent = receiver.requests.map((r) => r.headers['kasu-event-id']);
    expect(sent).toHaveLength(24);
    expect(new Set(sent)).toEqual(new Set(events.map((e) => e.id)));
    for (const request of receiver.requests) {
      expect(verifyMerchantWebhook(SECRET, request.headers['kasu-signature'] as string, request.body, { now: clock.nowMs })).toBe(true);
    }
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_attempts');
    expect(rows[0]!.n).toBe(24);
  });

  it('when a failing delivery is due before others, then it does not block them', async () => {
    receiver.script('/broken', [500]);
    const broken = await enqueueMerchantEvent(t.db, receiver.url('/broken'), 'order.paid', { n: 0 }, new Date(clock.ms - 5000));
    const ok = await enqueueMerchantEvent(t.db, receiver.url('/hooks'), 'order.paid', { n: 1 }, clock.now());
    expect(await newDispatcher({ concurrency: 1 }).runOnce()).toEqual({ delivered: 1, retrying: 1, failed: 0 });
    expect((await deliveryOf(broken.id)).status).toBe('pending');
    expect((await deliveryOf(ok.id)).status).toBe('delivered');
  });
});

describe('merchant webhook dispatcher configuration', () => {
  // The constructor does not touch the database.
  const db = {} as Database;

  it('when the secret is empty or the lease is not longer than the timeout, then it refuses to start', () => {
    expect(() => new MerchantWebhookDispatcher(db, { secret: '' })).toThrow(/secret/);
    expect(() => new MerchantWebhookDispatcher(db, { secret: SECRET, timeoutMs: 10_000, leaseSeconds: 10 })).toThrow(/lease/);
  });
});
