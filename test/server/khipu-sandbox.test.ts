import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startStubServer } from '../support/stub-server.js';
import { encodeKhipuParams, khipuAuthorization } from '../../server/providers/khipu/signature.js';
import {
  createKhipuSandbox,
  SANDBOX_KHIPU_RECEIVER_ID,
  SANDBOX_KHIPU_SECRET,
  startKhipuSandbox,
  type KhipuSandboxPayment,
} from '../../server/sandbox/khipu/khipu-sandbox.js';

const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const HOUR = 3_600_000;
const RETRY_DELAYS_MS = [0, 40, 40, 40];

let sandbox: Awaited<ReturnType<typeof startKhipuSandbox>>;
let now = BASE_NOW;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startKhipuSandbox({ now: () => now, notificationRetryDelaysMs: RETRY_DELAYS_MS });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  now = BASE_NOW;
  sandbox.state.reset();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

type Reply = { status: number; body: any };
type CallOptions = { base?: string; receiverId?: string; secret?: string; authorization?: string | null; signedParams?: Record<string, string> };

/** A signed API call, as a Khipu client makes it: form body for POST, query string for GET and DELETE. */
async function api(method: string, path: string, params: Record<string, string> = {}, options: CallOptions = {}): Promise<Reply> {
  const encoded = encodeKhipuParams(Object.entries(params));
  const inQuery = method !== 'POST';
  const url = `${options.base ?? sandbox.url}/api/2.0${path}${inQuery && encoded ? `?${encoded}` : ''}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  const authorization =
    options.authorization === undefined
      ? khipuAuthorization({
          receiverId: options.receiverId ?? SANDBOX_KHIPU_RECEIVER_ID,
          secret: options.secret ?? SANDBOX_KHIPU_SECRET,
          method,
          url,
          params: inQuery ? [] : Object.entries(options.signedParams ?? params),
        })
      : options.authorization;
  if (authorization !== null) headers.authorization = authorization;
  if (!inQuery) headers['content-type'] = 'application/x-www-form-urlencoded';
  const response = await fetch(url, { method, headers, ...(inQuery ? {} : { body: encoded }) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function control(path: string, body: unknown = {}): Promise<Reply> {
  return fetch(`${sandbox.url}/_control${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
    async (response) => ({ status: response.status, body: await response.json() }),
  );
}

type Received = { headers: IncomingMessage['headers']; body: string; at: number };

/** The merchant's notification endpoint; answers the given statuses in turn, then 200. */
async function merchant(statuses: number[] = []): Promise<{ url: string; received: Received[] }> {
  const server = await startStubServer((_req, res) => res.writeHead(statuses.shift() ?? 200).end());
  closers.push(server.close);
  return { url: `${server.url}/webhooks/khipu`, received: server.requests };
}

const PAYMENT = { subject: 'KASU Funerario · KSU-0001', currency: 'MXN', amount: '1234.50', transaction_id: 'KSU-0001' };

async function createPayment(params: Record<string, string> = {}): Promise<KhipuSandboxPayment> {
  const reply = await api('POST', '/payments', { ...PAYMENT, ...params });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return sandbox.state.payments.get(reply.body.payment_id as string)!;
}

