/**
 * The fault matrix: every provider × every fault × every call the BFF makes to it, through HTTP against the real BFF
 * in sandbox mode, the failures injected by the simulators' fault layer (server/sandbox/faults.ts) over real HTTP.
 *
 * For a customer-facing call the customer gets a clear error (PROVIDER_UNAVAILABLE: 503, retryable, in Spanish, or
 * in English with Accept-Language: en), nothing is lost or registered, created or charged twice, and once the fault
 * is gone the same request (the same Idempotency-Key for a submit) succeeds once. The one exception is a Khipu payment
 * created at Khipu whose answer was lost: API 2.0 cannot find it, so the retry creates another (the customer gets a
 * link), and the lost one, recognised by its `custom` when paid, settles the same payment once. For a job (Khipu
 * notification and poll, card charge run, reconciliation) the run fails or records the outcome as unknown/review as
 * designed, with nothing twice, and the next run after recovery completes.
 *
 * The faults (FAULTS below): `status` 500, `malformed`, `reset`, `truncated` and `timeout` happen before the provider
 * does anything; `slow` drips the provider's real answer slower than our body timeout (the provider did the work, the
 * answer is lost: KASU registered, Khipu created, the gateway charged); `latency` under our timeout must not matter.
 * Each provider call's overall deadline (`*_TIMEOUT_MS`, connect + send + headers + whole body) is 400 ms here, for
 * the four providers; `slow` drips every 1.2 s to be sure to outlast it.
 */
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutResponseSchema, CreateCheckoutResponseSchema } from '../../shared/contract.js';
import { errorMessage } from '../../shared/errors.js';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import type { FaultRuleInput } from '../../server/sandbox/faults.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ADMIN_TOKEN = 'admin-token-for-the-fault-matrix-01';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const PROVIDER_TIMEOUT_MS = 400;
/** However a fault goes, a customer is answered within this (no hang). */
const ANSWER_WITHIN_MS = 3_000;

type Sandbox = 'kasu' | 'khipu' | 'card' | 'tupay';
type Match = NonNullable<FaultRuleInput['match']>;

type Fault = {
  name: string;
  rule: Omit<FaultRuleInput, 'match'>;
  /** The provider handled the call (its answer is late or lost on the way back). */
  providerDidIt: boolean;
  /** The call still succeeds (latency under our timeout). */
  harmless: boolean;
  /** Quick to fail: the faulted call is repeated in English too. */
  quick: boolean;
};

/** In this order: `latency` (harmless) last, so the BFF's cached Khipu bank list stays cold until then. */
const FAULTS: Fault[] = [
  { name: 'status 500', rule: { fault: 'status', status: 500 }, providerDidIt: false, harmless: false, quick: true },
  { name: 'malformed', rule: { fault: 'malformed' }, providerDidIt: false, harmless: false, quick: true },
  { name: 'reset', rule: { fault: 'reset' }, providerDidIt: false, harmless: false, quick: true },
  { name: 'truncated', rule: { fault: 'truncated' }, providerDidIt: false, harmless: false, quick: true },
  { name: 'timeout', rule: { fault: 'timeout' }, providerDidIt: false, harmless: false, quick: false },
  { name: 'slow', rule: { fault: 'slow', ms: 1_200 }, providerDidIt: true, harmless: false, quick: false },
  { name: 'latency', rule: { fault: 'latency', ms: 100 }, providerDidIt: true, harmless: true, quick: true },
];

