/**
 * Charging survives crashes and scales out on PostgreSQL: real BFF processes (server/main.ts, charging every second)
 * are SIGKILLed in the middle of a charge run and restarted, or run three at a time on one database; the card gateway
 * simulator's ledger proves that no instalment is charged twice and none is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHARGE_ENGINE_CONFIG } from '../../server/cards/charge-engine.js';
import { createSubscription } from '../../server/cards/subscription-store.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../../server/sandbox/card/card-sandbox.js';
import { openTestDatabase, type TestDatabase } from '../support/databases.js';
import { admin, killAll, sleep, startBff, type BffProcess } from '../support/processes.js';

const KILLS = 20;
/** Due instalments at the start; TOP_UP more whenever fewer than TOP_UP_BELOW are left after a kill. */
const INITIAL_ORDERS = 300;
const TOP_UP = 200;
const TOP_UP_BELOW = 300;
/** Connections of the card client's pool (providerAgent in server/providers/provider-http.ts): requests on the wire. */
const CARD_CONNECTIONS = 16;

describe('card charges across crashes and processes on PostgreSQL', () => {
  let t: TestDatabase;
  let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
  let cardToken = '';
  const customerId = 'cus-crash';
  let count = 0;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    // 30 ms a charge: sends are in flight most of a run, so a kill leaves some unanswered.
    sandbox = await startCardSandbox({ latencyMs: 30 });
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
    await killAll();
    await sandbox?.close();
    await t?.drop();
  });

  /** `orders` single-payment card orders whose instalment is due now. */
  async function seed(orders: number): Promise<string[]> {
    const seedOne = async () => {
      const n = ++count;
      const reference = `KC-CR${String(n).padStart(8, '0')}`;
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
      return reference;
    };
    const references: string[] = [];
    // Five at a time: the test database's pool.
    while (references.length < orders) {
      references.push(...(await Promise.all(Array.from({ length: Math.min(5, orders - references.length) }, seedOne))));
    }
    return references;
  }

  /** A BFF process on the test's PostgreSQL schema, charging due instalments every second against the simulator. */
  function bff(): Promise<BffProcess> {
    return startBff({
      schema: t.schema!,
      env: { CARD_BASE_URL: sandbox.url, CARD_CHARGE_INTERVAL_SECONDS: '1', CARD_CHARGE_LEASE_SECONDS: '2' },
    });
  }

  async function until(check: () => Promise<boolean>, timeoutMs: number, pauseMs = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check()) && Date.now() < deadline) await sleep(pauseMs);
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

  it(`when the BFF is SIGKILLed in the middle of a charge run and restarted, ${KILLS} times, then no instalment is charged twice and none is lost`, async () => {
    const started = performance.now();
    const references = await seed(INITIAL_ORDERS);
    const seeded = performance.now();
    // The restart is spawned while the process before it charges, so a kill costs about one start-up, not two.
    let next = bff();
    const kills: Array<{ due: number; sendsInFlight: number; startupMs: number }> = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const current = await next;
      next = bff();
      const { rows: [clock] } = await t.db.query<{ now: Date }>('SELECT now() AS now');
      // A charge run now (the admin API runs the interval job at once); once it is sending (within 3 s: instalments
      // leased by a killed process are free again after the 2 s lease), killed 0–200 ms later (a run charges several
      // hundred a second: later, it may have charged all those free to it), while the restart is spawned, so the wait
      // costs little.
      void admin(current.url, '/admin/jobs/card-charges/run').catch(() => undefined);
      await until(async () => {
        const { rows } = await t.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM charge_attempts WHERE updated_at >= $1`, [clock!.now],
        );
        return rows[0]!.n > 0;
      }, 3_000, 20);
      await sleep(Math.floor(Math.random() * 200));
      await current.kill();
      // Sends written (before their gateway call) since this run started and never answered: they died with it.
      const { rows: [state] } = await t.db.query<{ due: number; sending: number }>(
        `SELECT (SELECT count(*)::int FROM instalments WHERE status = 'scheduled') AS due,
                (SELECT count(*)::int FROM charge_attempts WHERE status = 'sending' AND updated_at >= $1) AS sending`,
        [clock!.now],
      );
      kills.push({ due: state!.due, sendsInFlight: state!.sending, startupMs: current.startupMs });
      // However fast this machine charges, the next process finds due instalments: each kill lands in a run.
      if (state!.due < TOP_UP_BELOW) references.push(...(await seed(TOP_UP)));
    }
    const killed = performance.now();
    const last = await next;
    await until(async () => (await audit(references)).every((r) => r.status === 'paid' || r.status === 'review'), 60_000);
    await last.stop();
    const rows = await audit(references);
    const paid = rows.filter((r) => r.status === 'paid').length;
    const review = rows.filter((r) => r.status === 'review').length;
    const landed = kills.filter((k) => k.sendsInFlight > 0).length;
    console.log(
      `charge-crash: ${KILLS} SIGKILLs over ${references.length} due instalments; kills with sends in flight ${landed}/${KILLS} ` +
      `(${kills.reduce((sum, k) => sum + k.sendsInFlight, 0)} sends), due at the kills ${Math.min(...kills.map((k) => k.due))}–${Math.max(...kills.map((k) => k.due))}; ` +
      `end: paid ${paid}, review ${review}, charged twice ${rows.filter((r) => r.charges > 1).length}; ` +
      `seed ${Math.round(seeded - started)} ms, kills ${Math.round(killed - seeded)} ms, drain ${Math.round(performance.now() - killed)} ms, ` +
      `start-up ${Math.min(...kills.map((k) => k.startupMs))}–${Math.max(...kills.map((k) => k.startupMs))} ms`,
    );
    expect(kills).toHaveLength(KILLS);
    // The kills did interrupt runs: sends were in flight, unanswered.
    expect(landed).toBeGreaterThanOrEqual(KILLS - 2);
    expect(kills.every((k) => k.due > 0)).toBe(true);
    expect(rows).toHaveLength(references.length);
    expect(rows.filter((r) => r.charges > 1)).toEqual([]);
    // Every instalment is paid with exactly one charge, or under review (an earlier send reached the gateway but its
    // answer died with the process): never lost, never charged twice.
    expect(rows.filter((r) => r.status === 'paid' && r.charges !== 1)).toEqual([]);
    expect(rows.filter((r) => r.status !== 'paid' && r.status !== 'review')).toEqual([]);
    // A process has at most `concurrency` charges under way (one run at a time), and the card client's pool at most
    // CARD_CONNECTIONS of them at the gateway: only those answers can die with it.
    expect(review).toBeLessThanOrEqual(KILLS * Math.min(DEFAULT_CHARGE_ENGINE_CONFIG.concurrency, CARD_CONNECTIONS));
  }, 120_000);

  it('when three BFF processes charge due instalments together on one PostgreSQL, then each is charged exactly once', async () => {
    const references = await seed(200);
    const processes = await Promise.all([bff(), bff(), bff()]);
    await until(async () => (await audit(references)).every((r) => r.status === 'paid'), 30_000);
    await Promise.all(processes.map((p) => p.stop()));
    const rows = await audit(references);
    expect(rows.filter((r) => r.status !== 'paid' || r.charges !== 1)).toEqual([]);
  }, 120_000);
});