async function until<T>(read: () => T, done: (value: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Submits one of the payment page's forms as a browser would, without following the redirect. */
function submitForm(path: string, fields: Record<string, string> = {}): Promise<Response> {
  return fetch(`${sandbox.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
}

describe('Khipu sandbox API', () => {
  it('when a payment is created, then it has a 12-character id, a 64-character token, its page URL and the document\'s fields', async () => {
    const reply = await api('POST', '/payments', { ...PAYMENT, bank_id: 'Bawdf', expires_date: '2026-06-02T12:00:00.000Z' });
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body).sort()).toEqual(
      ['app_url', 'payment_id', 'payment_url', 'ready_for_terminal', 'simplified_transfer_url', 'transfer_url', 'webpay_url'],
    );
    const id = reply.body.payment_id as string;
    expect(id).toMatch(/^[a-z0-9]{12}$/);
    expect(reply.body).toMatchObject({ payment_url: `${sandbox.url}/payment/${id}`, ready_for_terminal: true });

    const read = await api('GET', `/payments/${id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      payment_id: id, receiver_id: 100000, subject: PAYMENT.subject, amount: 1234.5, currency: 'MXN', status: 'pending',
      status_detail: 'pending', transaction_id: 'KSU-0001', bank_id: 'Bawdf', bank: 'DemoBank', expires_date: '2026-06-02T12:00:00Z',
      conciliation_date: null,
    });
    expect(read.body.notification_token).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(read.body).not.toHaveProperty('sandbox');
  });

  it('when required fields are missing, then 400 Datos inválidos lists each of them', async () => {
    const reply = await api('POST', '/payments', { transaction_id: 'x' });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ status: 400, message: 'Datos inválidos' });
    expect(reply.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['amount', 'currency', 'subject']);
  });

  it('when an amount has more than 4 decimals, is not a number, is zero, or has decimals in CLP, then 400 on amount; 4 decimals are fine', async () => {
    for (const params of [{ amount: '10.12345' }, { amount: '10,50' }, { amount: '0' }, { amount: '1000.5', currency: 'CLP' }]) {
      const reply = await api('POST', '/payments', { ...PAYMENT, ...params });
      expect(reply.status, JSON.stringify(params)).toBe(400);
      expect(reply.body.errors).toEqual([{ field: 'amount', message: expect.any(String) }]);
    }
    expect((await api('POST', '/payments', { ...PAYMENT, amount: '10.1234' })).status).toBe(200);
    expect((await api('POST', '/payments', { ...PAYMENT, amount: '1000', currency: 'CLP' })).status).toBe(200);
  });

  it('when expires_date is not ISO-8601 or already past, or other fields are invalid, then 400 names each field', async () => {
    const reply = await api('POST', '/payments', {
      ...PAYMENT,
      expires_date: '01/03/2027',
      return_url: 'javascript:alert(1)',
      notify_api_version: '1.2',
      bank_id: 'nope',
      send_email: 'true',
    });
    expect(reply.status).toBe(400);
    expect(reply.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(
      ['bank_id', 'expires_date', 'notify_api_version', 'payer_email', 'payer_name', 'return_url'],
    );
    const past = await api('POST', '/payments', { ...PAYMENT, expires_date: '2026-06-01T11:59:59Z' });
    expect(past.body.errors).toEqual([{ field: 'expires_date', message: expect.any(String) }]);
  });

  it('when a request has no signature, a bad one, an unknown receiver or a tampered parameter, then 403 and nothing is created', async () => {
    const replies = [
      await api('POST', '/payments', PAYMENT, { authorization: null }),
      await api('POST', '/payments', PAYMENT, { authorization: `${SANDBOX_KHIPU_RECEIVER_ID}:${'0'.repeat(64)}` }),
      await api('POST', '/payments', PAYMENT, { secret: 'wrong' }),
      await api('POST', '/payments', PAYMENT, { receiverId: '42' }),
      await api('POST', '/payments', PAYMENT, { signedParams: { ...PAYMENT, amount: '1.00' } }),
      await api('GET', '/banks', {}, { authorization: 'Bearer abc' }),
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(403);
      expect(reply.body).toEqual({ status: 403, message: expect.any(String) });
    }
    expect(sandbox.state.payments.size).toBe(0);
    expect(sandbox.state.requests.map((r) => r.signatureValid)).toEqual([false, false, false, false, false, false]);
    expect((await api('POST', '/payments', PAYMENT)).status).toBe(200);
    expect(sandbox.state.requests.at(-1)).toMatchObject({ method: 'POST', path: '/payments', signatureValid: true, status: 200 });
  });

  it('when a GET carries its parameter in the query, then the query is part of the signature', async () => {
    const payment = await createPayment();
    const token = payment.notification_token;
    const ok = await api('GET', '/payments', { notification_token: token });
    expect(ok.status).toBe(200);
    expect(ok.body.payment_id).toBe(payment.payment_id);
    // Signed without the query, sent with it.
    const url = `${sandbox.url}/api/2.0/payments`;
    const unsigned = khipuAuthorization({ receiverId: SANDBOX_KHIPU_RECEIVER_ID, secret: SANDBOX_KHIPU_SECRET, method: 'GET', url });
    const response = await fetch(`${url}?notification_token=${token}`, { headers: { authorization: unsigned } });
    expect(response.status).toBe(403);
    await response.body?.cancel();
  });

  it('when a notification token or a payment id is unknown (or another receiver\'s), then 400 naming notification_token or id', async () => {
    const unknownToken = await api('GET', '/payments', { notification_token: 'x'.repeat(64) });
    expect(unknownToken).toEqual({
      status: 400,
      body: { status: 400, message: 'Datos inválidos', errors: [{ field: 'notification_token', message: expect.any(String) }] },
    });
    for (const [method, path] of [['GET', ''], ['DELETE', ''], ['POST', '/confirm'], ['POST', '/refunds']] as const) {
      const reply = await api(method, `/payments/zzzzzzzzzzzz${path}`);
      expect(reply.status).toBe(400);
      expect(reply.body.errors).toEqual([{ field: 'id', message: expect.any(String) }]);
    }
    const other = await api('POST', '/receivers', receiverFields());
    const payment = await createPayment();
    const asOther = await api('GET', `/payments/${payment.payment_id}`, {}, { receiverId: other.body.receiver_id, secret: other.body.secret });
    expect(asOther.status).toBe(400);
  });

  it('when a pending payment is deleted, then it is gone; a paid one cannot be deleted', async () => {
    const pending = await createPayment();
    expect(await api('DELETE', `/payments/${pending.payment_id}`)).toEqual({ status: 200, body: { message: expect.any(String) } });
    expect(sandbox.state.payments.has(pending.payment_id)).toBe(false);

    const paid = await createPayment();
    await control(`/payments/${paid.payment_id}/pay`, { notify: false });
    const refused = await api('DELETE', `/payments/${paid.payment_id}`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'status', message: expect.any(String) }]);
    expect(sandbox.state.payments.get(paid.payment_id)?.status).toBe('done');
  });

  it('when a paid payment is refunded in part and then the rest, then both succeed and it is reversed; more, or a pending one, is refused', async () => {
    const pending = await createPayment();
    expect((await api('POST', `/payments/${pending.payment_id}/refunds`)).status).toBe(400);

    const payment = await createPayment();
    await control(`/payments/${payment.payment_id}/pay`, { notify: false });
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '1234.51' })).status).toBe(400);
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '34.50' })).status).toBe(200);
    expect(payment.sandbox.refunded).toBe(34.5);
    expect(payment.status_detail).toBe('normal');
    const over = await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '1200.01' });
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([{ field: 'amount', message: expect.any(String) }]);
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`)).status).toBe(200);
    expect(payment.sandbox.refunds.map((r) => r.amount)).toEqual([34.5, 1200]);
    expect(payment).toMatchObject({ status: 'done', status_detail: 'reversed' });
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '0.01' })).status).toBe(400);
  });

  it('when a payment is confirmed, then only a paid one is accepted and refunds stop a day later (rendition)', async () => {
    const payment = await createPayment();
    expect((await api('POST', `/payments/${payment.payment_id}/confirm`)).status).toBe(400);
    await control(`/payments/${payment.payment_id}/pay`, { notify: false });
    expect((await api('POST', `/payments/${payment.payment_id}/confirm`)).status).toBe(200);
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '1.00' })).status).toBe(200);
    now += 25 * HOUR;
    expect((await api('POST', `/payments/${payment.payment_id}/refunds`, { amount: '1.00' })).status).toBe(400);
  });

  it('when banks and payment methods are listed, then the document\'s models come back (paymentMethods in camelCase)', async () => {
    const banks = await api('GET', '/banks');
    expect(banks.body.banks[0]).toEqual({ bank_id: 'Bawdf', name: 'DemoBank', message: expect.any(String), min_amount: 10, type: 'Persona', parent: '' });
    const methods = await api('GET', `/merchants/${SANDBOX_KHIPU_RECEIVER_ID}/paymentMethods`);
    expect(methods.body.paymentMethods[0]).toEqual({ id: 'simplified_transfer', name: expect.any(String), logo_url: expect.stringMatching(/\.svg$/) });
    expect((await fetch(methods.body.paymentMethods[0].logo_url)).headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect((await api('GET', '/merchants/1/paymentMethods')).status).toBe(400);
  });

  it('when a receiver is created, then missing fields are listed; a complete one gets an id and secret, and its notify_url is the default', async () => {
    const missing = await api('POST', '/receivers', { admin_first_name: 'Ana' });
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toHaveLength(14);
    const hook = await merchant();
    const created = await api('POST', '/receivers', { ...receiverFields(), notify_url: hook.url });
    expect(created.body).toEqual({ receiver_id: expect.stringMatching(/^\d+$/), secret: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const as = { receiverId: created.body.receiver_id as string, secret: created.body.secret as string };
    const payment = await api('POST', '/payments', PAYMENT, as);
    await control(`/payments/${payment.body.payment_id}/pay`);
    await until(() => hook.received.length, (n) => n > 0);
    expect(hook.received[0]!.body).toBe(`api_version=1.3&notification_token=${sandbox.state.payments.get(payment.body.payment_id)!.notification_token}`);
  });

  it('when an API path is unknown, then 404 in Khipu\'s shape', async () => {
    expect(await api('GET', '/nothing')).toEqual({ status: 404, body: { status: 404, message: expect.any(String) } });
  });
});

describe('Khipu sandbox payment page and notifications', () => {
  it('when the payer opens the payment page, then it shows subject, amount, currency, the banks (preselected) and Pagar / Cancelar, without inline code', async () => {
    const payment = await createPayment({ bank_id: 'Bmxpr', body: '<b>Pago 1 de 12</b>' });
    const response = await fetch(payment.payment_url);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).toContain('KASU Funerario · KSU-0001');
    expect(html).toContain('$1,234.50');
    expect(html).toContain('MXN');
    expect(html).toContain('&#60;b&#62;Pago 1 de 12&#60;/b&#62;');
    expect(html).toMatch(/<select id="bank" name="bank_id">.*<option value="Bawdf">DemoBank<\/option>.*<option value="Bmxpr" selected>/s);
    expect(html).toMatch(/<form method="post" action="\/payment\/[a-z0-9]{12}\/pay">/);
    expect(html).toContain('>Pagar</button>');
    expect(html).toContain('>Cancelar</button>');
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
    const css = await fetch(`${sandbox.url}/assets/khipu-sandbox.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('when the payer pays through the form, then the payment is done, the notification is the exact 1.3 form, and the browser goes to return_url', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url, notify_api_version: '1.3', return_url: 'https://partner.example/gracias?o=1' });
    const response = await submitForm(`/payment/${payment.payment_id}/pay`, { bank_id: 'Bmxpr' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('https://partner.example/gracias?o=1');
    expect(payment).toMatchObject({
      status: 'done', status_detail: 'normal', payment_method: 'simplified_transfer', bank_id: 'Bmxpr', bank: 'Banco Ficticio de México',
      conciliation_date: '2026-06-01T12:00:00Z', out_of_date_conciliation: false,
    });
    await until(() => hook.received.length, (n) => n > 0);
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(hook.received[0]!.body).toBe(`api_version=1.3&notification_token=${payment.notification_token}`);
    expect(sandbox.state.notifications).toEqual([
      expect.objectContaining({ paymentId: payment.payment_id, url: hook.url, delivery: 1, attempt: 1, status: 200, body: hook.received[0]!.body }),
    ]);
    const again = await submitForm(`/payment/${payment.payment_id}/pay`, { bank_id: 'Bawdf' });
    expect(again.status).toBe(303);
    await wait(100);
    expect(hook.received).toHaveLength(1);
    expect(payment.bank_id).toBe('Bmxpr');
  });

  it('when the merchant answers 500 twice and then 200, then the notification is delivered in three attempts and stops', async () => {
    const hook = await merchant([500, 500]);
    const payment = await createPayment({ notify_url: hook.url, notify_api_version: '1.3' });
    await submitForm(`/payment/${payment.payment_id}/pay`);
    await until(() => sandbox.state.notifications.length, (n) => n >= 3);
    await wait(RETRY_DELAYS_MS.reduce((a, b) => a + b, 0) + 50);
    expect(sandbox.state.notifications.map((a) => `${a.attempt}:${a.status}`)).toEqual(['1:500', '2:500', '3:200']);
    expect(new Set(hook.received.map((r) => r.body))).toEqual(new Set([`api_version=1.3&notification_token=${payment.notification_token}`]));
    expect(hook.received).toHaveLength(3);
  });

  it('when the merchant never answers 200, then attempts stop after the configured schedule', async () => {
    const hook = await merchant([503, 503, 503, 503, 503, 503]);
    const payment = await createPayment({ notify_url: hook.url });
    await control(`/payments/${payment.payment_id}/pay`);
    await until(() => sandbox.state.notifications.length, (n) => n >= RETRY_DELAYS_MS.length);
    await wait(150);
    expect(sandbox.state.notifications.map((a) => a.status)).toEqual([503, 503, 503, 503]);
  });

  it('when there is no return_url, then paying leads to a small "pago realizado" page', async () => {
    const payment = await createPayment();
    const response = await submitForm(`/payment/${payment.payment_id}/pay`);
    expect(response.status).toBe(303);
    const location = response.headers.get('location')!;
    expect(location).toBe(`/payment/${payment.payment_id}/receipt`);
    const receipt = await fetch(`${sandbox.url}${location}`);
    expect(receipt.status).toBe(200);
    expect(await receipt.text()).toContain('Pago realizado');
    expect(payment.receipt_url).toBe(`${sandbox.url}${location}`);
  });

  it('when the payer cancels, then the browser goes to cancel_url and the payment stays pending, not notified', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url, cancel_url: 'https://partner.example/comprar?kasu_payment=cancelled' });
    const response = await submitForm(`/payment/${payment.payment_id}/cancel`);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('https://partner.example/comprar?kasu_payment=cancelled');
    expect((await api('GET', `/payments/${payment.payment_id}`)).body.status).toBe('pending');
    await wait(100);
    expect(hook.received).toHaveLength(0);
  });

  it('when the payment has expired, then its page says so and it cannot be paid by the form or the control API', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url, expires_date: '2026-06-01T13:00:00Z' });
    now += 2 * HOUR;
    const page = await fetch(payment.payment_url);
    expect(page.status).toBe(410);
    const html = await page.text();
    expect(html).toContain('expiró');
    expect(html).not.toContain('>Pagar</button>');
    expect((await submitForm(`/payment/${payment.payment_id}/pay`)).status).toBe(410);
    expect((await control(`/payments/${payment.payment_id}/pay`)).status).toBe(409);
    expect(payment.status).toBe('pending');
    await wait(100);
    expect(hook.received).toHaveLength(0);
  });

  it('when a payment page is asked for an unknown payment, then 404', async () => {
    expect((await fetch(`${sandbox.url}/payment/zzzzzzzzzzzz`)).status).toBe(404);
    expect((await submitForm('/payment/zzzzzzzzzzzz/pay')).status).toBe(404);
  });
});

