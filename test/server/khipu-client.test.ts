import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { failure } from '../support/provider-errors.js';
import { sendJson, startStubServer, type StubRequest } from '../support/stub-server.js';
import { createMemoryLogger } from '../../server/log.js';
import { KhipuClient, type KhipuConfig } from '../../server/providers/khipu/khipu-client.js';
import { khipuAuthorization } from '../../server/providers/khipu/signature.js';
import {
  SANDBOX_KHIPU_RECEIVER_ID,
  SANDBOX_KHIPU_SECRET,
  startKhipuSandbox,
} from '../../server/sandbox/khipu/khipu-sandbox.js';

/** 1 June 2026, noon UTC. */
const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const HOUR = 3_600_000;

let sandbox: Awaited<ReturnType<typeof startKhipuSandbox>>;
let now = BASE_NOW;
const clients: KhipuClient[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startKhipuSandbox({ now: () => now, notificationRetryDelaysMs: [0] });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  now = BASE_NOW;
  sandbox.state.reset();
});
afterEach(async () => {
  await Promise.all([...clients.splice(0).map((client) => client.close()), ...closers.splice(0).map((close) => close())]);
});

function config(overrides: Partial<KhipuConfig> = {}): KhipuConfig {
  return {
    baseUrl: `${sandbox.url}/api/2.0`,
    receiverId: SANDBOX_KHIPU_RECEIVER_ID,
    secret: SANDBOX_KHIPU_SECRET,
    timeouts: { connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000 },
    userAgent: 'kasu-checkout-test/0.1',
    ...overrides,
  };
}

function makeClient(overrides: Partial<KhipuConfig> = {}, logger = createMemoryLogger()): KhipuClient {
  const client = new KhipuClient(config(overrides), { logger });
  clients.push(client);
  return client;
}


const ORDER = {
  subject: 'KASU Funerario · KSU-0001',
  currency: 'MXN',
  amount: 123_450,
  transactionId: 'KSU-0001',
};

