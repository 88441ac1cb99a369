/**
 * Charging survives crashes and scales out on PostgreSQL: processes running the charge engine are SIGKILLed in the
 * middle of a run and restarted, or run three at a time; the card gateway simulator's ledger proves that no
 * instalment is charged twice and none is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../server/cards/subscription-store.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../../server/sandbox/card/card-sandbox.js';
import { POSTGRES_URL, openTestDatabase, type TestDatabase } from '../support/databases.js';

const T0 = new Date('2026-12-01T16:00:00Z');
const EVERYTHING_DUE = new Date(T0.getTime() + 400 * 86_400_000).toISOString();

describe('card charges across crashes and processes on PostgreSQL', () => {
  let t: TestDatabase;
  let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
  let cardToken = '';
  const customerId = 'cus-crash';
  let count = 0;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    sandbox = await startCardSandbox({ latencyMs: 15 });
    const client = new CardClient({
      baseUrl: sandbox.url, merchantId: SANDBOX_CARD_MERCHANT_ID, key: SANDBOX_CARD_KEY,
      timeouts: { connectMs: 1_000, headersMs: 5_000, bodyMs: 5_000 }, userAgent: 'test',
    });
    await client.ensureCustomer({ customerId, contractNumber: 'C1', email: 'c@example.mx', phoneNumber: '5512345678', address: 'Calle 5', zipCode: '50000' });
    await client.close();
    const response = await fetch(`${sandbox.url}/tokenizer/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ merchantId: SANDBOX_CARD_MERCHANT_ID, customerId, number: '4242424242424242', expiry: '12/30', cvv: '123', name: 'ANA' }),
    });
    cardToken = ((await response.json()) as { token: string }).token;
  });
  afterAll(async () => {
    await sandbox?.close();
    await t?.drop();
  });

  async function seed(orders: number, instalments: number): Promise<string[]> {
    const references: string[] = [];
    for (let i = 0; i < orders; i++) {
      const n = ++count;
      const reference = `KC-CR${String(n).padStart(8, '0')}`;
      references.push(reference);
      await t.db.query(
        `INSERT INTO checkouts (id, token_hash, curp, birth_date, sex, status, expires_at) VALUES ($1, 'x', 'CAMC880526HMCBNR04', '1988-05-26', 'H', 'registered', now() + interval '1 day')`,
        [`chk_cr${n}`],
      );
      await t.db.query(
        `INSERT INTO orders (id, reference, checkout_id, curp, product, payment_method, currency, price_centavos, instalments, instalment_centavos, status)
         VALUES ($1, $2, $3, 'CAMC880526HMCBNR04', 'Funerario', 'card', 'MXN', $4, $5, 10000, 'registered')`,
        [`ord_cr${n}`, reference, `chk_cr${n}`, 10_000 * instalments, instalments],
      );
      await t.db.transaction((tx) => createSubscription(tx, {
        orderId: `ord_cr${n}`, card: { customerId, token: cardToken, brand: 'visa', last4: '4242' },
        currency: 'MXN', instalmentAmount: 10_000, instalments, firstChargeDate: '2026-12-01', payDay: 1, firstDueAt: T0,
      }));
    }
    return references;
  }

  function worker(): { child: ChildProcess; done: Promise<string> } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/charge-worker.ts'], {
      env: { ...process.env, DATABASE_URL: POSTGRES_URL, DB_SCHEMA: t.schema!, CARD_BASE_URL: sandbox.url, NOW: EVERYTHING_DUE, LEASE_SECONDS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', () => undefined);
    const done = new Promise<string>((resolve) => child.on('exit', () => resolve(out)));
    return { child, done };
  }

  const ready = (child: ChildProcess) =>
    new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve()));

  /** Per instalment of these orders: how many approved charges the gateway holds, and our status. */
  async function audit(references: string[]) {
    const approved = new Map<string, number>();
    for (const entry of sandbox.state.ledger) {
      if (entry.outcome !== 'approved') continue;
      const instalment = entry.merchantOrderId.replace(/-\d+$/, '');
      approved.set(instalment, (approved.get(instalment) ?? 0) + 1);
    }
    const { rows } = await t.db.query<{ reference: string; number: number; status: string }>(
      `SELECT o.reference, i.number, i.status FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id
       JOIN orders o ON o.id = s.order_id WHERE o.reference = ANY($1)`,
      [references],
    );
    return rows.map((row) => ({ ...row, charges: approved.get(`${row.reference}-${row.number}`) ?? 0 }));
  }

  it('when the charging process is SIGKILLed mid-run and restarted, 10 times, then no instalment is charged twice and none is lost', async () => {
    const references = await seed(30, 10);
    for (let kill = 0; kill < 10; kill++) {
      const { child, done } = worker();
      await ready(child);
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.floor(Math.random() * 250)));
      child.kill('SIGKILL');
      await done;
    }
    const afterKills = await audit(references);
    expect(afterKills.filter((r) => r.status === 'paid').length).toBeLessThan(300); // the kills did interrupt runs
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the killed runs' leases expire
    for (let pass = 0; pass < 3; pass++) await worker().done; // finish (unknown outcomes are resent at once)
    const rows = await audit(references);
    expect(rows).toHaveLength(300);
    expect(rows.filter((r) => r.charges > 1)).toEqual([]);
    // Every instalment is paid with exactly one charge, or under review (an earlier send reached the gateway
    // but its answer died with the process): never lost, never charged twice.
    expect(rows.filter((r) => r.status === 'paid' && r.charges !== 1)).toEqual([]);
    expect(rows.filter((r) => r.status !== 'paid' && r.status !== 'review')).toEqual([]);
    expect(rows.filter((r) => r.status === 'review').every((r) => r.charges <= 1)).toBe(true);
    expect(rows.filter((r) => r.status === 'paid').length).toBeGreaterThan(250);
  }, 120_000);

  it('when three processes run the due charges together on one PostgreSQL, then each instalment is charged exactly once', async () => {
    const references = await seed(30, 10);
    const outputs = await Promise.all([worker(), worker(), worker()].map((w) => w.done));
    const results = outputs.map((out) => JSON.parse(out.trim().split('\n').at(-1)!) as { approved: number });
    expect(results.reduce((sum, r) => sum + r.approved, 0)).toBe(300);
    expect(results.filter((r) => r.approved > 0).length).toBeGreaterThan(1);
    const rows = await audit(references);
    expect(rows.every((r) => r.status === 'paid' && r.charges === 1)).toBe(true);
  }, 120_000);
});