describe('Khipu sandbox control knobs', () => {
  it('when asked to deliver twice, then the merchant gets the same notification twice', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url });
    const reply = await control(`/payments/${payment.payment_id}/pay`, { deliveries: 2, bankId: 'Bawdg' });
    expect(reply).toMatchObject({ status: 200, body: { notified: true, payment: { status: 'done', bank_id: 'Bawdg' } } });
    await until(() => hook.received.length, (n) => n >= 2);
    await wait(100);
    expect(hook.received.map((r) => r.body)).toEqual(Array(2).fill(`api_version=1.3&notification_token=${payment.notification_token}`));
    expect(sandbox.state.notifications.map((a) => `${a.delivery}/${a.attempt}`)).toEqual(['1/1', '2/1']);
  });

  it('when asked to deliver late, then nothing arrives before the delay and one notification after it', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url });
    const paidAt = Date.now();
    await control(`/payments/${payment.payment_id}/pay`, { delayMs: 300 });
    await wait(150);
    expect(hook.received).toHaveLength(0);
    await until(() => hook.received.length, (n) => n > 0);
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]!.at - paidAt).toBeGreaterThanOrEqual(290);
  });

  it('when asked not to notify, then the payment is done and no notification is ever sent; notify re-delivers on demand', async () => {
    const hook = await merchant();
    const payment = await createPayment({ notify_url: hook.url });
    const reply = await control(`/payments/${payment.payment_id}/pay`, { notify: false });
    expect(reply.body).toMatchObject({ notified: false, payment: { status: 'done' } });
    await wait(150);
    expect(hook.received).toHaveLength(0);
    expect(sandbox.state.notifications).toHaveLength(0);
    expect((await control(`/payments/${payment.payment_id}/notify`, {})).body).toEqual({ notified: true });
    await until(() => hook.received.length, (n) => n > 0);
    expect(hook.received).toHaveLength(1);
  });

  it('when asked to report another amount, then GET answers that amount (tampered) while the created amount is kept', async () => {
    const payment = await createPayment();
    await control(`/payments/${payment.payment_id}/pay`, { reportAmount: '999.00', notify: false });
    expect((await api('GET', `/payments/${payment.payment_id}`)).body.amount).toBe(999);
    expect((await api('GET', '/payments', { notification_token: payment.notification_token })).body.amount).toBe(999);
    expect(payment.amount).toBe(1234.5);
    expect((await control(`/payments/${payment.payment_id}/pay`, {})).status).toBe(409);
  });

  it('when the next matching call is set to fail with 503, then exactly that call answers the ServiceError and the next one works', async () => {
    expect((await control('/fail-next', { status: 503, path: '/payments' })).status).toBe(200);
    expect((await api('GET', '/banks')).status).toBe(200);
    expect(await api('POST', '/payments', PAYMENT)).toEqual({ status: 503, body: { status: 503, message: expect.any(String) } });
    expect((await api('POST', '/payments', PAYMENT)).status).toBe(200);
    expect(sandbox.state.requests.map((r) => r.status)).toEqual([200, 503, 200]);
    expect((await control('/fail-next', { status: 'soon' })).status).toBe(400);
  });

  it('when reset, then payments, requests, notifications and pending retries are gone', async () => {
    const hook = await merchant([500, 500, 500, 500]);
    const payment = await createPayment({ notify_url: hook.url });
    await control(`/payments/${payment.payment_id}/pay`);
    await until(() => hook.received.length, (n) => n > 0);
    expect((await control('/reset')).status).toBe(200);
    expect(sandbox.state.payments.size).toBe(0);
    expect(sandbox.state.requests).toHaveLength(0);
    await wait(50); // an attempt already on the wire may still land
    const seen = hook.received.length;
    await wait(200);
    expect(hook.received.length).toBe(seen);
    expect(sandbox.state.notifications).toHaveLength(0);
  });
});