function control(path: string, body: unknown = {}): Promise<Response> {
  return fetch(`${sandbox.url}/_control${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

type Captured = StubRequest;

/** A tiny HTTP server standing in for Khipu when the sandbox cannot misbehave the way a test needs. */
async function stub(handle: (req: Captured, res: ServerResponse) => void): Promise<{ url: string; requests: Captured[] }> {
  const server = await startStubServer(handle);
  closers.push(server.close);
  return server;
}

const json = sendJson;

const KHIPU_PAYMENT = {
  payment_id: 'gqzdy6chjne9',
  payment_url: 'https://khipu.com/payment/info/gqzdy6chjne9',
  simplified_transfer_url: 'https://app.khipu.com/payment/simplified/gqzdy6chjne9',
  transfer_url: '',
  webpay_url: null,
  app_url: 'khipu:///pos/gqzdy6chjne9',
  ready_for_terminal: false,
  notification_token: 'a'.repeat(64),
  receiver_id: 100000,
  conciliation_date: '2026-06-01T12:30:00Z',
  subject: 'KASU',
  amount: 1234.5,
  currency: 'MXN',
  status: 'done',
  status_detail: 'normal',
  body: '',
  picture_url: '',
  receipt_url: 'https://khipu.com/receipt/x',
  return_url: '',
  cancel_url: '',
  notify_url: 'https://bff.example/webhooks/khipu',
  notify_api_version: '1.3',
  expires_date: '2026-06-02T12:00:00Z',
  attachment_urls: [],
  bank: 'DemoBank',
  bank_id: 'Bawdf',
  payer_name: 'Nombre',
  payer_email: 'nombre@example.mx',
  personal_identifier: '',
  bank_account_number: '',
  out_of_date_conciliation: false,
  transaction_id: 'KSU-0001',
  custom: '',
  responsible_user_email: '',
  send_reminders: false,
  send_email: false,
  payment_method: 'simplified_transfer',
  funds_source: '',
};

describe('KhipuClient against the Khipu sandbox', () => {
  it('when banks are listed, then each bank comes back in our terms with its minimum in centavos', async () => {
    const banks = await makeClient().banks();
    expect(banks[0]).toEqual({
      bankId: 'Bawdf', name: 'DemoBank', message: expect.any(String), minAmount: 1_000, type: 'Persona', parent: '',
    });
    expect(banks.find((bank) => bank.bankId === 'Bawdg')?.parent).toBe('Bawdf');
  });

  it('when a payment is created with every option, then Khipu receives the document\'s fields as exact strings', async () => {
    const client = makeClient();
    const created = await client.createPayment({
      ...ORDER,
      body: 'Pago 1 de 12 (¡primer pago!)',
      bankId: 'Bawdf',
      returnUrl: 'https://partner.example/comprar?plan=funerario&x=1',
      cancelUrl: 'https://partner.example/comprar?kasu_payment=cancelled',
      notifyUrl: 'https://bff.example/webhooks/khipu',
      notifyApiVersion: '1.3',
      expiresDate: new Date(BASE_NOW + 24 * HOUR + 123),
      payerName: 'José Peña',
      payerEmail: 'jose@example.mx',
      sendEmail: true,
      custom: 'pay_abc+def',
    });
    expect(created.paymentId).toMatch(/^[a-z0-9]{12}$/);
    expect(created).toEqual({
      paymentId: created.paymentId,
      paymentUrl: `${sandbox.url}/payment/${created.paymentId}`,
      simplifiedTransferUrl: expect.stringContaining(created.paymentId),
      transferUrl: expect.stringContaining(created.paymentId),
      appUrl: `khipu:///pos/${created.paymentId}`,
      readyForTerminal: true,
    });
    const stored = sandbox.state.payments.get(created.paymentId)!;
    expect(Object.fromEntries(stored.sandbox.params)).toEqual({
      subject: 'KASU Funerario · KSU-0001',
      currency: 'MXN',
      amount: '1234.50',
      transaction_id: 'KSU-0001',
      body: 'Pago 1 de 12 (¡primer pago!)',
      bank_id: 'Bawdf',
      return_url: 'https://partner.example/comprar?plan=funerario&x=1',
      cancel_url: 'https://partner.example/comprar?kasu_payment=cancelled',
      notify_url: 'https://bff.example/webhooks/khipu',
      notify_api_version: '1.3',
      expires_date: '2026-06-02T12:00:00Z',
      payer_name: 'José Peña',
      payer_email: 'jose@example.mx',
      send_email: 'true',
      custom: 'pay_abc+def',
    });
  });

  it('when a payment is read back by id, then every field is mapped, the receiver id is a string and empty fields are null', async () => {
    const client = makeClient();
    const { paymentId } = await client.createPayment({ ...ORDER, notifyUrl: 'https://bff.example/webhooks/khipu', notifyApiVersion: '1.3' });
    const payment = await client.getPayment(paymentId);
    expect(payment).toMatchObject({
      paymentId,
      receiverId: '100000',
      subject: ORDER.subject,
      amount: 123_450,
      currency: 'MXN',
      status: 'pending',
      statusDetail: 'pending',
      transactionId: 'KSU-0001',
      notifyUrl: 'https://bff.example/webhooks/khipu',
      notifyApiVersion: '1.3',
      conciliationDate: null,
      bank: null,
      body: null,
      readyForTerminal: false,
    });
    expect(payment.notificationToken).toMatch(/^[A-Za-z0-9]{64}$/);
  });

  it('when a paid payment is looked up by its notification token, then it is done with the bank, method and conciliation date', async () => {
    const client = makeClient();
    const { paymentId } = await client.createPayment(ORDER);
    const token = sandbox.state.payments.get(paymentId)!.notification_token;
    expect((await control(`/payments/${paymentId}/pay`, { bankId: 'Bmxpr', notify: false })).status).toBe(200);
    const payment = await client.getPaymentByNotificationToken(token);
    expect(payment).toMatchObject({
      paymentId, status: 'done', statusDetail: 'normal', bankId: 'Bmxpr', bank: 'Banco Ficticio de México',
      paymentMethod: 'simplified_transfer', fundsSource: null, conciliationDate: '2026-06-01T12:00:00Z', amount: 123_450,
    });
  });

  it('when the notification token is unknown, then NOT_FOUND so that the caller can reject a forged notification', async () => {
    const error = await failure(makeClient().getPaymentByNotificationToken('f'.repeat(64)));
    expect(error).toMatchObject({ code: 'NOT_FOUND', upstreamStatus: 400, retryable: false, message: 'NOT_FOUND' });
    expect(error.detail).toMatchObject({ operation: 'getPaymentByNotificationToken', errors: [{ field: 'notification_token' }] });
  });

  it('when a payment id is unknown (or another receiver\'s), then get, delete, confirm and refund fail with NOT_FOUND', async () => {
    const client = makeClient();
    for (const call of [
      client.getPayment('zzzzzzzzzzzz'),
      client.deletePayment('zzzzzzzzzzzz'),
      client.confirmPayment('zzzzzzzzzzzz'),
      client.refund('zzzzzzzzzzzz', 100),
    ]) {
      await expect(failure(call)).resolves.toMatchObject({ code: 'NOT_FOUND', upstreamStatus: 400 });
    }
  });

  it('when a pending payment is deleted, then it is gone; when a paid one is, then Khipu refuses (PROVIDER_CONFIG_ERROR)', async () => {
    const client = makeClient();
    const pending = await client.createPayment(ORDER);
    await client.deletePayment(pending.paymentId);
    expect(sandbox.state.payments.has(pending.paymentId)).toBe(false);
    await expect(failure(client.getPayment(pending.paymentId))).resolves.toMatchObject({ code: 'NOT_FOUND' });

    const paid = await client.createPayment(ORDER);
    await control(`/payments/${paid.paymentId}/pay`, { notify: false });
    const error = await failure(client.deletePayment(paid.paymentId));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 400 });
    expect(error.detail).toMatchObject({ errors: [{ field: 'status' }] });
  });

  it('when a paid payment is refunded in part and then in full, then both succeed, it ends reversed and more is refused', async () => {
    const client = makeClient();
    const { paymentId } = await client.createPayment(ORDER);
    await control(`/payments/${paymentId}/pay`, { notify: false });
    await expect(client.refund(paymentId, 23_450)).resolves.toEqual({ message: expect.any(String) });
    expect((await client.getPayment(paymentId)).statusDetail).toBe('normal');
    await client.refund(paymentId);
    expect(sandbox.state.payments.get(paymentId)!.sandbox.refunds.map((r) => r.amount)).toEqual([234.5, 1000]);
    expect((await client.getPayment(paymentId)).statusDetail).toBe('reversed');
    const error = await failure(client.refund(paymentId, 1));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 400 });
    expect(error.detail).toMatchObject({ errors: [{ field: 'amount' }] });
  });

  it('when a paid payment is confirmed, then Khipu accepts; a pending one is refused', async () => {
    const client = makeClient();
    const { paymentId } = await client.createPayment(ORDER);
    await expect(failure(client.confirmPayment(paymentId))).resolves.toMatchObject({ code: 'PROVIDER_CONFIG_ERROR' });
    await control(`/payments/${paymentId}/pay`, { notify: false });
    await client.confirmPayment(paymentId);
    expect(sandbox.state.payments.get(paymentId)!.sandbox.confirmedAt).toBe(new Date(BASE_NOW).toISOString());
  });

  it('when payment methods are listed for a receiver, then the camelCase list comes back with logo URLs', async () => {
    const methods = await makeClient().paymentMethods(SANDBOX_KHIPU_RECEIVER_ID);
    expect(methods.map((method) => method.id)).toEqual(['simplified_transfer', 'regular_transfer']);
    expect(methods[0]!.logoUrl).toMatch(/^http:\/\/.+\.svg$/);
  });

  it('when a receiver is created, then its id and secret come back and that secret signs its own calls', async () => {
    const fields = {
      admin_first_name: 'Ana', admin_last_name: 'López', admin_email: 'ana@kasu.example', country_code: 'MX',
      business_identifier: 'KAS200101AB1', business_category: 'Seguros', business_name: 'KASU Servicios a Futuro',
      business_phone: '5512345678', business_address_line_1: 'Av. Reforma 1', business_address_line_2: 'Piso 2',
      business_address_line_3: 'CDMX', contact_full_name: 'Ana López', contact_job_title: 'Directora',
      contact_email: 'ana@kasu.example', contact_phone: '5512345678',
    };
    const created = await makeClient().createReceiver(fields);
    expect(created.receiverId).toMatch(/^\d+$/);
    expect(created.secret).toMatch(/^[0-9a-f]{40}$/);
    await expect(makeClient({ receiverId: created.receiverId, secret: created.secret }).banks()).resolves.not.toHaveLength(0);
    const incomplete = await failure(makeClient().createReceiver({ ...fields, contact_phone: '' }));
    expect(incomplete).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 400 });
  });

  it('when the adapter has called every endpoint, then every request passed the sandbox\'s signature check', async () => {
    const client = makeClient();
    await client.banks();
    await client.paymentMethods(SANDBOX_KHIPU_RECEIVER_ID);
    const first = await client.createPayment({ ...ORDER, subject: "¡Ñandú's (test) *ok* ~ + & = /" });
    const second = await client.createPayment({ ...ORDER, expiresDate: new Date(BASE_NOW + HOUR) });
    await client.getPayment(first.paymentId);
    await client.getPaymentByNotificationToken(sandbox.state.payments.get(first.paymentId)!.notification_token);
    await client.deletePayment(second.paymentId);
    await control(`/payments/${first.paymentId}/pay`, { notify: false });
    await client.refund(first.paymentId, 100);
    await client.refund(first.paymentId);
    await client.confirmPayment(first.paymentId);
    await failure(client.createReceiver({ admin_first_name: 'x' }));

    const requests = sandbox.state.requests;
    expect(requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET /banks 200',
      `GET /merchants/${SANDBOX_KHIPU_RECEIVER_ID}/paymentMethods 200`,
      'POST /payments 200',
      'POST /payments 200',
      `GET /payments/${first.paymentId} 200`,
      'GET /payments 200',
      `DELETE /payments/${second.paymentId} 200`,
      `POST /payments/${first.paymentId}/refunds 200`,
      `POST /payments/${first.paymentId}/refunds 200`,
      `POST /payments/${first.paymentId}/confirm 200`,
      'POST /receivers 400',
    ]);
    expect(requests.every((r) => r.signatureValid && r.receiverId === SANDBOX_KHIPU_RECEIVER_ID)).toBe(true);
  });

  it('when the secret is wrong (Khipu 403), then PROVIDER_CONFIG_ERROR, not retryable, and the sandbox saw a bad signature', async () => {
    const error = await failure(makeClient({ secret: 'not-the-secret' }).banks());
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 403, retryable: false });
    expect(sandbox.state.requests.at(-1)).toMatchObject({ signatureValid: false, status: 403 });
    await expect(failure(makeClient({ receiverId: '999' }).banks())).resolves.toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 403 });
  });

  it('when Khipu refuses the data (400 ValidationError), then PROVIDER_CONFIG_ERROR with Khipu\'s fields only in detail', async () => {
    const error = await failure(makeClient().createPayment({ ...ORDER, subject: '   ', currency: 'pesos', amount: 0 }));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 400, retryable: false, message: 'PROVIDER_CONFIG_ERROR' });
    expect(error.fields).toBeUndefined();
    expect((error.detail?.errors as Array<{ field: string }>).map((e) => e.field).sort()).toEqual(['amount', 'currency', 'subject']);
    expect(error.detail).toMatchObject({ operation: 'createPayment', providerMessage: 'Datos inválidos' });
    expect(String(error)).not.toContain('Datos inválidos');
  });

  it('when Khipu answers 503 (ServiceError), then PROVIDER_UNAVAILABLE, retryable, and a create is flagged as an unknown outcome', async () => {
    expect((await control('/fail-next', { status: 503, path: '/payments', method: 'POST' })).status).toBe(200);
    const client = makeClient();
    const error = await failure(client.createPayment(ORDER));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', upstreamStatus: 503, retryable: true });
    expect(error.detail).toMatchObject({ operation: 'createPayment', outcomeUnknown: true, providerMessage: expect.any(String) });
    await expect(client.createPayment(ORDER)).resolves.toMatchObject({ paymentId: expect.any(String) });

    await control('/fail-next', { status: 503 });
    await expect(failure(client.banks())).resolves.toMatchObject({ code: 'PROVIDER_UNAVAILABLE', upstreamStatus: 503 });
  });
});

