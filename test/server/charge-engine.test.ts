/**
 * The card charge engine against the card gateway simulator over real HTTP, on both databases: every instalment
 * charged exactly once, counted from the simulator's own ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChargeEngine, DEFAULT_CHARGE_ENGINE_CONFIG, type ChargeEngineConfig } from '../../server/cards/charge-engine.js';
import { createSubscription } from '../../server/cards/subscription-store.js';
import { openDatabase, type Database, type Queryable } from '../../server/db/database.js';
import { createMemoryLogger } from '../../server/log.js';
import type { CardApi } from '../../server/providers/card/card-api.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../../server/sandbox/card/card-sandbox.js';
import { ENGINES, POSTGRES_URL, openTestDatabase, type TestDatabase } from '../support/databases.js';

const T0 = new Date('2026-12-01T16:00:00Z');
const DAY = 86_400_000;

describe.each(ENGINES)('card charge engine on %s', (engine) => {
  let t: TestDatabase;
  let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
  const clients: CardClient[] = [];
  let orderCount = 0;

  const client = (timeoutMs = 5_000) => {
    const made = new CardClient({
      baseUrl: sandbox.url,
      merchantId: SANDBOX_CARD_MERCHANT_ID,
      key: SANDBOX_CARD_KEY,
      timeouts: { connectMs: 1_000, headersMs: timeoutMs, bodyMs: timeoutMs },
      userAgent: 'kasu-checkout-test',
    });
    clients.push(made);
    return made;
  };
  const engineWith = (db: Database, overrides: Partial<ChargeEngineConfig> = {}, timeoutMs?: number) =>
    new ChargeEngine(db, client(timeoutMs), { ...DEFAULT_CHARGE_ENGINE_CONFIG, merchantWebhookUrl: 'http://127.0.0.1:9/hooks', ...overrides }, createMemoryLogger());

  beforeAll(async () => {
    t = await openTestDatabase(engine);
    sandbox = await startCardSandbox({ hangMs: 1_500 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox?.close();
    await t?.drop();
  });

  /** A customer at the gateway with a tokenised card, as the tokenizer page would leave it. */
  async function customerWithCard(cardNumber: string) {
    const customerId = `cus-${engine}-${++orderCount}`;
    await client().ensureCustomer({ customerId, contractNumber: `C${orderCount}`, email: 'c@example.mx', phoneNumber: '5512345678', address: 'Calle 5', zipCode: '50000' });
    const response = await fetch(`${sandbox.url}/tokenizer/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ merchantId: SANDBOX_CARD_MERCHANT_ID, customerId, number: cardNumber, expiry: '12/30', cvv: '123', name: 'ANA PEREZ' }),
    });
    expect(response.status).toBe(201);
    const card = (await response.json()) as { token: string; last4: string; brand: string; expiry: string };
    return { customerId, ...card };
  }

  /** An order with a card subscription of `instalments` payments of 500.00, the first due at T0. */
  async function subscription(card: Awaited<ReturnType<typeof customerWithCard>>, instalments: number) {
    const n = ++orderCount;
    const reference = `KC-${engine.slice(0, 2).toUpperCase()}${String(n).padStart(8, '0')}`;
    await t.db.query(
      `INSERT INTO checkouts (id, token_hash, curp, birth_date, sex, status, expires_at) VALUES ($1, 'x', 'CAMC880526HMCBNR04', '1988-05-26', 'H', 'registered', $2)`,
      [`chk_${n}`, new Date(T0.getTime() + 90 * DAY)],
    );
    await t.db.query(
      `INSERT INTO orders (id, reference, checkout_id, curp, product, payment_method, currency, price_centavos, instalments, instalment_centavos, status)
       VALUES ($1, $2, $3, 'CAMC880526HMCBNR04', 'Funerario', 'card', 'MXN', $4, $5, 50000, 'registered')`,
      [`ord_${n}`, reference, `chk_${n}`, 50_000 * instalments, instalments],
    );
    const created = await t.db.transaction((tx) => createSubscription(tx, {
      orderId: `ord_${n}`, card: { customerId: card.customerId, token: card.token, brand: card.brand, last4: card.last4 },
      currency: 'MXN', instalmentAmount: 50_000, instalments, firstChargeDate: '2026-12-01', payDay: 1, firstDueAt: T0,
    }));
    return { reference, ...created };
  }

  const ledgerFor = (reference: string) => sandbox.state.ledger.filter((entry) => entry.merchantOrderId.startsWith(`${reference}-`));

  it('when 1,000 instalments are due and two instances run the charges at the same time, then each is charged exactly once', async () => {
    const card = await customerWithCard('4242424242424242');
    const subscriptions = [];
    for (let i = 0; i < 100; i++) subscriptions.push(await subscription(card, 10));
    // A second connection (pool) to the same database stands in for a second BFF instance.
    const other = engine === 'postgres' ? await openDatabase({ kind: 'postgres', url: POSTGRES_URL, schema: t.schema!, maxConnections: 5 }) : t.db;
    try {
      const everythingDue = new Date(T0.getTime() + 400 * DAY);
      const [a, b] = await Promise.all([engineWith(t.db).runDue(everythingDue), engineWith(other).runDue(everythingDue)]);
      expect(a.approved + b.approved).toBe(1_000);
      if (engine === 'postgres') expect(Math.min(a.approved, b.approved)).toBeGreaterThan(0); // both really worked
    } finally {
      if (other !== t.db) await other.close();
    }
    const references = new Set(subscriptions.map((s) => s.reference));
    const charged = sandbox.state.ledger.filter((entry) => references.has(entry.merchantOrderId.replace(/-\d+-\d+$/, '')));
    expect(charged).toHaveLength(1_000);
    expect(new Set(charged.map((entry) => entry.merchantOrderId.replace(/-\d+$/, ''))).size).toBe(1_000); // one per instalment
    expect(charged.every((entry) => entry.amount === '500.00' && entry.outcome === 'approved')).toBe(true);
    const { rows } = await t.db.query<{ status: string; n: number }>(
      `SELECT s.status, count(*)::int AS n FROM subscriptions s JOIN orders o ON o.id = s.order_id WHERE o.reference = ANY($1) GROUP BY s.status`,
      [[...references]],
    );
    expect(rows).toEqual([{ status: 'completed', n: 100 }]);
    expect(await engineWith(t.db).runDue(new Date(T0.getTime() + 800 * DAY))).toMatchObject({ approved: 0 });
  }, 120_000);

  it('when the engine is stopped during a run (SIGTERM), then what was sent is recorded, nothing is left for review, and the unsent instalments are given back at once', async () => {
    const card = await customerWithCard('4242424242424242');
    const subscriptions = [];
    for (let i = 0; i < 30; i++) subscriptions.push(await subscription(card, 10));
    const references = new Set(subscriptions.map((s) => s.reference));
    const sent = () => sandbox.state.ledger.filter((entry) => references.has(entry.merchantOrderId.replace(/-\d+-\d+$/, ''))).length;
    const everythingDue = new Date(T0.getTime() + 400 * DAY);
    sandbox.state.latencyMs = 20;
    try {
      const stopping = engineWith(t.db);
      const run = stopping.runDue(everythingDue);
      while (sent() < 20) await new Promise((resolve) => setTimeout(resolve, 2));
      stopping.stop();
      const stopped = await run;
      expect(stopped.approved, 'every charge sent is recorded').toBe(sent());
      expect(stopped).toMatchObject({ unknown: 0, review: 0 });
      expect(stopped.approved).toBeLessThan(300);
      const { rows } = await t.db.query<{ status: string; leased: boolean; n: number }>(
        `SELECT i.status, (i.locked_until IS NOT NULL) AS leased, count(*)::int AS n FROM instalments i
         JOIN subscriptions s ON s.id = i.subscription_id JOIN orders o ON o.id = s.order_id
         WHERE o.reference = ANY($1) AND i.status <> 'paid' GROUP BY 1, 2`,
        [[...references]],
      );
      expect(rows, 'unsent instalments scheduled and not leased').toEqual([{ status: 'scheduled', leased: false, n: 300 - stopped.approved }]);
      // The next run (another instance, or this one restarted) charges the rest at once: each instalment once.
      const rest = await engineWith(t.db).runDue(everythingDue);
      expect(stopped.approved + rest.approved).toBe(300);
      expect(sent()).toBe(300);
    } finally {
      sandbox.state.latencyMs = 0;
    }
  }, 60_000);

  it('when 200 instalments are due, then the database work is shared: fewer than 3 round trips per charge (it was 16)', async () => {
    const card = await customerWithCard('4242424242424242');
    const references: string[] = [];
    for (let i = 0; i < 20; i++) references.push((await subscription(card, 10)).reference);
    // Every statement counts, and BEGIN and COMMIT as two more for each transaction.
    let roundTrips = 0;
    const counted = (q: Queryable): Queryable => ({
      query: (sql, params) => {
        roundTrips += 1;
        return q.query(sql, params);
      },
    });
    const db: Database = {
      kind: t.db.kind,
      query: counted(t.db).query,
      transaction: (fn) => {
        roundTrips += 2;
        return t.db.transaction((tx) => fn(counted(tx)));
      },
      close: () => t.db.close(),
    };
    const result = await engineWith(db).runDue(new Date(T0.getTime() + 400 * DAY));
    expect(result).toMatchObject({ leased: 200, approved: 200 });
    console.log(`charge-engine (${engine}): ${(roundTrips / 200).toFixed(2)} database round trips per charge`);
    expect(roundTrips / 200).toBeLessThan(3);
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM subscriptions s JOIN orders o ON o.id = s.order_id WHERE o.reference = ANY($1) AND s.status = 'completed'`,
      [references],
    );
    expect(rows[0]!.n).toBe(20);
    const events = await t.db.query<{ n: number; deliveries: number }>(
      `SELECT count(*)::int AS n, (SELECT count(*)::int FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                                  WHERE e.payload->'data'->>'reference' = ANY($1)) AS deliveries
       FROM webhook_events WHERE type = 'charge.succeeded' AND payload->'data'->>'reference' = ANY($1)`,
      [references],
    );
    expect(events.rows[0]).toEqual({ n: 200, deliveries: 200 });
  }, 60_000);

  it('when an approval is recorded, then the attempt, instalment, payment, subscription and merchant event all say so', async () => {
    const card = await customerWithCard('4242424242424242');
    const { reference, subscriptionId, instalmentIds } = await subscription(card, 2);
    expect(await engineWith(t.db).runDue(T0)).toMatchObject({ approved: 1 });
    const [charged] = ledgerFor(reference);
    const attempt = await t.db.query(
      `SELECT attempt, merchant_order_id, status, sends, response_code, authorization_number, gateway_order_id, error
       FROM charge_attempts WHERE instalment_id = $1`, [instalmentIds[0]]);
    expect(attempt.rows).toEqual([{
      attempt: 1, merchant_order_id: `${reference}-1-1`, status: 'approved', sends: 1, response_code: '00',
      authorization_number: expect.any(String), gateway_order_id: expect.any(String), error: null,
    }]);
    const instalments = await t.db.query<{ status: string; paid: boolean; locked_until: Date | null; lease_token: string | null }>(
      `SELECT status, paid_at IS NOT NULL AS paid, locked_until, lease_token FROM instalments WHERE subscription_id = $1 ORDER BY number`,
      [subscriptionId]);
    expect(instalments.rows).toEqual([
      { status: 'paid', paid: true, locked_until: null, lease_token: null },
      { status: 'scheduled', paid: false, locked_until: null, lease_token: null },
    ]);
    const payments = await t.db.query(
      `SELECT p.id, p.provider, p.status, p.currency, p.amount_centavos, p.instalment_number, p.provider_reference, p.provider_status,
              p.paid_at IS NOT NULL AS paid
       FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.reference = $1`, [reference]);
    expect(payments.rows).toEqual([{
      id: `pay_${reference}-1-1`, provider: 'card', status: 'paid', currency: 'MXN', amount_centavos: 50_000, instalment_number: 1,
      provider_reference: attempt.rows[0]!.gateway_order_id, provider_status: 'approved', paid: true,
    }]);
    expect(charged).toMatchObject({ merchantOrderId: `${reference}-1-1`, outcome: 'approved' });
    const sub = await t.db.query<{ status: string }>('SELECT status FROM subscriptions WHERE id = $1', [subscriptionId]);
    expect(sub.rows[0]!.status).toBe('active'); // one instalment is left
    const events = await t.db.query<{ id: string; type: string; payload: Record<string, unknown>; created_at: Date; url: string }>(
      `SELECT e.id, e.type, e.payload, e.created_at, d.url FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id
       WHERE e.payload->'data'->>'reference' = $1`, [reference]);
    expect(events.rows).toHaveLength(1);
    const [event] = events.rows;
    expect(event).toMatchObject({ type: 'charge.succeeded', url: 'http://127.0.0.1:9/hooks' });
    expect(event!.payload).toEqual({
      id: event!.id, type: 'charge.succeeded', created: event!.created_at.toISOString(),
      data: {
        reference, subscriptionId, instalment: { number: 1, of: 2, amount: 50_000, currency: 'MXN' }, merchantOrderId: `${reference}-1-1`,
        authorizationNumber: attempt.rows[0]!.authorization_number, gatewayOrderId: attempt.rows[0]!.gateway_order_id,
      },
    });
    // The last instalment paid completes the subscription.
    expect(await engineWith(t.db).runDue(new Date(T0.getTime() + 40 * DAY))).toMatchObject({ approved: 1 });
    const done = await t.db.query<{ status: string }>('SELECT status FROM subscriptions WHERE id = $1', [subscriptionId]);
    expect(done.rows[0]!.status).toBe('completed');
  });

  it('when a run reaches an instalment whose lease ran out and another run took it over, then it skips it: one charge', async () => {
    const card = await customerWithCard('4242424242424242');
    const { reference, instalmentIds } = await subscription(card, 2);
    const gateway = client();
    let firstSent!: () => void;
    const sending = new Promise<void>((resolve) => (firstSent = resolve));
    // Instalment 1's answer takes longer than the run's 1 s lease of instalment 2 (leased in the same batch).
    const slow: CardApi = {
      ensureCustomer: (input) => gateway.ensureCustomer(input),
      listCards: (customerId) => gateway.listCards(customerId),
      close: () => gateway.close(),
      async chargeToken(input) {
        if (input.merchantOrderId !== `${reference}-1-1`) return gateway.chargeToken(input);
        firstSent();
        await new Promise((resolve) => setTimeout(resolve, 1_600));
        return gateway.chargeToken(input);
      },
    };
    const first = new ChargeEngine(t.db, slow, {
      ...DEFAULT_CHARGE_ENGINE_CONFIG, concurrency: 1, leaseSeconds: 1, merchantWebhookUrl: null,
    }, createMemoryLogger());
    const everythingDue = new Date(T0.getTime() + 40 * DAY);
    const run = first.runDue(everythingDue);
    await sending;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // Instalment 2's lease has run out: another run takes it over and charges it.
    expect(await engineWith(t.db).chargeNow(instalmentIds[1]!, everythingDue)).toBe('approved');
    expect(await run).toMatchObject({ leased: 2, approved: 1, skipped: 1 });
    expect(ledgerFor(reference).map((entry) => entry.merchantOrderId).sort()).toEqual([`${reference}-1-1`, `${reference}-2-1`]);
  });

  it('when a charge times out and the resend with the same merchantOrderId is refused as a duplicate, then the instalment goes to review and is never charged again', async () => {
    const card = await customerWithCard('4000000000000259');
    const { reference, instalmentIds } = await subscription(card, 3);
    const chargeEngine = engineWith(t.db, { unknownRetrySeconds: 60 }, 300);
    expect(await chargeEngine.runDue(T0)).toMatchObject({ unknown: 1, approved: 0 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 61_000))).toMatchObject({ review: 1 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 10 * DAY))).toMatchObject({ leased: 0 });
    expect(ledgerFor(reference)).toEqual([expect.objectContaining({ merchantOrderId: `${reference}-1-1`, answered: false })]);
    const { rows } = await t.db.query<{ attempt: number; merchant_order_id: string; status: string; sends: number }>(
      'SELECT attempt, merchant_order_id, status, sends FROM charge_attempts WHERE instalment_id = $1', [instalmentIds[0]],
    );
    expect(rows).toEqual([{ attempt: 1, merchant_order_id: `${reference}-1-1`, status: 'review', sends: 2 }]);
    const instalment = await t.db.query<{ status: string }>('SELECT status FROM instalments WHERE id = $1', [instalmentIds[0]]);
    expect(instalment.rows[0]!.status).toBe('review');
  });

  it('when a card keeps being declined, then it is retried on day 2 and day 7 with new attempt numbers, then the subscription is past due and cancelled, each step a webhook', async () => {
    const card = await customerWithCard('4000000000009995');
    const { reference, subscriptionId } = await subscription(card, 6);
    const chargeEngine = engineWith(t.db);
    expect(await chargeEngine.runDue(T0)).toMatchObject({ declined: 1 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 1 * DAY))).toMatchObject({ leased: 0 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 2 * DAY + 60_000))).toMatchObject({ declined: 1 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 6 * DAY))).toMatchObject({ leased: 0 });
    expect(await chargeEngine.runDue(new Date(T0.getTime() + 7 * DAY + 120_000))).toMatchObject({ pastDue: 1 });
    expect(ledgerFor(reference).map((e) => [e.merchantOrderId, e.responseCode])).toEqual([
      [`${reference}-1-1`, '51'], [`${reference}-1-2`, '51'], [`${reference}-1-3`, '51'],
    ]);
    const sub = await t.db.query<{ status: string }>('SELECT status FROM subscriptions WHERE id = $1', [subscriptionId]);
    expect(sub.rows[0]!.status).toBe('cancelled');
    const instalments = await t.db.query<{ status: string }>('SELECT status FROM instalments WHERE subscription_id = $1 ORDER BY number', [subscriptionId]);
    expect(instalments.rows.map((r) => r.status)).toEqual(['failed', 'cancelled', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);
    const events = await t.db.query<{ type: string }>(
      `SELECT type FROM webhook_events WHERE payload->'data'->>'reference' = $1 ORDER BY created_at, id`, [reference],
    );
    const types = events.rows.map((r) => r.type);
    expect(types.slice(0, 3)).toEqual(['charge.failed', 'charge.failed', 'charge.failed']);
    // The last decline makes the subscription past due and cancels it in one transaction: same instant, either order.
    expect(types.slice(3).sort()).toEqual(['subscription.cancelled', 'subscription.past_due']);
    await chargeEngine.runDue(new Date(T0.getTime() + 60 * DAY));
    expect(ledgerFor(reference)).toHaveLength(3); // a cancelled subscription is never charged again
  });
});