describe('Khipu sandbox mounted inside another app', () => {
  it('when mounted at /sandbox/khipu, then signatures cover the full URL and payment pages live under the mount', async () => {
    const sandboxed = createKhipuSandbox({ now: () => now });
    const app = express();
    app.use('/sandbox/khipu', sandboxed.router);
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closers.push(async () => {
      await sandboxed.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const created = await api('POST', '/payments', PAYMENT, { base: `${origin}/sandbox/khipu` });
    expect(created.status).toBe(200);
    expect(created.body.payment_url).toBe(`${origin}/sandbox/khipu/payment/${created.body.payment_id}`);
    expect(sandboxed.state.requests[0]).toMatchObject({ path: '/payments', signatureValid: true });
    const html = await (await fetch(created.body.payment_url)).text();
    expect(html).toContain('href="/sandbox/khipu/assets/khipu-sandbox.css"');
    expect(html).toContain(`action="/sandbox/khipu/payment/${created.body.payment_id}/pay"`);

    // Signed for the sandbox's root instead of the mount: not the URL that was received.
    const wrongUrl = await api('GET', '/banks', {}, {
      base: `${origin}/sandbox/khipu`,
      authorization: khipuAuthorization({ receiverId: SANDBOX_KHIPU_RECEIVER_ID, secret: SANDBOX_KHIPU_SECRET, method: 'GET', url: `${origin}/api/2.0/banks` }),
    });
    expect(wrongUrl.status).toBe(403);
  });

  it('when publicUrl is given, then payment_url uses it whatever address the API was called on', async () => {
    const other = await startKhipuSandbox({ publicUrl: 'https://tienda.example/sandbox/khipu/' });
    closers.push(other.close);
    const created = await api('POST', '/payments', PAYMENT, { base: other.url });
    expect(created.body.payment_url).toBe(`https://tienda.example/sandbox/khipu/payment/${created.body.payment_id}`);
  });
});

function receiverFields(): Record<string, string> {
  return {
    admin_first_name: 'Ana', admin_last_name: 'López', admin_email: 'ana@kasu.example', country_code: 'MX',
    business_identifier: 'KAS200101AB1', business_category: 'Seguros', business_name: 'KASU', business_phone: '5512345678',
    business_address_line_1: 'Av. Reforma 1', business_address_line_2: 'Piso 2', business_address_line_3: 'CDMX',
    contact_full_name: 'Ana López', contact_job_title: 'Directora', contact_email: 'ana@kasu.example', contact_phone: '5512345678',
  };
}