describe('KhipuClient on a broken network or a broken Khipu', () => {
  it('when Khipu never answers, then PROVIDER_UNAVAILABLE as soon as the headers timeout passes', async () => {
    const silent = await stub(() => undefined);
    const client = makeClient({ baseUrl: silent.url, timeouts: { connectMs: 200, headersMs: 200, bodyMs: 200 } });
    const started = performance.now();
    const error = await failure(client.getPayment('gqzdy6chjne9'));
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    expect(error.detail).toMatchObject({ reason: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('when Khipu stops in the middle of a body, then PROVIDER_UNAVAILABLE after the body timeout, an unknown outcome for a create', async () => {
    const stalling = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"payment_id":');
    });
    const client = makeClient({ baseUrl: stalling.url, timeouts: { connectMs: 200, headersMs: 200, bodyMs: 200 } });
    const error = await failure(client.createPayment(ORDER));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(error.detail).toMatchObject({ reason: 'UND_ERR_BODY_TIMEOUT', outcomeUnknown: true });
  });

  it('when nothing listens at Khipu\'s address, then PROVIDER_UNAVAILABLE and a create is known not to have happened', async () => {
    const gone = await stub((_req, res) => json(res, 200, {}));
    await closers.pop()?.();
    const error = await failure(makeClient({ baseUrl: gone.url }).createPayment(ORDER));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(error.detail).toMatchObject({ reason: 'ECONNREFUSED', outcomeUnknown: false });
  });

  it('when Khipu answers garbage (not JSON, wrong shape, a fraction of a centavo, an unknown status, a 502 page), then PROVIDER_UNAVAILABLE', async () => {
    const answers: Array<(res: ServerResponse) => void> = [
      (res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>Mantenimiento</html>');
      },
      (res) => json(res, 200, { ...KHIPU_PAYMENT, payment_id: undefined }),
      (res) => json(res, 200, { ...KHIPU_PAYMENT, amount: 1234.505 }),
      (res) => json(res, 200, { ...KHIPU_PAYMENT, status: 'paid' }),
      (res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>Bad gateway</html>');
      },
    ];
    const khipu = await stub((_req, res) => answers.shift()?.(res));
    const client = makeClient({ baseUrl: khipu.url });
    for (let i = 0; i < 5; i++) {
      const error = await failure(client.getPayment('gqzdy6chjne9'));
      expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    }
  });

  it('when Khipu redirects or answers 404 (a wrong base URL), then PROVIDER_CONFIG_ERROR', async () => {
    const answers: Array<(res: ServerResponse) => void> = [
      (res) => {
        res.writeHead(301, { location: 'https://khipu.com/api/2.0/banks' });
        res.end();
      },
      (res) => json(res, 404, { status: 404, message: 'Not found' }),
    ];
    const khipu = await stub((_req, res) => answers.shift()?.(res));
    const client = makeClient({ baseUrl: khipu.url });
    await expect(failure(client.banks())).resolves.toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 301 });
    await expect(failure(client.banks())).resolves.toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 404 });
  });

  it('when a 400 on the token lookup names no field, then NOT_FOUND; when it names another field, then PROVIDER_CONFIG_ERROR', async () => {
    const answers = [{ status: 400, message: 'Datos inválidos' }, { status: 400, message: 'Datos inválidos', errors: [{ field: 'receiver_id', message: 'x' }] }];
    const khipu = await stub((_req, res) => json(res, 400, answers.shift()));
    const client = makeClient({ baseUrl: khipu.url });
    await expect(failure(client.getPaymentByNotificationToken('t'))).resolves.toMatchObject({ code: 'NOT_FOUND' });
    await expect(failure(client.getPaymentByNotificationToken('t'))).resolves.toMatchObject({ code: 'PROVIDER_CONFIG_ERROR' });
  });

  it('when Khipu sends amounts and the receiver id as strings and "" for absent fields, then they are understood', async () => {
    const khipu = await stub((req, res) => {
      if (req.url.startsWith('/banks')) {
        json(res, 200, { banks: [{ bank_id: 'Bawdf', name: 'DemoBank', message: null, min_amount: '200.0', type: 'Persona', parent: null }] });
      } else {
        json(res, 200, { ...KHIPU_PAYMENT, amount: '1234.5000', receiver_id: '100000', ready_for_terminal: null });
      }
    });
    const client = makeClient({ baseUrl: khipu.url });
    await expect(client.banks()).resolves.toEqual([{ bankId: 'Bawdf', name: 'DemoBank', message: '', minAmount: 20_000, type: 'Persona', parent: '' }]);
    const payment = await client.getPayment('gqzdy6chjne9');
    expect(payment).toMatchObject({
      amount: 123_450, receiverId: '100000', readyForTerminal: false, transferUrl: null, body: null, custom: null, fundsSource: null,
      outOfDateConciliation: false, statusDetail: 'normal',
    });
  });
});

