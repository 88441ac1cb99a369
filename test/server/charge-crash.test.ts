/**
 * Charging survives crashes and scales out on PostgreSQL: real BFF processes (server/main.ts, charging every second)
 * are SIGKILLed in the middle of a charge run and restarted, or run three at a time on one database; the card gateway
 * simulator's ledger proves that no instalment is charged twice and none is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../server/cards/subscription-store.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../../server/sandbox/card/card-sandbox.js';
import { POSTGRES_URL, openTestDatabase, type TestDatabase } from '../support/databases.js';


describe('card charges across crashes and processes on PostgreSQL', () => {
  let t: TestDatabase;
  let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
  let cardToken = '';
  const customerId = 'cus-crash';
  let count = 0;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    // 60 ms a charge: a BFF lives too briefly between kills to finish the work, so the kills land mid-run.
    sandbox = await startCardSandbox({ latencyMs: 60 });
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

  /** `orders` single-payment card orders whose instalment is due now. */
  async function seed(orders: number): Promise<string[]> {
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
         VALUES ($1, $2, $3, 'CAMC880526HMCBNR04', 'Funerario', 'card', 'MXN', 10000, 1, 10000, 'registered')`,
        [`ord_cr${n}`, reference, `chk_cr${n}`],
      );
      await t.db.transaction((tx) => createSubscription(tx, {
        orderId: `ord_cr${n}`, card: { customerId, token: cardToken, brand: 'visa', last4: '4242' },
        currency: 'MXN', instalmentAmount: 10_000, instalments: 1, firstChargeDate: '2026-11-23', payDay: 23,
        firstDueAt: new Date(Date.now() - 60_000),
      }));
    }
    return references;
  }

  /** A BFF process on the test's PostgreSQL schema, charging due instalments every second against the simulator. */
  function bff(): { child: ChildProcess; listening: Promise<void>; exited: Promise<void> } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        ...process.env, MODE: 'sandbox', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info',
        DATABASE_URL: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${t.schema}`)}`,
        CARD_BASE_URL: sandbox.url, CARD_CHARGE_INTERVAL_SECONDS: '1', CARD_CHARGE_LEASE_SECONDS: '2',
        KHIPU_POLL_INTERVAL_SECONDS: '3600', WEBHOOK_DISPATCH_INTERVAL_MS: '3600000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', () => undefined);
    const listening = new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('"listening"') && resolve()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    return { child, listening, exited };
  }

  async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  }

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

  it('when the BFF is SIGKILLed in the middle of a charge run and restarted, 10 times, then no instalment is charged twice and none is lost', async () => {
    const references = await seed(600);
    for (let kill = 0; kill < 10; kill++) {
      const { child, listening, exited } = bff();
      await listening;
      // The first charge run starts a second after listening; kill somewhere inside a run.
      await new Promise((resolve) => setTimeout(resolve, 1_000 + Math.floor(Math.random() * 300)));
      child.kill('SIGKILL');
      await exited;
    }
    const afterKills = await audit(references);
    expect(afterKills.filter((r) => r.status === 'paid').length).toBeLessThan(600); // the kills did interrupt runs
    const last = bff();
    await until(async () => (await audit(references)).every((r) => r.status === 'paid' || r.status === 'review'), 60_000);
    last.child.kill('SIGTERM');
    await last.exited;
    const rows = await audit(references);
    expect(rows).toHaveLength(600);
    expect(rows.filter((r) => r.charges > 1)).toEqual([]);
    // Every instalment is paid with exactly one charge, or under review (an earlier send reached the gateway but its
    // answer died with the process): never lost, never charged twice.
    expect(rows.filter((r) => r.status === 'paid' && r.charges !== 1)).toEqual([]);
    expect(rows.filter((r) => r.status !== 'paid' && r.status !== 'review')).toEqual([]);
    expect(rows.filter((r) => r.status === 'paid').length).toBeGreaterThan(500);
  }, 120_000);

  it('when three BFF processes charge due instalments together on one PostgreSQL, then each is charged exactly once', async () => {
    const references = await seed(200);
    const processes = [bff(), bff(), bff()];
    await Promise.all(processes.map((p) => p.listening));
    await until(async () => (await audit(references)).every((r) => r.status === 'paid'), 30_000);
    for (const p of processes) p.child.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    const rows = await audit(references);
    expect(rows.filter((r) => r.status !== 'paid' || r.charges !== 1)).toEqual([]);
  }, 120_000);
});
