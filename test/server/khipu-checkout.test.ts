/**
 * Paying with Khipu through the BFF, against the built-in Khipu simulator over real HTTP: one payment per order,
 * paid only on Khipu's own word, once, however many notifications arrive; the merchant told by a signed webhook.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateCheckoutResponseSchema, CheckoutResponseSchema, KhipuBanksResponseSchema } from '../../shared/contract.js';
import { verifyMerchantWebhook } from '../../server/webhooks/merchant-webhooks.js';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { ENGINES } from '../support/databases.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const WEBHOOK_SECRET = 'merchant-secret-for-tests';
const RETURN_URL = 'https://partner.example/comprar?plan=funerario';

type Received = { headers: IncomingMessage['headers']; body: string };

async function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

describe.each(ENGINES)('Khipu payments through the BFF on %s', (engine) => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let call: ReturnType<typeof apiClient>;
  // KASU registers a CURP once per product: each purchase takes a (CURP, product) pair not used before,
  // choosing among the products the checkout itself says are eligible.
  const candidates = SANDBOX_CURPS.filter((p) => !p.deceased).map((p) => p.curp);
  const used = new Set<string>();
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startTestServer({
      engine,
      backgroundJobs: false,
      env: {
        ADMIN_TOKEN, MERCHANT_WEBHOOK_URL: receiver.url, MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
        KHIPU_POLL_AFTER_SECONDS: '1', KHIPU_POLL_INTERVAL_SECONDS: '1',
      },
    });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
    receiver?.server.close();
  });

  async function submittedCheckout(planIndex = 0) {
    let chosen: { checkout: any; token: string; curp: string; product: string } | null = null;
    for (const curp of candidates) {
      const created = await call('POST', '/v1/checkouts', { body: { curp } });
      const { checkout, token } = CreateCheckoutResponseSchema.parse(created.body);
      const product = checkout.products.find((p) => p.eligible && !used.has(`${curp}/${p.product}`))?.product;
      if (product) {
        used.add(`${curp}/${product}`);
        chosen = { checkout, token, curp, product };
        break;
      }
    }
    if (!chosen) throw new Error('the sandbox registry has no unused (CURP, product) pair left');
    const { checkout, token, curp, product } = chosen;
    const quote = (await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product } })).body.quote;
    await call('PATCH', `/v1/checkouts/${checkout.id}`, {
      token,
      body: {
        planCount: quote.plans[Math.min(planIndex, quote.plans.length - 1)].count,
        contact: { email: `${curp.toLowerCase()}.${product.toLowerCase()}@example.mx`, phone: `55${curp.slice(4, 10)}${product.length}0`.slice(0, 10) },
        address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
        consents: { terms: true, privacy: true, trust: true },
      },
    });
    const submit = (key: string) => call('POST', `/v1/checkouts/${checkout.id}/submit`, {
      token, body: { paymentMethod: 'khipu', khipuBankId: 'Bawdf', returnUrl: RETURN_URL }, headers: { 'idempotency-key': key },
    });
    const first = await submit(`khipu-${curp}`);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    return { id: checkout.id, token, curp, submit, view: CheckoutResponseSchema.parse(first.body).checkout };
  }

  const paymentOf = async (id: string, token: string) =>
    CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout.payment!;

  const khipuPaymentId = (redirectUrl: string) => redirectUrl.split('/').at(-1)!;

  const control = (path: string, body: unknown = {}) =>
    fetch(`${server.url}/sandbox/khipu/_control${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 8000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('when the customer lists banks, then Khipu’s banks come through the BFF', async () => {
    const { status, body } = await call('GET', '/v1/khipu/banks');
    expect(status).toBe(200);
    expect(KhipuBanksResponseSchema.parse(body).banks.length).toBeGreaterThan(0);
  });

  it('when khipu is chosen, then the order is registered and one Khipu payment is created for the first instalment, however often submit is repeated', async () => {
    const { view, submit, id, token } = await submittedCheckout(2);
    expect(view.status).toBe('registered');
    expect(view.order?.policy).toBeTruthy();
    expect(view.payment).toMatchObject({ method: 'khipu', status: 'pending', instalment: 1, amount: view.order!.instalmentAmount });
    expect(view.payment!.redirectUrl).toMatch(/\/sandbox\/khipu\/payment\/[A-Za-z0-9]{12}$/);
    const again = await submit('another-key-same-checkout');
    expect(CheckoutResponseSchema.parse(again.body).checkout.payment!.redirectUrl).toBe(view.payment!.redirectUrl);
    const created = [...server.khipuSandbox!.payments.values()].filter((p) => p.transaction_id === view.order!.reference);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      amount: expect.anything(), currency: 'MXN', notify_url: `${server.url}/webhooks/khipu`, notify_api_version: '1.3',
      return_url: RETURN_URL, bank_id: 'Bawdf',
    });
    expect(created[0]!.cancel_url).toBe(`${RETURN_URL}&kasu_payment=cancelled`);
    expect((await paymentOf(id, token)).status).toBe('pending');
  });

  it('when Khipu delivers the same notification five times, then the order is paid once and the merchant gets one signed order.paid', async () => {
    const { view, id, token } = await submittedCheckout();
    const pay = await control(`/payments/${khipuPaymentId(view.payment!.redirectUrl!)}/pay`, { deliveries: 5 });
    expect(pay.status).toBe(200);
    const payment = await until(() => paymentOf(id, token), (p) => p.status === 'paid');
    expect(payment.status).toBe('paid');
    expect(payment.paidAt).toBeTruthy();
    const { rows } = await until(
      () => server.db.query<{ outcome: string }>('SELECT outcome FROM payment_notifications WHERE payment_id = $1', [view.payment!.id]),
      (r) => r.rows.length >= 5,
    );
    expect(rows.map((r) => r.outcome).sort()).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'paid']);

    await server.jobs.webhooks.runNow();
    const events = receiver.received.map((r) => ({ ...r, event: JSON.parse(r.body) }));
    const paid = events.filter((e) => e.event.type === 'order.paid' && e.event.data.reference === view.order!.reference);
    expect(paid).toHaveLength(1);
    expect(verifyMerchantWebhook(WEBHOOK_SECRET, paid[0]!.headers['kasu-signature'] as string, paid[0]!.body)).toBe(true);
    expect(paid[0]!.event.data.payment).toMatchObject({ method: 'khipu', amount: view.payment!.amount, currency: 'MXN' });
    expect(events.filter((e) => e.event.type === 'order.registered' && e.event.data.reference === view.order!.reference)).toHaveLength(1);
  });

  it('when a notification carries a token Khipu does not know, then it is refused, recorded and nothing is paid', async () => {
    const { view, id, token } = await submittedCheckout();
    const forged = await fetch(`${server.url}/webhooks/khipu`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ api_version: '1.3', notification_token: 'f'.repeat(64) }),
    });
    expect(forged.status).toBe(404);
    expect((await paymentOf(id, token)).status).toBe('pending');
    const { rows } = await server.db.query<{ outcome: string }>(
      "SELECT outcome FROM payment_notifications WHERE notification_token = $1", ['f'.repeat(64)]);
    expect(rows).toEqual([{ outcome: 'unknown_token' }]);
    expect(view.payment!.status).toBe('pending');
  });

  it('when Khipu reports a different amount, then the payment is not paid and the mismatch is recorded', async () => {
    const { view, id, token } = await submittedCheckout();
    const khipuId = khipuPaymentId(view.payment!.redirectUrl!);
    await control(`/payments/${khipuId}/pay`, { reportAmount: '1.00' });
    const { rows } = await until(
      () => server.db.query<{ outcome: string; detail: any }>('SELECT outcome, detail FROM payment_notifications WHERE payment_id = $1', [view.payment!.id]),
      (r) => r.rows.length > 0,
    );
    expect(rows[0]!.outcome).toBe('mismatch');
    expect(rows[0]!.detail.mismatches.amount).toEqual({ expected: view.payment!.amount, actual: 100 });
    expect((await paymentOf(id, token)).status).toBe('pending');
    expect(server.logs.some((line) => line.includes('ALERT khipu payment does not match'))).toBe(true);
  });

  it('when Khipu reports another receiver for our payment, then it is not paid and the mismatch is recorded', async () => {
    const { view, id, token } = await submittedCheckout();
    await control(`/payments/${khipuPaymentId(view.payment!.redirectUrl!)}/pay`, { reportReceiverId: '999999' });
    const { rows } = await until(
      () => server.db.query<{ outcome: string; detail: any }>('SELECT outcome, detail FROM payment_notifications WHERE payment_id = $1', [view.payment!.id]),
      (r) => r.rows.length > 0,
    );
    expect(rows[0]!.outcome).toBe('mismatch');
    expect(rows[0]!.detail.mismatches.receiver_id).toEqual({ expected: '100000', actual: '999999' });
    expect((await paymentOf(id, token)).status).toBe('pending');
  });

  it('when the notification never arrives, then the poller asks Khipu and marks the payment paid', async () => {
    const { view, id, token } = await submittedCheckout();
    await control(`/payments/${khipuPaymentId(view.payment!.redirectUrl!)}/pay`, { notify: false });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // older than KHIPU_POLL_AFTER_SECONDS
    const run = await call('POST', '/admin/jobs/khipu-poll/run', { headers: admin });
    expect(run.status).toBe(200);
    expect(run.body.result.paid).toBeGreaterThanOrEqual(1);
    expect((await paymentOf(id, token)).status).toBe('paid');
  });

  it('when the admin refunds part and then the rest, then Khipu refunds both and over-refunding is refused', async () => {
    const { view, id, token } = await submittedCheckout();
    await control(`/payments/${khipuPaymentId(view.payment!.redirectUrl!)}/pay`, {});
    await until(() => paymentOf(id, token), (p) => p.status === 'paid');
    const paymentId = view.payment!.id;
    const part = await call('POST', `/admin/payments/${paymentId}/refund`, { headers: admin, body: { amount: 100 } });
    expect(part.status).toBe(200);
    expect(part.body.payment.refunded).toBe(100);
    const rest = await call('POST', `/admin/payments/${paymentId}/refund`, { headers: admin, body: {} });
    expect(rest.body.payment.refunded).toBe(view.payment!.amount);
    const over = await call('POST', `/admin/payments/${paymentId}/refund`, { headers: admin, body: { amount: 1 } });
    expect(over.status).toBe(400);
    const order = await call('GET', `/admin/orders/${view.order!.reference}`, { headers: admin });
    expect(order.body.order.payments[0]).toMatchObject({ id: paymentId, status: 'paid', refunded: view.payment!.amount });
    expect(order.body.order.curp).not.toMatch(/^[A-Z]{4}\d{6}/);
  });

  it('when the admin deletes a pending payment, then Khipu deletes it and the customer sees it cancelled', async () => {
    const { view, id, token } = await submittedCheckout();
    const deleted = await call('DELETE', `/admin/payments/${view.payment!.id}`, { headers: admin });
    expect(deleted.status).toBe(200);
    expect((await paymentOf(id, token)).status).toBe('cancelled');
    expect(server.khipuSandbox!.payments.get(khipuPaymentId(view.payment!.redirectUrl!))).toBeUndefined();
  });

  it('when the admin API is called without the token, then 401, and orders can be listed with it', async () => {
    expect((await call('GET', '/admin/orders')).status).toBe(401);
    expect((await call('GET', '/admin/orders', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const list = await call('GET', '/admin/orders?limit=5', { headers: admin });
    expect(list.status).toBe(200);
    expect(list.body.orders.length).toBeGreaterThan(0);
  });

  it('when the adapter talked to Khipu, then every request passed the simulator’s signature check', () => {
    const requests = server.khipuSandbox!.requests;
    expect(requests.length).toBeGreaterThan(10);
    expect(requests.filter((r) => !r.signatureValid)).toEqual([]);
  });
});