describe('KhipuClient requests', () => {
  it('when it sends a POST, a GET with a query and a DELETE, then each is form-encoded where documented and signed over what was sent', async () => {
    const khipu = await stub((req, res) => {
      if (req.method === 'POST' && req.url === '/payments') json(res, 200, { payment_id: 'gqzdy6chjne9', payment_url: 'https://k/p' });
      else if (req.method === 'DELETE') json(res, 200, { message: 'Pago borrado' });
      else json(res, 200, KHIPU_PAYMENT);
    });
    const client = makeClient({ baseUrl: `${khipu.url}/` });
    await client.createPayment({ ...ORDER, subject: "Pago (1/12) ¡ya! ~ 'KASU'", expiresDate: new Date('2026-06-02T12:00:00.999Z'), sendEmail: false });
    await client.getPaymentByNotificationToken('tok en+/=');
    await client.deletePayment('gqzdy6chjne9');

    const [post, get, del] = khipu.requests as [Captured, Captured, Captured];
    expect(post.url).toBe('/payments');
    expect(post.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(post.headers.accept).toBe('application/json');
    expect(post.headers['user-agent']).toBe('kasu-checkout-test/0.1');
    expect(post.body).toBe(
      'subject=Pago%20%281%2F12%29%20%C2%A1ya%21%20~%20%27KASU%27&currency=MXN&amount=1234.50&transaction_id=KSU-0001' +
        '&expires_date=2026-06-02T12%3A00%3A00Z&send_email=false',
    );
    expect(get).toMatchObject({ method: 'GET', url: '/payments?notification_token=tok%20en%2B%2F%3D', body: '' });
    expect(get.headers['content-type']).toBeUndefined();
    expect(del).toMatchObject({ method: 'DELETE', url: '/payments/gqzdy6chjne9', body: '' });

    const sign = (method: string, url: string, params: Array<[string, string]>) =>
      khipuAuthorization({ receiverId: SANDBOX_KHIPU_RECEIVER_ID, secret: SANDBOX_KHIPU_SECRET, method, url: `${khipu.url}${url}`, params });
    expect(post.headers.authorization).toBe(sign('POST', post.url, [...new URLSearchParams(post.body)]));
    expect(get.headers.authorization).toBe(sign('GET', get.url, []));
    expect(del.headers.authorization).toBe(sign('DELETE', del.url, []));
  });

  it('when calls succeed and fail, then neither the secret, the Authorization header nor a token reaches a log line or an error', async () => {
    const secret = 'sup3r-s3cret-value';
    const khipu = await stub((req, res) => json(res, req.url.startsWith('/payments?') ? 400 : 503, { status: 400, message: 'Datos inválidos' }));
    const logger = createMemoryLogger();
    const client = makeClient({ baseUrl: khipu.url, secret }, logger);
    const token = 'T0KEN'.repeat(12);
    const errors = [await failure(client.getPaymentByNotificationToken(token)), await failure(client.createPayment(ORDER))];
    const authorization = khipu.requests[0]!.headers.authorization!;
    for (const error of errors) {
      const text = `${error.message} ${String(error)} ${error.stack ?? ''} ${JSON.stringify(error.detail)}`;
      expect(text).not.toContain(secret);
      expect(text).not.toContain(authorization.split(':')[1]);
      expect(text).not.toContain(token);
      expect(error.message).toBe(error.code);
    }
    const log = logger.lines.join('\n');
    expect(logger.lines.length).toBeGreaterThanOrEqual(2);
    expect(log).not.toContain(secret);
    expect(log).not.toContain(authorization.split(':')[1]);
    expect(log).not.toContain(token);
  });
});
