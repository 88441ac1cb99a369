/**
 * Paying by card through the BFF, against the card gateway simulator over real HTTP: the card is tokenised by the
 * gateway's page (never by us), the first instalment is charged at once, a declined card can be replaced, and no
 * card number reaches our API, our database or our logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CardSessionResponseSchema, CheckoutResponseSchema, CreateCheckoutResponseSchema } from '../../shared/contract.js';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { ENGINES } from '../support/databases.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ADMIN_TOKEN = 'admin-token-for-card-tests-0123456789';
const PAGE_ORIGIN = 'https://partner.example';
const CARDS = { approve: '4242424242424242', decline: '4000000000009995' };

describe.each(ENGINES)('card payments through the BFF on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  const curps = SANDBOX_CURPS.filter((p) => !p.deceased && /Funerario/.test(p.note)).map((p) => p.curp);
  const sentToApi: string[] = [];

  beforeAll(async () => {
    server = await startTestServer({ engine, backgroundJobs: false, env: { ADMIN_TOKEN } });
    const client = apiClient(server.url);
    call = (method, path, options = {}) => {
      sentToApi.push(JSON.stringify(options.body ?? ''));
      return client(method, path, options);
    };
  });
  afterAll(async () => {
    await server?.close();
  });

  async function readyCheckout(planIndex: number) {
    const curp = curps.shift()!;
    const { checkout, token } = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp } })).body);
    const quote = (await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product: 'Funerario' } })).body.quote;
    await call('PATCH', `/v1/checkouts/${checkout.id}`, {
      token,
      body: {
        planCount: quote.plans[Math.min(planIndex, quote.plans.length - 1)].count,
        contact: { email: `${curp.toLowerCase()}@example.mx`, phone: `55${curp.slice(4, 10)}77` },
        address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
        consents: { terms: true, privacy: true, trust: true },
      },
    });
    return { id: checkout.id, token, curp };
  }

  /** What the tokenizer frame does in the browser: the card goes to the gateway (the simulator), never to /v1. */
  async function tokenize(id: string, token: string, number: string) {
    const session = await call('POST', `/v1/checkouts/${id}/card-session`, { token, body: { origin: PAGE_ORIGIN } });
    expect(session.status).toBe(200);
    const { tokenizerUrl, recurringConsent } = CardSessionResponseSchema.parse(session.body);
    const url = new URL(tokenizerUrl);
    expect(url.pathname).toBe('/sandbox/card/tokenizer');
    expect(url.searchParams.get('origin')).toBe(PAGE_ORIGIN);
    expect(recurringConsent.es).toMatch(/cargar a mi tarjeta cada mensualidad/);
    const response = await fetch(`${server.url}/sandbox/card/tokenizer/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ merchantId: url.searchParams.get('merchantId'), customerId: url.searchParams.get('customerId'), number, expiry: '12/30', cvv: '123', name: 'ANA PEREZ' }),
    });
    expect(response.status).toBe(201);
    // The frame's message carries the expiry too; what the widget sends us is only token, brand and last 4.
    const message = (await response.json()) as { token: string; last4: string; brand: string; expiry: string };
    return { token: message.token, last4: message.last4, brand: message.brand };
  }

  const submit = (id: string, token: string, key: string, body: Record<string, unknown>) =>
    call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'card', ...body }, headers: { 'idempotency-key': key } });

  it('when the customer pays by card with the recurring consent, then the first instalment is charged once at once and the rest are scheduled monthly', async () => {
    const { id, token } = await readyCheckout(3);
    const card = await tokenize(id, token, CARDS.approve);
    const first = await submit(id, token, `card-${id}`, { card, recurringConsent: true });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const again = await submit(id, token, `card-${id}`, { card, recurringConsent: true });
    const view = CheckoutResponseSchema.parse(again.body).checkout;
    expect(view.status).toBe('registered');
    expect(view.payment).toMatchObject({ method: 'card', status: 'paid', instalment: 1 });
    expect(view.subscription).toMatchObject({ status: 'active', card: { last4: '4242', brand: card.brand } });
    const instalments = view.subscription!.instalments;
    expect(instalments.length).toBe(view.order!.instalments);
    expect(instalments[0]!.status).toBe('paid');
    expect(instalments.slice(1).every((i) => i.status === 'scheduled')).toBe(true);
    const days = new Set(instalments.slice(1).map((i) => i.dueDate.slice(8)));
    expect(days.size).toBe(1); // one pay day every month
    const charged = server.cardSandbox!.ledger.filter((e) => e.merchantOrderId.startsWith(view.order!.reference));
    expect(charged).toEqual([expect.objectContaining({ merchantOrderId: `${view.order!.reference}-1-1`, outcome: 'approved' })]);
    const { rows } = await server.db.query<{ document: string; version: string }>(
      "SELECT document, version FROM consent_events WHERE checkout_id = $1 AND document = 'recurring_charges'", [id]);
    expect(rows).toHaveLength(1);
  });

  it('when the charge job runs on the second due date (clock override), then the second instalment is charged, once', async () => {
    const { id, token } = await readyCheckout(3);
    const card = await tokenize(id, token, CARDS.approve);
    const view = CheckoutResponseSchema.parse((await submit(id, token, `card2-${id}`, { card, recurringConsent: true })).body).checkout;
    const second = view.subscription!.instalments[1]!;
    const at = new Date(`${second.dueDate}T18:00:00Z`).toISOString();
    for (let i = 0; i < 2; i++) {
      const run = await call('POST', `/admin/jobs/card-charges/run?now=${encodeURIComponent(at)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(run.status).toBe(200);
    }
    const after = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
    expect(after.subscription!.instalments.slice(0, 3).map((i) => i.status)).toEqual(['paid', 'paid', 'scheduled']);
    expect(server.cardSandbox!.ledger.filter((e) => e.merchantOrderId.startsWith(`${view.order!.reference}-2-`))).toHaveLength(1);
  });

  it('when the card is declined, then CARD_DECLINED, and another card with a new key is charged and the purchase completes', async () => {
    const { id, token } = await readyCheckout(1);
    const declined = await submit(id, token, `declined-${id}`, { card: await tokenize(id, token, CARDS.decline), recurringConsent: true });
    expect({ status: declined.status, code: declined.body.error.code }).toEqual({ status: 402, code: 'CARD_DECLINED' });
    const pending = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
    expect(pending.subscription?.status).toBe('pending_card');
    const ok = await submit(id, token, `retry-${id}`, { card: await tokenize(id, token, CARDS.approve), recurringConsent: true });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const view = CheckoutResponseSchema.parse(ok.body).checkout;
    expect(view.payment?.status).toBe('paid');
    expect(view.subscription).toMatchObject({ status: 'active', card: { last4: '4242' } });
    const charged = server.cardSandbox!.ledger.filter((e) => e.merchantOrderId.startsWith(view.order!.reference));
    expect(charged.map((e) => [e.merchantOrderId.slice(-4), e.outcome])).toEqual([['-1-1', 'rejected'], ['-1-2', 'approved']]);
  });

  it.each([
    { card: 'approve' as const, answers: [[200, undefined], [200, undefined]], ledger: ['approved'] },
    { card: 'decline' as const, answers: [[402, 'CARD_DECLINED'], [402, 'CARD_DECLINED']], ledger: ['rejected'] },
  ])('when two tabs submit the card purchase at once and the first charge is slow ($card), then both answer its outcome and the card is charged once', async (c) => {
    const { id, token } = await readyCheckout(2);
    const card = await tokenize(id, token, CARDS[c.card]);
    server.cardSandbox!.faults.set([{ match: { path: '/api/v1/make-payment-token' }, fault: 'latency', ms: 700 }]);
    try {
      const answers = await Promise.all([
        submit(id, token, `tab1-${id}`, { card, recurringConsent: true }),
        submit(id, token, `tab2-${id}`, { card, recurringConsent: true }),
      ]);
      expect(answers.map((a) => [a.status, a.body.error?.code]), JSON.stringify(answers.map((a) => a.body.error))).toEqual(c.answers);
      const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
      if (c.card === 'approve') {
        for (const answer of answers) expect(CheckoutResponseSchema.parse(answer.body).checkout).toEqual(view);
        expect(view.payment).toMatchObject({ method: 'card', status: 'paid', instalment: 1 });
      }
      const reference = view.order!.reference;
      const charged = server.cardSandbox!.ledger.filter((e) => e.merchantOrderId.startsWith(reference));
      expect(charged.map((e) => [e.merchantOrderId, e.outcome])).toEqual(c.ledger.map((outcome) => [`${reference}-1-1`, outcome]));
    } finally {
      server.cardSandbox!.faults.clear();
    }
  });

  it('when the merchant cancelled a subscription waiting for another card, then a new card does not bring it back', async () => {
    const { id, token } = await readyCheckout(1);
    await submit(id, token, `declined2-${id}`, { card: await tokenize(id, token, CARDS.decline), recurringConsent: true });
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const list = await call('GET', '/admin/subscriptions?status=pending_card', { headers: admin });
    const reference = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout.order!.reference;
    const subscription = list.body.subscriptions.find((s: { reference: string }) => s.reference === reference);
    expect((await call('POST', `/admin/subscriptions/${subscription.id}/cancel`, { headers: admin })).status).toBe(200);
    const again = await submit(id, token, `after-cancel-${id}`, { card: await tokenize(id, token, CARDS.approve), recurringConsent: true });
    expect({ status: again.status, code: again.body.error.code }).toEqual({ status: 409, code: 'CHECKOUT_CLOSED' });
    expect(server.cardSandbox!.ledger.filter((e) => e.merchantOrderId.startsWith(reference) && e.outcome === 'approved')).toHaveLength(0);
  });

  it('when the recurring consent or the card is missing, then VALIDATION_FAILED and nothing is registered with KASU', async () => {
    const { id, token, curp } = await readyCheckout(0);
    const card = await tokenize(id, token, CARDS.approve);
    const noConsent = await submit(id, token, `noconsent-${id}`, { card });
    expect(noConsent.body.error).toMatchObject({ code: 'VALIDATION_FAILED', fields: { recurringConsent: 'REQUIRED' } });
    const noCard = await submit(id, token, `nocard-${id}`, { recurringConsent: true });
    expect(noCard.body.error).toMatchObject({ code: 'VALIDATION_FAILED', fields: { card: 'REQUIRED' } });
    expect(server.kasuSandbox!.registrations.filter((r) => r.curp === curp)).toHaveLength(0);
  });

  it('when everything is done, then no card number or CVV was sent to our API, stored in our database or logged', async () => {
    const numbers = [...Object.values(CARDS), '12/30']; // card numbers, and the expiry typed in the frame
    for (const body of sentToApi) for (const number of numbers) expect(body).not.toContain(number);
    const logs = server.logs.join('\n');
    for (const number of numbers) expect(logs).not.toContain(number);
    const tables = await server.db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
    for (const { table_name } of tables.rows) {
      const dump = JSON.stringify((await server.db.query(`SELECT * FROM ${table_name}`)).rows);
      for (const number of numbers) expect(dump, table_name).not.toContain(number);
      expect(dump, table_name).not.toMatch(/"cvv"/i);
    }
  });
});