describe('fault matrix: providers × faults × calls', () => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  let seq = 0;
  /** Living people of the KASU simulator with at least one product; each KASU row takes a fresh one for token_full. */
  const people = SANDBOX_CURPS.filter((person) => !person.deceased && !/no product/.test(person.note)).map((person) => person.curp);

  beforeAll(async () => {
    server = await startTestServer({
      backgroundJobs: false,
      env: {
        ADMIN_TOKEN,
        KASU_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
        KHIPU_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
        CARD_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
        TUPAY_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
        KHIPU_POLL_AFTER_SECONDS: '1',
        KHIPU_POLL_INTERVAL_SECONDS: '1',
        RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_CHECKOUT_PER_MINUTE: '0',
      },
    });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(() => {
    for (const state of [server.kasuSandbox, server.khipuSandbox, server.cardSandbox, server.tupaySandbox]) state!.faults.clear();
  });

  // ---------- faults, through each simulator's control endpoint on the BFF ----------

  async function inject(sandbox: Sandbox, match: Match, fault: Fault): Promise<void> {
    const answer = await call('PUT', `/sandbox/${sandbox}/_faults`, { body: { rules: [{ match, ...fault.rule }] } });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  }

  /** Stops the faults, after checking that they did happen. */
  async function recover(sandbox: Sandbox): Promise<void> {
    const rules = (await call('GET', `/sandbox/${sandbox}/_faults`)).body.rules as Array<{ hits: number }>;
    expect(rules.reduce((sum, rule) => sum + rule.hits, 0), `no ${sandbox} call was faulted`).toBeGreaterThan(0);
    expect((await call('DELETE', `/sandbox/${sandbox}/_faults`)).body).toEqual({ rules: [] });
  }

  // ---------- what the customer sees ----------

  type Answer = Awaited<ReturnType<typeof call>>;

  async function timed(request: (headers: Record<string, string>) => Promise<Answer>, headers: Record<string, string> = {}) {
    const started = performance.now();
    const answer = await request(headers);
    const ms = performance.now() - started;
    expect(ms, 'answered in time').toBeLessThan(ANSWER_WITHIN_MS);
    return answer;
  }

  function expectUnavailable(answer: Answer, locale: 'es-MX' | 'en' = 'es-MX'): void {
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(answer.body.error).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE', retryable: true, message: errorMessage('PROVIDER_UNAVAILABLE', locale), requestId: expect.any(String),
    });
  }

  /**
   * The faulted customer call: a clear retryable error in Spanish; repeated in English when the fault is quick and the
   * call may be repeated under it (`repeatable`). Returns the first answer.
   */
  async function customerFails(fault: Fault, request: (headers: Record<string, string>) => Promise<Answer>, repeatable = true) {
    const answer = await timed(request);
    expectUnavailable(answer);
    if (fault.quick && repeatable) expectUnavailable(await timed(request, { 'accept-language': 'en' }), 'en');
    return answer;
  }

  // ---------- purchases ----------

  async function newCheckout(curp: string, headers: Record<string, string> = {}) {
    return call('POST', '/v1/checkouts', { body: { curp }, headers });
  }

  /** A checkout quoted for its first eligible product, with contact (unique), address and consents. */
  async function readyCheckout(curp: string) {
    const created = await newCheckout(curp);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { checkout, token } = CreateCheckoutResponseSchema.parse(created.body);
    const product = checkout.products.find((p) => p.eligible)!.product;
    const quoted = await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product } });
    expect(quoted.status, JSON.stringify(quoted.body)).toBe(200);
    const plans = quoted.body.quote.plans as Array<{ count: number }>;
    await fillIn(checkout.id, token, curp, plans.at(-1)!.count);
    return { id: checkout.id, token, curp, product };
  }

  async function fillIn(id: string, token: string, curp: string, planCount: number) {
    seq += 1;
    const patched = await call('PATCH', `/v1/checkouts/${id}`, {
      token,
      body: {
        planCount,
        contact: { email: `fallas${seq}.${curp.toLowerCase()}@example.mx`, phone: `55${String(10_000_000 + seq).slice(-8)}` },
        address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
        consents: { terms: true, privacy: true, trust: true },
      },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  }

  const submit = (id: string, token: string, key: string, body: Record<string, unknown>) => (headers: Record<string, string> = {}) =>
    call('POST', `/v1/checkouts/${id}/submit`, { token, body, headers: { 'idempotency-key': key, ...headers } });

  const khipuBody = { paymentMethod: 'khipu', khipuBankId: 'Bawdf', returnUrl: 'https://partner.example/' };

  /** The card as the gateway's tokenizer frame hands it to the widget. */
  async function tokenize(id: string, token: string) {
    const session = await call('POST', `/v1/checkouts/${id}/card-session`, { token, body: { origin: 'https://partner.example' } });
    expect(session.status, JSON.stringify(session.body)).toBe(200);
    const url = new URL(session.body.tokenizerUrl as string);
    const response = await fetch(`${server.url}/sandbox/card/tokenizer/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        merchantId: url.searchParams.get('merchantId'), customerId: url.searchParams.get('customerId'),
        number: '4242424242424242', expiry: '12/30', cvv: '123', name: 'ANA PEREZ',
      }),
    });
    expect(response.status).toBe(201);
    const card = (await response.json()) as { token: string; last4: string; brand: string };
    return { token: card.token, last4: card.last4, brand: card.brand };
  }

  async function bought(curp: string, body: Record<string, unknown> | 'card') {
    const ready = await readyCheckout(curp);
    const payload = body === 'card' ? { paymentMethod: 'card', card: await tokenize(ready.id, ready.token), recurringConsent: true } : body;
    const answer = await submit(ready.id, ready.token, `buy-${ready.id}`, payload)();
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return { ...ready, checkout: CheckoutResponseSchema.parse(answer.body).checkout };
  }

  // ---------- the database and the simulators' books ----------

  const one = async <T>(sql: string, params: unknown[]): Promise<T> => (await server.db.query(sql, params)).rows[0] as T;
  const count = async (sql: string, params: unknown[]) => Number((await one<{ n: string }>(sql, params)).n);

  const registrations = (curp: string, product: string) =>
    server.kasuSandbox!.registrations.filter((r) => r.curp === curp && r.product === product).length;
  const ordersOf = (checkoutId: string) => count('SELECT count(*) AS n FROM orders WHERE checkout_id = $1', [checkoutId]);
  const orderOf = (checkoutId: string) =>
    one<{ reference: string; status: string } | undefined>('SELECT reference, status FROM orders WHERE checkout_id = $1', [checkoutId]);
  const khipuPaymentsFor = (reference: string) => [...server.khipuSandbox!.payments.values()].filter((p) => p.transaction_id === reference);
  const approvedCharges = (prefix: string) =>
    server.cardSandbox!.ledger.filter((entry) => entry.merchantOrderId.startsWith(prefix) && entry.outcome === 'approved').length;
  const view = async (id: string, token: string) => CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;

  /** A row in two phases: under the fault (until recover()), then after recovery, given what the first returned. */
  type Phased<T> = { under: () => Promise<T>; after: (context: T) => Promise<void> };

  /** KASU registers a (CURP, product) once: each row starts from an empty registry and gateway. */
  function fresh(): void {
    server.kasuSandbox!.reset();
    server.cardSandbox!.reset();
  }

  /** One provider × fault × call: one `it`; a phased row runs its phases in order. */
  function row<T>(callName: string, route: string, test: (() => Promise<void>) | Phased<T>, timeout?: number): void {
    const title = `${callName} (${route})`;
    if (typeof test === 'function') it(title, async () => (fresh(), test()), timeout);
    else it(title, async () => (fresh(), test.after(await test.under())), timeout);
  }

  // =====================================================================================================
  describe('KASU', () => {
    describe.each(FAULTS.map((fault, index) => ({ ...fault, index })))('$name', (fault) => {
      // A CURP nobody used yet in this run: its token is not cached, so creating a checkout calls token_full.
      const curp = people[fault.index]!;

      row('token', 'POST /v1/checkouts → token_full', async () => {
        const checkoutsOf = () => count('SELECT count(*) AS n FROM checkouts WHERE curp = $1', [curp]);
        await inject('kasu', { kasuFunction: 'token_full' }, fault);
        if (fault.harmless) {
          expect((await timed(() => newCheckout(curp))).status).toBe(201);
        } else {
          await customerFails(fault, (headers) => newCheckout(curp, headers));
          expect(await checkoutsOf(), 'no checkout without RENAPO’s word').toBe(0);
        }
        await recover('kasu');
        if (!fault.harmless) expect((await newCheckout(curp)).status).toBe(201);
        expect(await checkoutsOf()).toBe(1);
      });

      row('price', 'POST /v1/checkouts/:id/quote → modify_record', async () => {
        const { checkout, token } = CreateCheckoutResponseSchema.parse((await newCheckout(curp)).body);
        const product = checkout.products.find((p) => p.eligible)!.product;
        const quote = (headers: Record<string, string> = {}) =>
          call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product }, headers });
        await inject('kasu', { kasuFunction: 'modify_record' }, fault);
        if (fault.harmless) {
          expect((await timed(quote)).status).toBe(200);
        } else {
          await customerFails(fault, quote);
          expect((await view(checkout.id, token)).quote, 'no price invented').toBeNull();
        }
        await recover('kasu');
        const answer = fault.harmless ? null : await quote();
        if (answer) expect(answer.status).toBe(200);
        expect((await view(checkout.id, token)).quote).toMatchObject({ product, currency: 'MXN', price: expect.any(Number) });
      });

      row('registration', 'POST /v1/checkouts/:id/submit → new_service', async () => {
        const ready = await readyCheckout(curp);
        const send = submit(ready.id, ready.token, `matrix-${ready.id}`, { paymentMethod: 'email' });
        await inject('kasu', { kasuFunction: 'new_service' }, fault);
        if (fault.harmless) {
          expect((await timed(send)).status).toBe(200);
        } else {
          // The answer is lost when KASU registered: only the first attempt may reach KASU under the fault.
          await customerFails(fault, send, !fault.providerDidIt);
          expect(await view(ready.id, ready.token)).toMatchObject({ status: 'open', order: null });
          expect(registrations(curp, ready.product)).toBe(fault.providerDidIt ? 1 : 0);
        }
        await recover('kasu');
        const again = await send();
        if (fault.providerDidIt && !fault.harmless) {
          // KASU did register but we never heard: the retry hears "already registered" and a person must look.
          expect(again.status).toBe(409);
          expect(again.body.error).toMatchObject({ code: 'REGISTRATION_NEEDS_REVIEW', retryable: false });
          expect((await orderOf(ready.id))?.status).toBe('needs_review');
        } else {
          expect(again.status, JSON.stringify(again.body)).toBe(200);
          const checkout = CheckoutResponseSchema.parse(again.body).checkout;
          expect(checkout.status).toBe('registered');
          expect(checkout.order?.policy).toBeTruthy();
        }
        expect((await send()).status, 'the same key answers the same').toBe(again.status);
        expect(registrations(curp, ready.product), 'registered once at KASU').toBe(1);
        expect(await ordersOf(ready.id), 'one order per checkout').toBe(1);
      });
    });
  });

  // =====================================================================================================
  describe('Khipu', () => {
    describe.each(FAULTS.map((fault, index) => ({ ...fault, index })))('$name', (fault) => {
      const curp = people[fault.index % people.length]!;

      row('banks', 'GET /v1/khipu/banks → GET /banks', async () => {
        const banks = (headers: Record<string, string> = {}) => call('GET', '/v1/khipu/banks', { headers });
        await inject('khipu', { method: 'GET', path: '/api/2.0/banks' }, fault);
        if (fault.harmless) {
          const answer = await timed(banks);
          expect(answer.status).toBe(200);
          expect(answer.body.banks.length).toBeGreaterThan(0);
          await recover('khipu');
          // Cached from now on: the same fault no longer reaches the customer.
          await inject('khipu', { method: 'GET', path: '/api/2.0/banks' }, FAULTS[0]!);
          expect((await banks()).status).toBe(200);
          return;
        }
        // The BFF keeps the list 10 minutes once it has it; every row before `latency` finds it cold, so the
        // recovery is checked once, in the `latency` row (which fills the cache).
        await customerFails(fault, banks);
        await recover('khipu');
      });

      row('create payment', 'POST /v1/checkouts/:id/submit khipu → POST /payments', {
        under: async () => {
          const ready = await readyCheckout(curp);
          const send = submit(ready.id, ready.token, `matrix-${ready.id}`, khipuBody);
          await inject('khipu', { method: 'POST', path: '/api/2.0/payments' }, fault);
          if (fault.harmless) {
            expect((await timed(send)).status).toBe(200);
          } else {
            await customerFails(fault, send, !fault.providerDidIt);
            const current = await view(ready.id, ready.token);
            // Registered with KASU (once); the payment is still to be created, not lost.
            expect(current.status).toBe('registered');
            expect(current.payment).toMatchObject({ method: 'khipu', status: 'pending', redirectUrl: null });
            expect(khipuPaymentsFor((await orderOf(ready.id))!.reference)).toHaveLength(fault.providerDidIt ? 1 : 0);
          }
          await recover('khipu');
          return { ...ready, send, reference: (await orderOf(ready.id))!.reference };
        },
        after: async ({ id, product, send, reference }) => {
          const again = await send();
          expect(again.status, JSON.stringify(again.body)).toBe(200);
          const checkout = CheckoutResponseSchema.parse(again.body).checkout;
          expect(checkout.payment?.redirectUrl).toMatch(/\/sandbox\/khipu\/payment\/\w{12}$/);
          expect((await send()).body, 'the same key answers the same').toEqual(again.body);
          expect(registrations(curp, product)).toBe(1);
          expect(await ordersOf(id)).toBe(1);
          expect(await count('SELECT count(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.checkout_id = $1', [id])).toBe(1);
          const ours = await one<{ id: string; provider_reference: string; unknown_creations: number }>(
            'SELECT p.id, p.provider_reference, p.unknown_creations FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.checkout_id = $1', [id]);
          expect(ours.unknown_creations > 0, 'a failed call that may have created the payment is counted').toBe(!fault.harmless);
          expect(checkout.payment?.redirectUrl?.endsWith(`/${ours.provider_reference}`)).toBe(true);
          const atKhipu = khipuPaymentsFor(reference);
          expect(atKhipu.map((p) => p.custom), 'every Khipu payment of the order names our payment').toEqual(atKhipu.map(() => ours.id));
          if (!fault.providerDidIt || fault.harmless) {
            expect(atKhipu, 'one Khipu payment per order').toHaveLength(1);
            return;
          }
          // Khipu created the payment but its answer was lost, and API 2.0 cannot find it by transaction_id: the retry
          // created another so that the customer has a link. If the customer pays the one we never heard of, it
          // settles ours, once, and the spare one is deleted at Khipu so that it cannot be paid too.
          expect(atKhipu).toHaveLength(2);
          const orphan = atKhipu.find((p) => p.payment_id !== ours.provider_reference)!;
          const paid = await fetch(`${server.url}/sandbox/khipu/_control/payments/${orphan.payment_id}/pay`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ notify: false }),
          });
          expect(paid.status).toBe(200);
          for (let i = 0; i < 2; i++) {
            const notified = await fetch(`${server.url}/webhooks/khipu`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ api_version: '1.3', notification_token: orphan.notification_token }),
            });
            expect(notified.status).toBe(200);
          }
          const settled = await one<{ status: string; provider_reference: string }>('SELECT status, provider_reference FROM payments WHERE id = $1', [ours.id]);
          expect(settled).toEqual({ status: 'paid', provider_reference: orphan.payment_id });
          expect(khipuPaymentsFor(reference).map((p) => p.payment_id), 'the spare payment is deleted at Khipu').toEqual([orphan.payment_id]);
          const outcomes = (await server.db.query<{ outcome: string }>(
            'SELECT outcome FROM payment_notifications WHERE payment_id = $1 ORDER BY id', [ours.id])).rows.map((r) => r.outcome);
          expect(outcomes).toEqual(['paid', 'duplicate']);
        },
      });

      /** An order whose Khipu payment the customer has paid at Khipu (no notification sent yet). */
      async function paidAtKhipu() {
        const { id, token, checkout } = await bought(curp, khipuBody);
        const reference = checkout.order!.reference;
        const payment = khipuPaymentsFor(reference)[0]!;
        const paid = await fetch(`${server.url}/sandbox/khipu/_control/payments/${payment.payment_id}/pay`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ notify: false }),
        });
        expect(paid.status).toBe(200);
        return { id, token, reference, payment, paymentId: checkout.payment!.id };
      }

      row('get payment by notification', 'POST /webhooks/khipu → GET /payments?notification_token', async () => {
        const { id, token, payment, paymentId } = await paidAtKhipu();
        const notify = () =>
          fetch(`${server.url}/webhooks/khipu`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ api_version: '1.3', notification_token: payment.notification_token }),
          });
        await inject('khipu', { method: 'GET', path: '/api/2.0/payments' }, fault);
        const first = await notify();
        if (fault.harmless) {
          expect(first.status).toBe(200);
        } else {
          // Not a 200: Khipu will deliver it again. Nothing paid on the notification's word.
          expect(first.status).toBe(503);
          expect((await view(id, token)).payment?.status).toBe('pending');
        }
        await recover('khipu');
        for (let i = 0; i < 2; i++) expect((await notify()).status).toBe(200);
        expect((await view(id, token)).payment?.status).toBe('paid');
        const outcomes = (await server.db.query<{ outcome: string }>(
          'SELECT outcome FROM payment_notifications WHERE payment_id = $1 ORDER BY id', [paymentId])).rows.map((r) => r.outcome);
        expect(outcomes.filter((outcome) => outcome === 'paid'), 'paid once').toHaveLength(1);
        expect(outcomes.filter((outcome) => outcome !== 'paid').every((outcome) => outcome === 'duplicate')).toBe(true);
      });

      row('get payment by poll', 'POST /admin/jobs/khipu-poll/run → GET /payments/:id', async () => {
        const { id, token, payment, paymentId } = await paidAtKhipu();
        // Due for a check now (as KHIPU_POLL_AFTER_SECONDS after creation), without waiting for it.
        const due = () => server.db.query(
          "UPDATE payments SET created_at = now() - interval '1 hour', next_check_at = now() - interval '1 second' WHERE id = $1", [paymentId]);
        const poll = async () => {
          const answer = await call('POST', '/admin/jobs/khipu-poll/run', { headers: admin });
          expect(answer.status, JSON.stringify(answer.body)).toBe(200);
          return answer.body.result as { checked: number; paid: number; failed: number };
        };
        await due();
        await inject('khipu', { method: 'GET', path: `/api/2.0/payments/${payment.payment_id}` }, fault);
        const first = await poll();
        if (fault.harmless) {
          expect(first.paid).toBeGreaterThanOrEqual(1);
        } else {
          expect(first.failed, 'the check failed and will be retried').toBeGreaterThanOrEqual(1);
          expect((await view(id, token)).payment?.status).toBe('pending');
        }
        await recover('khipu');
        await due();
        await poll();
        expect((await view(id, token)).payment?.status).toBe('paid');
        await due();
        await poll();
        expect(await count("SELECT count(*) AS n FROM payments WHERE id = $1 AND status = 'paid'", [paymentId])).toBe(1);
      });
    });
  });

  // =====================================================================================================
  describe('card gateway', () => {
    describe.each(FAULTS.map((fault, index) => ({ ...fault, index })))('$name', (fault) => {
      const curp = people[(fault.index + 3) % people.length]!;
      const charge = { method: 'POST', path: '/api/v1/make-payment-token' };

      row('customer', 'POST /v1/checkouts/:id/card-session → create-user', async () => {
        const ready = await readyCheckout(curp);
        const session = (headers: Record<string, string> = {}) =>
          call('POST', `/v1/checkouts/${ready.id}/card-session`, { token: ready.token, body: { origin: 'https://partner.example' }, headers });
        await inject('card', { method: 'POST', path: '/api/v1/create-user' }, fault);
        if (fault.harmless) expect((await timed(session)).status).toBe(200);
        else await customerFails(fault, session, !fault.providerDidIt);
        await recover('card');
        const answer = await session();
        expect(answer.status, JSON.stringify(answer.body)).toBe(200);
        const customerId = new URL(answer.body.tokenizerUrl as string).searchParams.get('customerId')!;
        expect([...server.cardSandbox!.customers.values()].filter((c) => c.customerId === customerId)).toHaveLength(1);
        // The frame works: the customer can now type a card.
        expect((await tokenize(ready.id, ready.token)).last4).toBe('4242');
      });

      row('first charge', 'POST /v1/checkouts/:id/submit card → make-payment-token', {
        under: async () => {
          const ready = await readyCheckout(curp);
          const card = await tokenize(ready.id, ready.token);
          const send = submit(ready.id, ready.token, `matrix-${ready.id}`, { paymentMethod: 'card', card, recurringConsent: true });
          await inject('card', charge, fault);
          if (fault.harmless) {
            expect((await timed(send)).status).toBe(200);
          } else {
            await customerFails(fault, send, !fault.providerDidIt);
            const reference = (await orderOf(ready.id))!.reference;
            expect(approvedCharges(`${reference}-1-`), 'charged only if the gateway did it').toBe(fault.providerDidIt ? 1 : 0);
          }
          await recover('card');
          return { ...ready, send, reference: (await orderOf(ready.id))!.reference };
        },
        after: async ({ id, product, send, reference }) => {
          const again = await send();
          expect(again.status, JSON.stringify(again.body)).toBe(200);
          const checkout = CheckoutResponseSchema.parse(again.body).checkout;
          // The gateway did charge when its answer was lost: the resend is refused as a duplicate, a person looks.
          expect(checkout.subscription?.instalments[0]?.status).toBe(fault.providerDidIt && !fault.harmless ? 'review' : 'paid');
          expect(approvedCharges(`${reference}-1-`), 'one approved charge for the first instalment').toBe(1);
          expect(registrations(curp, product)).toBe(1);
          expect(await ordersOf(id)).toBe(1);
        },
      });

      row('charge run', 'POST /admin/jobs/card-charges/run → make-payment-token', async () => {
        const { checkout } = await bought(curp, 'card');
        const reference = checkout.order!.reference;
        const second = await one<{ id: string; next_attempt_at: Date }>(
          `SELECT i.id, i.next_attempt_at FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id
           JOIN orders o ON o.id = s.order_id WHERE o.reference = $1 AND i.number = 2`, [reference]);
        const statusOf = async () => (await one<{ status: string }>('SELECT status FROM instalments WHERE id = $1', [second.id])).status;
        const runAt = async (offsetSeconds: number) => {
          const at = new Date(new Date(second.next_attempt_at).getTime() + offsetSeconds * 1000).toISOString();
          const answer = await call('POST', `/admin/jobs/card-charges/run?now=${encodeURIComponent(at)}`, { headers: admin });
          expect(answer.status, JSON.stringify(answer.body)).toBe(200);
          return answer.body.result as { approved: number; unknown: number; review: number };
        };
        await inject('card', charge, fault);
        const first = await runAt(1);
        if (fault.harmless) {
          expect(await statusOf()).toBe('paid');
        } else {
          // Outcome unknown: the instalment waits for the next run, which sends the same merchantOrderId.
          expect(first.unknown).toBeGreaterThanOrEqual(1);
          expect(await statusOf()).toBe('scheduled');
          expect(approvedCharges(`${reference}-2-`)).toBe(fault.providerDidIt ? 1 : 0);
        }
        await recover('card');
        // After unknownRetrySeconds (300 s), twice: the second run finds nothing left to do for it.
        await runAt(302);
        await runAt(604);
        expect(await statusOf()).toBe(fault.providerDidIt && !fault.harmless ? 'review' : 'paid');
        expect(approvedCharges(`${reference}-2-`), 'one approved charge for the second instalment').toBe(1);
        expect(server.cardSandbox!.ledger.filter((entry) => entry.merchantOrderId.startsWith(`${reference}-2-`))).toHaveLength(1);
      });
    });
  });

  // =====================================================================================================
  describe('beyond the matrix', () => {
    it(
      'price (POST /v1/checkouts/:id/quote → modify_record) dripped a few bytes at a time, each within the body timeout: ' +
        'the customer is answered at the overall deadline with the retryable error',
      async () => {
        fresh();
        const { checkout, token } = CreateCheckoutResponseSchema.parse((await newCheckout(people[0]!)).body);
        const product = checkout.products.find((p) => p.eligible)!.product;
        await inject('kasu', { kasuFunction: 'modify_record' }, { ...FAULTS[0]!, rule: { fault: 'slow', ms: 300, chunk: 2 } });
        const started = performance.now();
        // Its own connection pool, destroyed at the end: an aborted global fetch leaves a connection that would hold
        // the server's close() for a minute.
        const customer = new Agent();
        try {
          const answer = await request(`${server.url}/v1/checkouts/${checkout.id}/quote`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ product }),
            // Well over our 400 ms body timeout; the whole answer would take about 20 s.
            signal: AbortSignal.timeout(2_000),
            dispatcher: customer,
          }).catch((error: Error) => error);
          expect(answer, 'no answer within 2 s').not.toBeInstanceOf(Error);
          expect(performance.now() - started).toBeLessThan(2_000);
          if (answer instanceof Error) return;
          expect(answer.statusCode).toBe(503);
          expect(((await answer.body.json()) as { error: { code: string; retryable: boolean } }).error)
            .toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
        } finally {
          await customer.destroy();
          await recover('kasu'); // the drip sends the rest at once: the call ends
        }
      },
    );
  });

  // =====================================================================================================
  describe('Tupay', () => {
    const period = () => ({ from: new Date(Date.now() - 2 * 86_400_000).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString() });
    const reconcile = (body: Record<string, unknown>) => call('POST', '/admin/reconciliations', { headers: admin, body });

    describe.each(FAULTS)('$name', (fault) => {
      const calls: Array<{ name: string; route: string; match: Match }> = [
        { name: 'login', route: 'POST /admin/reconciliations → POST /v1/auth/login', match: { method: 'POST', path: '/v1/auth/login' } },
        { name: 'deposits', route: 'POST /admin/reconciliations → GET /v1/deposits', match: { method: 'GET', path: '/v1/deposits' } },
        { name: 'cash-outs', route: 'POST /admin/reconciliations → GET /v1/cashouts', match: { method: 'GET', path: '/v1/cashouts' } },
      ];
      for (const { name, route, match } of calls) {
        const test = async () => {
          const body = period();
          await inject('tupay', match, fault);
          const first = await reconcile(body);
          if (fault.harmless) {
            expect(first.status, JSON.stringify(first.body)).toBe(201);
          } else {
            expect(first.status, JSON.stringify(first.body)).toBe(503);
            expect(first.body.error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
            const [latest] = (await call('GET', '/admin/reconciliations?limit=1', { headers: admin })).body.reports;
            expect(latest).toMatchObject({ status: 'failed', error: { code: 'PROVIDER_UNAVAILABLE' } });
          }
          await recover('tupay');
          const again = await reconcile(body);
          expect(again.status, JSON.stringify(again.body)).toBe(201);
          expect(again.body.report).toMatchObject({ status: 'completed', tupay: { synced: true } });
          // Every record of the period once in the ledger, however many runs read it.
          const sandbox = server.tupaySandbox!;
          const inPeriod = (created: string) => {
            const at = Date.parse(`${created.replace(' ', 'T')}Z`);
            return at >= Date.parse(body.from) && at <= Date.parse(body.to);
          };
          const expected = sandbox.deposits.filter((d) => inPeriod(d.creationDate)).length + sandbox.cashouts.filter((c) => inPeriod(c.creationDate)).length;
          const ledger = await one<{ n: string; ids: string }>('SELECT count(*) AS n, count(DISTINCT (kind, id)) AS ids FROM tupay_records', []);
          expect(Number(ledger.n)).toBe(Number(ledger.ids));
          expect(again.body.report.tupay.deposits.read + again.body.report.tupay.cashouts.read).toBe(expected);
        };
        row(name, route, test);
      }
    });
  });
});
