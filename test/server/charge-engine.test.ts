/**
 * The card charge engine against the card gateway simulator over real HTTP, on both databases: every instalment
 * charged exactly once, counted from the simulator's own ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChargeEngine, DEFAULT_CHARGE_ENGINE_CONFIG, type ChargeEngineConfig } from '../../server/cards/charge-engine.js';
import { createSubscription } from '../../server/cards/subscription-store.js';
import { openDatabase, type Database } from '../../server/db/database.js';
import { createMemoryLogger } from '../../server/log.js';
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
