/**
 * A Khipu payment created at Khipu whose answer never reached us (the `slow` fault: Khipu did the work, the answer is
 * lost on the way back), through HTTP against the BFF and its Khipu simulator. Khipu API 2.0 cannot look a payment up
 * by transaction_id, so the customer's retry creates another payment: the customer always gets a payable link, the
 * payment we never heard of is recognised by its `custom` (our payment id) when it is paid, our payment is settled
 * exactly once, and a second paid payment is flagged for review and refund, never counted as a second instalment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutResponseSchema } from '../../shared/contract.js';
import { loadConfig } from '../../server/config.js';
import { ProviderError } from '../../server/errors.js';
import { createMemoryLogger } from '../../server/log.js';
import { KhipuPayments, creationOutcomeUnknown } from '../../server/payments/khipu-payments.js';
import * as checkouts from '../../server/checkouts/checkout-store.js';
import { KhipuClient } from '../../server/providers/khipu/khipu-client.js';
import type { KhipuApi } from '../../server/providers/khipu/khipu-api.js';
import { ENGINES } from '../support/databases.js';
import { purchaser } from '../support/purchase.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ADMIN_TOKEN = 'admin-token-for-khipu-lost-answers-01';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const RETURN_URL = 'https://partner.example/';
const KHIPU_BODY = { paymentMethod: 'khipu', khipuBankId: 'Bawdf', returnUrl: RETURN_URL };

describe('which failed creations may have created the payment at Khipu', () => {
  const failure = (code: 'PROVIDER_UNAVAILABLE' | 'PROVIDER_CONFIG_ERROR' | 'RATE_LIMITED', upstreamStatus?: number, detail: Record<string, unknown> = {}) =>
    new ProviderError('khipu', code, { ...(upstreamStatus === undefined ? {} : { upstreamStatus }), detail });

  it('when Khipu refused the call, answered its own 503, or the connection never opened, then nothing was created', () => {
    expect(creationOutcomeUnknown(failure('PROVIDER_CONFIG_ERROR', 400))).toBe(false);
    expect(creationOutcomeUnknown(failure('PROVIDER_CONFIG_ERROR', 403))).toBe(false);
    expect(creationOutcomeUnknown(failure('RATE_LIMITED', 429))).toBe(false);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', 503, { outcomeUnknown: true }))).toBe(false);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', undefined, { reason: 'ECONNREFUSED', outcomeUnknown: false }))).toBe(false);
  });

  it('when the call timed out or was reset after sending, its 2xx body was broken, or another 5xx came, then the outcome is unknown', () => {
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', undefined, { reason: 'UND_ERR_BODY_TIMEOUT', outcomeUnknown: true }))).toBe(true);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', undefined, { reason: 'ECONNRESET', outcomeUnknown: true }))).toBe(true);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', 200, { why: 'answer is not JSON', outcomeUnknown: true }))).toBe(true);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', 500, { outcomeUnknown: true }))).toBe(true);
    expect(creationOutcomeUnknown(failure('PROVIDER_UNAVAILABLE', 504, { outcomeUnknown: true }))).toBe(true);
    expect(creationOutcomeUnknown(new Error('not an answer of Khipu'))).toBe(true);
  });
});

describe.each(ENGINES)('a Khipu payment whose creation answer was lost, on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  let buyer: ReturnType<typeof purchaser>;

  beforeAll(async () => {
    server = await startTestServer({
      engine,
      backgroundJobs: false,
      env: {
        ADMIN_TOKEN,
        KHIPU_TIMEOUT_MS: '400',
        KHIPU_POLL_AFTER_SECONDS: '1',
        KHIPU_POLL_INTERVAL_SECONDS: '1',
        RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_CHECKOUT_PER_MINUTE: '0',
      },
    });
    call = apiClient(server.url);
    buyer = purchaser(call, server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  // ---------- helpers ----------

  const one = async <T>(sql: string, params: unknown[]): Promise<T> => (await server.db.query(sql, params)).rows[0] as T;
  const khipuPaymentsFor = (reference: string) => [...server.khipuSandbox!.payments.values()].filter((p) => p.transaction_id === reference);
  const ourPayment = (id: string) =>
    one<{ status: string; provider_reference: string | null; unknown_creations: number }>(
      'SELECT status, provider_reference, unknown_creations FROM payments WHERE id = $1', [id]);
  const outcomes = async (paymentId: string) =>
    (await server.db.query<{ outcome: string }>('SELECT outcome FROM payment_notifications WHERE payment_id = $1 ORDER BY id', [paymentId]))
      .rows.map((row) => row.outcome);
  const events = async (type: string, reference: string) =>
    (await server.db.query<{ payload: { data: Record<string, any> } }>(
      "SELECT payload FROM webhook_events WHERE type = $1 AND payload->'data'->>'reference' = $2 ORDER BY created_at", [type, reference]))
      .rows.map((row) => row.payload.data);

  async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 8_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const control = (path: string, body: unknown = {}) =>
    fetch(`${server.url}/sandbox/khipu/_control${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  /** The customer pays a Khipu payment at Khipu; Khipu notifies us `deliveries` times (0: no notification). */
  async function payAtKhipu(khipuPaymentId: string, deliveries = 1) {
    const paid = await control(`/payments/${khipuPaymentId}/pay`, deliveries ? { deliveries } : { notify: false });
    expect(paid.status, await paid.clone().text()).toBe(200);
  }

  /** Khipu's notification of a payment, delivered by hand (as Khipu would, again and again). */
  const notify = (notificationToken: string) =>
    fetch(`${server.url}/webhooks/khipu`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ api_version: '1.3', notification_token: notificationToken }),
    });

  async function faults(rules: unknown[]) {
    const answer = await call(rules.length ? 'PUT' : 'DELETE', '/sandbox/khipu/_faults', rules.length ? { body: { rules } } : {});
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  }

  /**
   * A registered Khipu order whose first submit created a payment at Khipu and lost the answer: the customer got a
   * retryable 503, our payment is still to be created, and Khipu holds a payment (the orphan) we never heard of.
   */
  async function lostAnswer() {
    const { id, token } = await buyer.ready();
    const submit = () => call('POST', `/v1/checkouts/${id}/submit`, { token, body: KHIPU_BODY, headers: { 'idempotency-key': `buy-${id}` } });
    await faults([{ match: { method: 'POST', path: '/api/2.0/payments' }, fault: 'slow', ms: 1_200, times: 1 }]);
    try {
      const first = await submit();
      expect(first.status, JSON.stringify(first.body)).toBe(503);
      expect(first.body.error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    } finally {
      await faults([]);
    }
    const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
    expect(view.status).toBe('registered');
    expect(view.payment).toMatchObject({ method: 'khipu', status: 'pending', redirectUrl: null });
    const reference = view.order!.reference;
    const paymentId = view.payment!.id;
    expect(await ourPayment(paymentId)).toEqual({ status: 'new', provider_reference: null, unknown_creations: 1 });
    const atKhipu = khipuPaymentsFor(reference);
    expect(atKhipu, 'Khipu did create it').toHaveLength(1);
    expect(atKhipu[0]!.custom, 'our payment id travels in custom').toBe(paymentId);
    return { id, token, submit, reference, paymentId, amount: view.payment!.amount, orphan: atKhipu[0]! };
  }

  /** The customer retries and gets a link to a second Khipu payment. */
  async function retried(lost: Awaited<ReturnType<typeof lostAnswer>>) {
    const again = await lost.submit();
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const checkout = CheckoutResponseSchema.parse(again.body).checkout;
    expect(checkout.payment).toMatchObject({ id: lost.paymentId, status: 'pending' });
    const second = checkout.payment!.redirectUrl!.split('/').at(-1)!;
    expect(second).not.toBe(lost.orphan.payment_id);
    return { checkout, second };
  }

  async function reconciliationLinesOf(reference: string) {
    const run = await call('POST', '/admin/reconciliations', {
      headers: admin,
      body: { from: new Date(Date.now() - 6 * 3_600_000).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString(), sync: false },
    });
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    const lines = await call('GET', `/admin/reconciliations/${run.body.report.id}/lines?limit=1000`, { headers: admin });
    expect(lines.status).toBe(200);
    return (lines.body.lines as Array<{ orderReference: string; rail: string; kind: string; category: string }>)
      .filter((line) => line.orderReference === reference)
      .map((line) => `${line.rail} ${line.kind}: ${line.category}`)
      .sort();
  }

  // ---------- the customer is never stranded ----------

  it('when the answer of the creation is lost, then the retry gives the customer a payable link, and nothing phantom shows', async () => {
    const lost = await lostAnswer();
    const { checkout, second } = await retried(lost);
    expect(checkout.payment!.redirectUrl).toMatch(/\/sandbox\/khipu\/payment\/\w{12}$/);
    const page = await fetch(checkout.payment!.redirectUrl!);
    expect(page.status, 'the link opens a payable Khipu page').toBe(200);
    expect(server.khipuSandbox!.payments.get(second)?.status).toBe('pending');
    expect((await lost.submit()).body, 'the same key answers the same').toEqual((await lost.submit()).body);
    expect(await ourPayment(lost.paymentId)).toEqual({ status: 'pending', provider_reference: second, unknown_creations: 1 });
    expect(khipuPaymentsFor(lost.reference).map((p) => p.custom)).toEqual([lost.paymentId, lost.paymentId]);

    // One order, one payment, one pending line: the lost attempt is not a payment of its own anywhere.
    const order = await call('GET', `/admin/orders/${lost.reference}`, { headers: admin });
    expect(order.status).toBe(200);
    expect(order.body.order.payments).toHaveLength(1);
    expect(order.body.order.payments[0]).toMatchObject({ id: lost.paymentId, status: 'pending', providerReference: second });
    expect(await reconciliationLinesOf(lost.reference)).toEqual(['khipu order: unpaid', 'khipu payment: pending']);
  });

  // ---------- paying the payment we never heard of ----------

  it('when the customer pays the payment whose answer was lost, then ours is paid once through it and the other one is deleted at Khipu', async () => {
    const lost = await lostAnswer();
    const { second } = await retried(lost);
    await payAtKhipu(lost.orphan.payment_id, 3);
    const notified = await until(() => outcomes(lost.paymentId), (list) => list.length >= 3);
    expect(notified).toEqual(['paid', 'duplicate', 'duplicate']);

    expect(await ourPayment(lost.paymentId)).toEqual({ status: 'paid', provider_reference: lost.orphan.payment_id, unknown_creations: 1 });
    const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${lost.id}`, { token: lost.token })).body).checkout;
    expect(view.payment).toMatchObject({ id: lost.paymentId, status: 'paid', redirectUrl: null });
    expect(server.khipuSandbox!.payments.has(second), 'the spare payment cannot be paid any more').toBe(false);
    expect(khipuPaymentsFor(lost.reference).map((p) => p.payment_id)).toEqual([lost.orphan.payment_id]);

    const paid = await events('order.paid', lost.reference);
    expect(paid, 'the merchant hears of one payment').toHaveLength(1);
    expect(paid[0]!.payment).toMatchObject({ id: lost.paymentId, providerReference: lost.orphan.payment_id, amount: lost.amount });
    expect(await events('payment.needs_review', lost.reference)).toEqual([]);

    // The poller leaves it alone (it is paid); a refund goes to the payment that was really paid.
    await server.db.query("UPDATE payments SET created_at = now() - interval '1 hour' WHERE id = $1", [lost.paymentId]);
    expect((await call('POST', '/admin/jobs/khipu-poll/run', { headers: admin })).status).toBe(200);
    expect(await ourPayment(lost.paymentId)).toEqual({ status: 'paid', provider_reference: lost.orphan.payment_id, unknown_creations: 1 });
    expect(await events('order.paid', lost.reference)).toHaveLength(1);
    const refund = await call('POST', `/admin/payments/${lost.paymentId}/refund`, { headers: admin, body: { amount: 100 } });
    expect(refund.status, JSON.stringify(refund.body)).toBe(200);
    expect(server.khipuSandbox!.payments.get(lost.orphan.payment_id)!.sandbox.refunded).toBe(1);

    expect(await reconciliationLinesOf(lost.reference)).toEqual(['khipu payment: matched']);
  });

  it('when the payment whose answer was lost is paid before the customer retries, then the retry shows it paid and creates nothing', async () => {
    const lost = await lostAnswer();
    await payAtKhipu(lost.orphan.payment_id, 0);
    expect((await notify(lost.orphan.notification_token)).status).toBe(200);
    expect(await ourPayment(lost.paymentId)).toEqual({ status: 'paid', provider_reference: lost.orphan.payment_id, unknown_creations: 1 });

    const again = await lost.submit();
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(CheckoutResponseSchema.parse(again.body).checkout.payment).toMatchObject({ status: 'paid', redirectUrl: null });
    expect(khipuPaymentsFor(lost.reference), 'no second payment at Khipu').toHaveLength(1);
    expect(await events('order.paid', lost.reference)).toHaveLength(1);
  });

  // ---------- both paid ----------

  it('when both payments are paid, then the later one is flagged for review and refund, once, and the order is not counted twice', async () => {
    const lost = await lostAnswer();
    const { second } = await retried(lost);
    await payAtKhipu(second, 1);
    await until(() => ourPayment(lost.paymentId), (payment) => payment.status === 'paid');
    // The customer also finds and pays the first one (Khipu keeps it payable until it expires).
    await payAtKhipu(lost.orphan.payment_id, 2);
    const notified = await until(() => outcomes(lost.paymentId), (list) => list.length >= 3);
    expect(notified).toEqual(['paid', 'needs_review', 'duplicate']);

    // Our payment stays paid through the payment it held; one instalment, one order.paid.
    expect(await ourPayment(lost.paymentId)).toEqual({ status: 'paid', provider_reference: second, unknown_creations: 1 });
    expect(await events('order.paid', lost.reference)).toHaveLength(1);
    const reviews = (await server.db.query(
      'SELECT provider, provider_reference, reason, status, amount_centavos, currency FROM payment_reviews WHERE payment_id = $1', [lost.paymentId])).rows;
    expect(reviews).toEqual([{
      provider: 'khipu', provider_reference: lost.orphan.payment_id, reason: 'duplicate', status: 'needs_review',
      amount_centavos: lost.amount, currency: 'MXN',
    }]);
    const flagged = await events('payment.needs_review', lost.reference);
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toMatchObject({
      reason: 'duplicate',
      payment: { id: lost.paymentId, status: 'paid', providerReference: second },
      providerPayment: { providerReference: lost.orphan.payment_id, amount: lost.amount, currency: 'MXN' },
    });
    expect(server.logs.some((line) => line.includes('ALERT a second khipu payment was paid'))).toBe(true);

    const order = await call('GET', `/admin/orders/${lost.reference}`, { headers: admin });
    expect(order.body.order.payments).toHaveLength(1);
    expect(order.body.notifications[lost.paymentId].map((n: { outcome: string }) => n.outcome)).toContain('needs_review');
    expect(order.body.reviews[lost.paymentId]).toMatchObject([{ providerReference: lost.orphan.payment_id, reason: 'duplicate', status: 'needs_review' }]);
    expect(await reconciliationLinesOf(lost.reference), 'one paid instalment, and the money paid twice shown as a duplicate')
      .toEqual(['khipu payment: duplicate', 'khipu payment: matched']);

    // The merchant gives the second payment back, once however often it is asked.
    const refundPath = `/admin/payment-reviews/khipu/${lost.orphan.payment_id}/refund`;
    const [refund, twice] = await Promise.all([
      call('POST', refundPath, { headers: admin }), call('POST', refundPath, { headers: admin }),
    ]);
    expect([refund.status, twice.status].sort()).toEqual([200, 400]);
    expect((refund.status === 200 ? refund : twice).body.review).toMatchObject({ status: 'refunded', amount: lost.amount });
    expect(server.khipuSandbox!.payments.get(lost.orphan.payment_id)!.sandbox.refunds).toHaveLength(1);
    expect(server.khipuSandbox!.payments.get(second)!.sandbox.refunds, 'the payment that counts is kept').toHaveLength(0);
    expect((await call('POST', '/admin/payment-reviews/khipu/unknown-payment/refund', { headers: admin })).status).toBe(404);
  });

  it('when the lost one is paid first and the other cannot be deleted and is paid too, then the later one is flagged for review', async () => {
    const lost = await lostAnswer();
    const { second } = await retried(lost);
    // Khipu cannot delete the other payment (the customer is already paying it, say).
    expect((await control('/fail-next', { status: 503, path: `/payments/${second}`, method: 'DELETE' })).status).toBe(200);
    await payAtKhipu(lost.orphan.payment_id, 0);
    expect((await notify(lost.orphan.notification_token)).status).toBe(200);
    expect(await ourPayment(lost.paymentId)).toMatchObject({ status: 'paid', provider_reference: lost.orphan.payment_id });
    expect(server.khipuSandbox!.payments.get(second)?.status).toBe('pending');
    expect(server.logs.some((line) => line.includes('spare khipu payment could not be deleted'))).toBe(true);

    await payAtKhipu(second, 0);
    const token = server.khipuSandbox!.payments.get(second)!.notification_token;
    for (let i = 0; i < 2; i++) expect((await notify(token)).status).toBe(200);
    expect(await outcomes(lost.paymentId)).toEqual(['paid', 'needs_review', 'duplicate']);
    expect(await ourPayment(lost.paymentId)).toMatchObject({ status: 'paid', provider_reference: lost.orphan.payment_id });
    expect((await server.db.query('SELECT provider_reference, reason FROM payment_reviews WHERE payment_id = $1', [lost.paymentId])).rows)
      .toEqual([{ provider_reference: second, reason: 'duplicate' }]);
    expect(await events('order.paid', lost.reference)).toHaveLength(1);
    expect(await events('payment.needs_review', lost.reference)).toHaveLength(1);
    expect(await reconciliationLinesOf(lost.reference)).toEqual(['khipu payment: duplicate', 'khipu payment: matched']);
  });

  it('when our payment was cancelled and the payment whose answer was lost is then paid, then that payment is flagged for review', async () => {
    const lost = await lostAnswer();
    await retried(lost);
    const cancelled = await call('DELETE', `/admin/payments/${lost.paymentId}`, { headers: admin });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    await payAtKhipu(lost.orphan.payment_id, 0);
    expect((await notify(lost.orphan.notification_token)).status).toBe(200);
    expect((await ourPayment(lost.paymentId)).status).toBe('cancelled');
    expect(await outcomes(lost.paymentId)).toEqual(['needs_review']);
    expect((await server.db.query('SELECT reason FROM payment_reviews WHERE payment_id = $1', [lost.paymentId])).rows).toEqual([
      { reason: 'payment_cancelled' },
    ]);
    expect(await events('order.paid', lost.reference)).toEqual([]);
    // The money received is shown (a duplicate: it pays no instalment), and the order stays unpaid.
    expect(await reconciliationLinesOf(lost.reference)).toEqual(['khipu order: unpaid', 'khipu payment: duplicate', 'khipu payment: failed']);
  });

  // ---------- races ----------

  it('when the payment whose answer was lost is paid while the retry is creating another, then the new one is deleted and ours stays paid', async () => {
    const lost = await lostAnswer();
    // A second BFF instance's retry, held after Khipu created its payment and before we record it.
    const config = loadConfig({ MODE: 'sandbox', PORT: '0', HOST: '127.0.0.1' }).khipu!;
    const client = new KhipuClient({ ...config, baseUrl: `${server.url}/sandbox/khipu/api/2.0` });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let createdId: string | null = null;
    const gated: KhipuApi = Object.assign(Object.create(client) as KhipuApi, {
      async createPayment(input: Parameters<KhipuApi['createPayment']>[0]) {
        const created = await client.createPayment(input);
        createdId = created.paymentId;
        await held;
        return created;
      },
      deletePayment: (id: string) => client.deletePayment(id),
    });
    const logger = createMemoryLogger();
    const instance = new KhipuPayments(server.db, gated, {
      receiverId: config.receiverId, notifyUrl: `${server.url}/webhooks/khipu`, paymentExpiryHours: 24,
      pollAfterSeconds: 1, pollIntervalSeconds: 1, merchantWebhookUrl: null,
    }, logger);
    try {
      const order = (await checkouts.findOrderByReference(server.db, lost.reference))!;
      const racing = instance.ensureCreated((await checkouts.findCurrentPayment(server.db, order.id))!, order, {
        payerEmail: 'ana@example.mx', payerName: null, returnUrl: RETURN_URL,
      });
      await until(async () => createdId, (id) => id !== null);
      expect(khipuPaymentsFor(lost.reference)).toHaveLength(2);

      await payAtKhipu(lost.orphan.payment_id, 0);
      expect((await notify(lost.orphan.notification_token)).status).toBe(200);
      expect(await ourPayment(lost.paymentId)).toMatchObject({ status: 'paid', provider_reference: lost.orphan.payment_id });

      release();
      await racing;
      expect(await ourPayment(lost.paymentId)).toMatchObject({ status: 'paid', provider_reference: lost.orphan.payment_id });
      expect(server.khipuSandbox!.payments.has(createdId!), 'the payment created meanwhile is deleted').toBe(false);
      expect(logger.lines.some((line) => line.includes('settled meanwhile'))).toBe(true);
      expect(await events('order.paid', lost.reference)).toHaveLength(1);
    } finally {
      release();
      await client.close();
    }
  });

  it('when Khipu refuses the creation (400) or answers its own 503, then the attempt is not counted as unknown; a 500 is', async () => {
    const { id, token } = await buyer.ready();
    const submit = (key: string) => call('POST', `/v1/checkouts/${id}/submit`, { token, body: KHIPU_BODY, headers: { 'idempotency-key': key } });
    const paymentRow = () => one<{ id: string; unknown_creations: number; status: string }>(
      'SELECT p.id, p.unknown_creations, p.status FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.checkout_id = $1', [id]);
    for (const [status, unknown] of [[400, 0], [503, 0], [500, 1]] as const) {
      const failNext = await control('/fail-next', { status, path: '/payments', method: 'POST' });
      expect(failNext.status).toBe(200);
      const answer = await submit(`refused-${status}`);
      expect(answer.status, JSON.stringify(answer.body)).toBeGreaterThanOrEqual(500);
      expect(await paymentRow()).toMatchObject({ status: 'new', unknown_creations: unknown });
    }
    const ok = await submit('after-refusals');
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await paymentRow()).status).toBe('pending');
  });
});
