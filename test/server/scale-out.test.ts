/**
 * Several instances on one PostgreSQL: three real BFF processes (server/main.ts) on one schema behind a round-robin
 * load balancer without stickiness (also their PUBLIC_URL, so Khipu's notifications come back to any instance), all
 * using the same standalone simulators (KASU, Khipu, card gateway, Tupay) and one merchant webhook endpoint.
 * 30 purchases — pay later, Khipu paid through the simulator's control endpoint, card with the approving test card —
 * a third of them submitted twice at once with the same Idempotency-Key (a double click) and a third from two tabs
 * (two keys), interleaved with card charge runs (`?now=` 75 days ahead, so instalments 2 and 3 are due) and webhook
 * dispatch runs fired on the three instances at once, Khipu notifications delivered twice and Khipu polling every
 * second. Then: KASU registered each purchase once, each payment and charge happened once, each webhook event reached
 * the endpoint once, the daily reconciliation ran once for three claimants, and a reconciliation report (synced with
 * Tupay, where the pay-later customers paid) agrees with the orders. Last, a registered card purchase submitted from
 * six tabs at once: enrolled and charged once, and no tab is answered 500 (enrolments of one order are serialised).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../../server/sandbox/card/card-sandbox.js';
import { startKhipuSandbox } from '../../server/sandbox/khipu/khipu-sandbox.js';
import { startTupaySandbox } from '../../server/sandbox/tupay/tupay-sandbox.js';
import { verifyMerchantWebhook } from '../../server/webhooks/merchant-webhooks.js';
import { apiClient } from '../support/test-server.js';
import { openTestDatabase, type TestDatabase } from '../support/databases.js';
import { startStubServer, type StubServer } from '../support/stub-server.js';
import {
  ADMIN_TOKEN, admin, describeAnswer, freePort, killAll, prepareCheckout, sleep, slot, startBalancer, startBff,
  startKasuFront, submitUntilFinal, type Balancer, type BffProcess, type KasuFront, type Slot,
} from '../support/processes.js';

const PURCHASES = 30;
const METHODS = ['email', 'khipu', 'card'] as const;
const RACES = ['single', 'same key', 'two keys'] as const;
const WEBHOOK_SECRET = 'scale-out-webhook-secret-0123456789';
const WEBHOOK_PATH = '/kasu/webhooks';
/** Instalments 2 and 3 of a card plan of 3 fall due within 75 days. */
const LATER = () => new Date(Date.now() + 75 * 86_400_000).toISOString();

type Method = (typeof METHODS)[number];
type Purchase = {
  slot: Slot; method: Method; race: (typeof RACES)[number]; checkoutId: string; reference: string;
  instalments: number; instalmentAmount: number; answers: string[]; finals: string[];
};

describe('three BFF instances on one PostgreSQL behind a round-robin load balancer', () => {
  let t: TestDatabase;
  let kasu: KasuFront;
  let khipu: Awaited<ReturnType<typeof startKhipuSandbox>>;
  let card: Awaited<ReturnType<typeof startCardSandbox>>;
  let tupay: Awaited<ReturnType<typeof startTupaySandbox>>;
  let merchant: StubServer;
  let balancer: Balancer;
  let instances: BffProcess[] = [];

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    kasu = await startKasuFront({ registries: 2, delayMs: 5 });
    khipu = await startKhipuSandbox({ notificationRetryDelaysMs: [0, 500, 1_000, 2_000, 5_000] });
    card = await startCardSandbox({ latencyMs: 20 });
    tupay = await startTupaySandbox({ seedActivity: { seed: 7 } });
    // The merchant answers after 0–20 ms, so that deliveries overlap.
    merchant = await startStubServer((_req, res) => {
      setTimeout(() => res.writeHead(204).end(), Math.floor(Math.random() * 20));
    });
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    balancer = await startBalancer(ports.map((port) => `http://127.0.0.1:${port}`));
    const env = {
      PUBLIC_URL: balancer.url,
      KASU_BASE_URL: kasu.url,
      KHIPU_BASE_URL: `${khipu.url}/api/2.0`,
      KHIPU_POLL_INTERVAL_SECONDS: '1',
      KHIPU_POLL_AFTER_SECONDS: '1',
      CARD_BASE_URL: card.url,
      CARD_TOKENIZER_URL: `${card.url}/tokenizer`,
      CARD_CHARGE_INTERVAL_SECONDS: '1',
      TUPAY_BASE_URL: tupay.url,
      MERCHANT_WEBHOOK_URL: `${merchant.url}${WEBHOOK_PATH}`,
      MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_DISPATCH_INTERVAL_MS: '250',
      RECONCILIATION_HOUR: '0',
    };
    instances = await Promise.all(ports.map((port) => startBff({ schema: t.schema!, port, env })));
  }, 90_000);

  afterAll(async () => {
    await killAll();
    await balancer?.close();
    await merchant?.close();
    await Promise.all([kasu?.close(), khipu?.close(), card?.close(), tupay?.close()]);
    await t?.drop();
  });

  /** The card as the gateway's tokenizer frame hands it to the widget; the card number goes to the simulator only. */
  async function tokenize(checkout: { id: string; token: string }, index: number) {
    const call = apiClient(balancer.url);
    const session = await call('POST', `/v1/checkouts/${checkout.id}/card-session`, {
      token: checkout.token, body: { origin: 'https://partner.example' }, headers: { 'x-forwarded-for': `203.0.113.${index + 1}` },
    });
    if (session.status !== 200) throw new Error(`card-session: ${session.status} ${JSON.stringify(session.body)}`);
    const frame = new URL(session.body.tokenizerUrl as string);
    const response = await fetch(`${card.url}/tokenizer/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        merchantId: frame.searchParams.get('merchantId') ?? SANDBOX_CARD_MERCHANT_ID, customerId: frame.searchParams.get('customerId'),
        number: '4242424242424242', expiry: '12/30', cvv: '123', name: 'ANA PEREZ',
      }),
    });
    const message = (await response.json()) as { token: string; last4: string; brand: string };
    return { token: message.token, last4: message.last4, brand: message.brand };
  }

  /** One customer: checkout through the balancer, submit (once, or raced), then pay as the method says. */
  async function purchase(index: number): Promise<Purchase> {
    const s = slot(index);
    const method = METHODS[index % METHODS.length]!;
    const race = RACES[Math.floor(index / METHODS.length) % RACES.length]!;
    const checkout = await prepareCheckout(balancer.url, s, { planCount: method === 'card' ? 3 : 1 });
    const body: Record<string, unknown> = { paymentMethod: method };
    if (method === 'khipu') Object.assign(body, { khipuBankId: 'Bawdf', returnUrl: 'https://partner.example/' });
    if (method === 'card') Object.assign(body, { card: await tokenize(checkout, index), recurringConsent: true });
    const key = `purchase-${index}`;
    const keys = race === 'single' ? [key] : race === 'same key' ? [key, key] : [`${key}-tab-a`, `${key}-tab-b`];
    const results = await Promise.all(keys.map((key) => submitUntilFinal(() => balancer.url, checkout, key, body, { index })));
    const finals = results.map((answers) => answers.at(-1)!);
    const registered = finals.find((answer) => answer.status === 200)?.body.checkout.order;
    if (!registered) throw new Error(`purchase ${index} (${method}, ${race}): ${results.map((a) => a.map(describeAnswer).join(' → ')).join(' | ')}`);
    const reference = registered.reference as string;
    if (method === 'khipu') {
      const payment = [...khipu.state.payments.values()].find((p) => p.transaction_id === reference);
      if (!payment) throw new Error(`no Khipu payment for ${reference}`);
      // The customer pays; Khipu notifies twice (a repeated delivery), through the balancer, to any instance.
      const paid = await fetch(`${khipu.url}/_control/payments/${payment.payment_id}/pay`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deliveries: 2 }),
      });
      if (paid.status !== 200) throw new Error(`Khipu pay ${payment.payment_id}: ${paid.status} ${await paid.text()}`);
    }
    if (method === 'email') {
      // The customer pays KASU's emailed link through Tupay, with our reference as externalId.
      tupay.state.addDeposit({
        externalId: reference, amountCentavos: registered.instalmentAmount as number, clientDocument: s.curp, status: 'COMPLETED',
      });
    }
    return {
      slot: s, method, race, checkoutId: checkout.id, reference, instalments: registered.instalments as number,
      instalmentAmount: registered.instalmentAmount as number, answers: results.flat().map(describeAnswer),
      finals: finals.map(describeAnswer),
    };
  }

  async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return true;
      if (Date.now() > deadline) return false;
      await sleep(200);
    }
  }

  /** The same admin job on every instance at once; every answer. */
  const everywhere = (path: string) =>
    Promise.all(instances.map((instance) => admin(instance.url, path).catch((error: Error) => ({ status: 0, body: error.message }))));

  it(`when ${PURCHASES} purchases, charge runs and webhook dispatch are spread over three instances, then nothing is registered, paid, charged or delivered twice and the reconciliation agrees`, async () => {
    const started = performance.now();
    const reportFrom = new Date(Date.now() - 60_000).toISOString();

    // Charge runs and webhook dispatch on the three instances at once, again and again, while customers buy.
    let buying = true;
    const jobAnswers: number[] = [];
    let jobRounds = 0;
    const jobs = (async () => {
      while (buying) {
        const answers = await Promise.all([everywhere(`/admin/jobs/card-charges/run?now=${LATER()}`), everywhere('/admin/jobs/webhooks/run')]);
        jobAnswers.push(...answers.flat().map((a) => a.status));
        jobRounds++;
        await sleep(300);
      }
    })();

    // Six customers at a time.
    const purchases: Purchase[] = [];
    let nextIndex = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (nextIndex < PURCHASES) purchases.push(await purchase(nextIndex++));
    }));
    buying = false;
    await jobs;
    const bought = performance.now();

    // The instalments still due, charged by the three at once; then every Khipu notification processed.
    for (let round = 0; round < 2; round++) jobAnswers.push(...(await everywhere(`/admin/jobs/card-charges/run?now=${LATER()}`)).map((a) => a.status));
    const khipuReferences = purchases.filter((p) => p.method === 'khipu').map((p) => p.reference);
    const khipuPaid = await until(async () => {
      const { rows } = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.provider = 'khipu' AND p.status = 'paid' AND o.reference = ANY($1)`,
        [khipuReferences],
      );
      return rows[0]!.n === khipuReferences.length;
    }, 20_000);

    // The daily reconciliation claimed by three instances at once; then a report of the test's period on one.
    const daily = await everywhere('/admin/jobs/reconciliation/run');
    const report = await admin(instances[0]!.url, '/admin/reconciliations', {
      from: reportFrom, to: new Date(Date.now() + 60_000).toISOString(), sync: true,
    });
    expect(report.status).toBe(201);
    const lines: Array<{ category: string; rail: string; kind: string; orderReference: string | null; instalmentNumber: number | null; state: string }> = [];
    for (let after = 0; ;) {
      const page = await fetch(`${instances[1]!.url}/admin/reconciliations/${report.body.report.id}/lines?after=${after}&limit=1000`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json() as Promise<{ lines: typeof lines; next: number | null }>);
      lines.push(...page.lines);
      if (page.next === null) break;
      after = page.next;
    }

    // Every webhook delivered (the three instances dispatching at once).
    const delivered = await until(async () => {
      await everywhere('/admin/jobs/webhooks/run');
      const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status <> 'delivered'`);
      return rows[0]!.n === 0;
    }, 20_000);
    await sleep(300); // the last answers of the merchant endpoint
    const elapsed = Math.round(performance.now() - started);

    // ---------- what happened ----------
    const { rows: orders } = await t.db.query<{
      id: string; reference: string; checkout_id: string; status: string; policy: string | null; payment_method: string; curp: string; product: string;
    }>('SELECT id, reference, checkout_id, status, policy, payment_method, curp, product FROM orders');
    const { rows: payments } = await t.db.query<{ reference: string; provider: string; status: string; instalment_number: number }>(
      'SELECT o.reference, p.provider, p.status, p.instalment_number FROM payments p JOIN orders o ON o.id = p.order_id',
    );
    const { rows: instalments } = await t.db.query<{ reference: string; number: number; status: string }>(
      `SELECT o.reference, i.number, i.status FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id JOIN orders o ON o.id = s.order_id`,
    );
    const { rows: events } = await t.db.query<{ id: string; type: string; reference: string | null; url: string; status: string }>(
      `SELECT e.id, e.type, e.payload->'data'->>'reference' AS reference, d.url, d.status
       FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id`,
    );
    const { rows: reports } = await t.db.query<{ trigger: string; status: string }>('SELECT trigger, status FROM reconciliation_reports');

    const tally = (values: string[]) => values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {});
    const received = tally(merchant.requests.map((r) => `${String(r.headers['kasu-event-id'])} ${r.url}`));
    const registrations = kasu.calls.filter((c) => c.fn === 'new_service');
    const ledgerApproved = tally(card.state.ledger.filter((e) => e.outcome === 'approved').map((e) => e.merchantOrderId.replace(/-\d+$/, '')));
    console.log(
      `scale-out: ${PURCHASES} purchases (${JSON.stringify(tally(purchases.map((p) => p.method)))}, submits ${JSON.stringify(tally(purchases.map((p) => p.race)))}) ` +
      `in ${Math.round(bought - started)} ms, ${elapsed} ms in all; requests per instance through the balancer ${JSON.stringify([...balancer.counts.values()])}; ` +
      `${jobRounds} rounds of charge + webhook runs on the 3 instances at once (${jobAnswers.length} admin calls, statuses ${JSON.stringify(tally(jobAnswers.map(String)))})\n` +
      `  submit answers: ${JSON.stringify(tally(purchases.flatMap((p) => p.answers)))}\n` +
      `  KASU new_service: ${JSON.stringify(tally(registrations.map((c) => String(c.status))))}; registrations ${kasu.registries.map((r) => r.registrations.length).join(' + ')}\n` +
      `  card gateway ledger: ${card.state.ledger.length} entries, ${Object.keys(ledgerApproved).length} instalments approved; ` +
      `Khipu: ${khipu.state.payments.size} payments, ${khipu.state.notifications.length} notification attempts (${JSON.stringify(tally(khipu.state.notifications.map((n) => String(n.status))))})\n` +
      `  webhooks: ${events.length} events ${JSON.stringify(tally(events.map((e) => e.type)))}, ${merchant.requests.length} requests received\n` +
      `  reconciliation: daily claimed by ${daily.filter((d) => d.body?.result).length} of 3; report ${JSON.stringify(report.body.report.counts)}, discrepancies ${report.body.report.discrepancies}`,
    );

    const internal = purchases.filter((p) => p.answers.some((a) => a.startsWith('500')));
    if (internal.length) {
      console.log(`  500 answers: ${internal.map((p) => `${p.method}/${p.race}: ${p.answers.join(', ')}`).join('; ')}`);
      const errors = instances.flatMap((i) => i.output().split('\n').filter((line) => line.includes('"status":500')));
      console.log(`  logged 500s (${errors.length}), e.g. ${errors.slice(0, 2).map((line) => line.slice(0, 400)).join('\n    ')}`);
    }

    // ---------- every customer got exactly one order ----------
    expect(purchases).toHaveLength(PURCHASES);
    expect(jobAnswers.filter((status) => status !== 200)).toEqual([]);
    // Every submit, raced or not, ended with the registered checkout (retryable answers on the way are counted above).
    expect(purchases.filter((p) => p.finals.some((answer) => answer !== '200 registered'))).toEqual([]);
    expect(orders).toHaveLength(PURCHASES);
    expect(new Set(orders.map((o) => o.checkout_id)).size).toBe(PURCHASES);
    expect(orders.filter((o) => o.status !== 'registered')).toEqual([]);

    // ---------- KASU: one registration per purchase, whatever raced ----------
    expect(registrations.filter((c) => c.status === 201)).toHaveLength(PURCHASES);
    expect(registrations.filter((c) => c.status !== 201)).toEqual([]);
    for (const registry of kasu.registries) {
      const pairs = registry.registrations.map((r) => `${r.curp}/${r.product}`);
      expect(pairs.length).toBe(new Set(pairs).size);
    }
    for (const p of purchases) {
      const order = orders.find((o) => o.reference === p.reference)!;
      const matches = kasu.registries[p.slot.registry]!.registrations.filter((r) => r.curp === p.slot.curp && r.product === p.slot.product);
      expect(matches).toHaveLength(1);
      expect(order.policy).toBe(matches[0]!.policy);
    }

    // ---------- payments and charges: once each ----------
    expect(khipuPaid).toBe(true);
    for (const p of purchases.filter((x) => x.method === 'khipu')) {
      expect([...khipu.state.payments.values()].filter((k) => k.transaction_id === p.reference)).toHaveLength(1);
      expect(payments.filter((x) => x.reference === p.reference).map((x) => `${x.provider} ${x.instalment_number} ${x.status}`)).toEqual(['khipu 1 paid']);
      expect(events.filter((e) => e.type === 'order.paid' && e.reference === p.reference)).toHaveLength(1);
    }
    for (const p of purchases.filter((x) => x.method === 'card')) {
      expect(p.instalments).toBe(3);
      for (const n of [1, 2, 3]) expect(ledgerApproved[`${p.reference}-${n}`], `${p.reference}-${n}`).toBe(1);
      expect(instalments.filter((i) => i.reference === p.reference).map((i) => i.status)).toEqual(['paid', 'paid', 'paid']);
      expect(payments.filter((x) => x.reference === p.reference && x.provider === 'card' && x.status === 'paid')).toHaveLength(3);
      expect(events.filter((e) => e.type === 'charge.succeeded' && e.reference === p.reference)).toHaveLength(3);
    }
    expect(card.state.ledger.filter((e) => e.outcome !== 'approved')).toEqual([]);
    for (const p of purchases.filter((x) => x.method === 'email')) {
      expect(payments.filter((x) => x.reference === p.reference).map((x) => `${x.provider} ${x.status}`)).toEqual(['kasu_email pending']);
    }

    // ---------- merchant webhooks: each event once at the endpoint ----------
    expect(delivered).toBe(true);
    expect(events.filter((e) => e.url !== `${merchant.url}${WEBHOOK_PATH}`)).toEqual([]);
    expect(Object.entries(received).filter(([, n]) => n !== 1)).toEqual([]);
    expect(Object.keys(received).sort()).toEqual(events.map((e) => `${e.id} ${WEBHOOK_PATH}`).sort());
    expect(merchant.requests.filter((r) => !verifyMerchantWebhook(WEBHOOK_SECRET, r.headers['kasu-signature'] as string, r.body))).toEqual([]);
    expect(new Set(events.filter((e) => e.type === 'order.registered').map((e) => e.reference)).size).toBe(PURCHASES);
    expect(events.filter((e) => e.type === 'order.registered')).toHaveLength(PURCHASES);

    // ---------- reconciliation ----------
    expect(daily.map((d) => d.status)).toEqual([200, 200, 200]);
    expect(daily.filter((d) => d.body.result !== null)).toHaveLength(1);
    expect(reports.filter((r) => r.trigger === 'daily')).toEqual([{ trigger: 'daily', status: 'completed' }]);
    expect(report.body.report.tupay.synced).toBe(true);
    const ours = new Set(purchases.map((p) => p.reference));
    const ourLines = lines.filter((line) => line.orderReference !== null && ours.has(line.orderReference));
    expect(lines.filter((line) => ['duplicate', 'mismatch', 'unknown'].includes(line.category))).toEqual([]);
    expect(ourLines.filter((line) => line.category !== 'matched')).toEqual([]);
    // Orphans are payments of no order of ours (the simulator's other sales channels), never one of our references.
    expect(lines.filter((line) => line.category === 'orphan' && line.orderReference?.startsWith('KC-'))).toEqual([]);
    for (const p of purchases) {
      const rails = ourLines.filter((line) => line.orderReference === p.reference).map((line) => `${line.rail}${line.instalmentNumber ? ` ${line.instalmentNumber}` : ''}`).sort();
      const expected = p.method === 'email' ? ['tupay'] : p.method === 'khipu' ? ['khipu 1'] : ['card 1', 'card 2', 'card 3'];
      expect(rails, `${p.reference} (${p.method})`).toEqual(expected);
    }
    expect(report.body.report.orders).toMatchObject({ total: PURCHASES, paid: PURCHASES, unpaid: 0 });
  }, 120_000);

  let tabs: { answers: string[][]; subscriptions: number; approved: number; instalments: string[] } | null = null;

  it('when a registered card purchase is submitted from six tabs at once, spread over the three instances, then the card is enrolled and charged once', async () => {
    const index = PURCHASES; // a pair KASU has not seen; nothing is registered at KASU here
    const s = slot(index);
    const checkout = await prepareCheckout(balancer.url, s, { planCount: 3 });
    // The state a process leaves when it dies between the registration's commit and the card enrollment (and the
    // state every submit but the first finds when several race): registered at KASU, no card enrolled yet.
    const reference = `KC-TABS${String(Date.now()).slice(-8)}`;
    await t.db.transaction(async (tx) => {
      await tx.query(`UPDATE checkouts SET status = 'registered', payment_method = 'card' WHERE id = $1`, [checkout.id]);
      await tx.query(
        `INSERT INTO orders (id, reference, checkout_id, curp, product, kasu_product, payment_method, currency, price_centavos,
           instalments, instalment_centavos, status, policy, kasu_status, customer_name, registration_attempts, registered_at)
         SELECT 'ord_tabs', $2, c.id, c.curp, c.product, c.quote->>'kasuProduct', 'card', 'MXN', (c.quote->>'price')::bigint,
           $3, $4, 'registered', 'TABS-POLICY', 'PREVENTA', 'ANA PEREZ', 1, now()
         FROM checkouts c WHERE c.id = $1`,
        [checkout.id, reference, checkout.plan.count, checkout.plan.instalment],
      );
    });
    const body = { paymentMethod: 'card', card: await tokenize(checkout, index), recurringConsent: true };
    const answers = await Promise.all(Array.from({ length: 6 }, (_, tab) =>
      submitUntilFinal(() => balancer.url, checkout, `tab-${tab}-of-six`, body, { index })));
    const { rows: subscriptions } = await t.db.query<{ id: string }>(`SELECT s.id FROM subscriptions s WHERE s.order_id = 'ord_tabs'`);
    const { rows: instalments } = await t.db.query<{ status: string }>(
      `SELECT i.status FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id WHERE s.order_id = 'ord_tabs' ORDER BY i.number`,
    );
    tabs = {
      answers: answers.map((list) => list.map(describeAnswer)),
      subscriptions: subscriptions.length,
      approved: card.state.ledger.filter((e) => e.outcome === 'approved' && e.merchantOrderId.startsWith(`${reference}-1-`)).length,
      instalments: instalments.map((i) => i.status),
    };
    console.log(`scale-out, six tabs: ${tabs.answers.map((list) => list.join(' → ')).join(' | ')}; subscriptions ${tabs.subscriptions}, ` +
      `instalment 1 approved ${tabs.approved} time(s), instalments ${tabs.instalments.join(', ')}`);
    expect(tabs.answers.map((list) => list.at(-1))).toEqual(Array(6).fill('200 registered'));
    expect(tabs.subscriptions).toBe(1);
    expect(tabs.approved).toBe(1);
    expect(tabs.instalments).toEqual(['paid', 'scheduled', 'scheduled']);
  }, 60_000);

  // Enrolments of one order are serialised (the order row is locked), and a tab that finds the first charge held by
  // another waits for its outcome: no tab may see an internal error.
  it('when a registered card purchase is submitted from six tabs at once, then no tab is answered 500', () => {
    expect(tabs).not.toBeNull();
    expect(tabs!.answers.flat().filter((answer) => answer.startsWith('500'))).toEqual([]);
  });
});
