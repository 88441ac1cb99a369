import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutResponseSchema, CreateCheckoutResponseSchema, ErrorBodySchema, QuoteResponseSchema } from '../../shared/contract.js';
import { listConsentEvents, listPayments, findOrderByCheckout } from '../../server/checkouts/checkout-store.js';
import { SANDBOX_CURPS, SANDBOX_UNKNOWN_CURP } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { ENGINES } from '../support/databases.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const CURP = 'CAMC880526HMCBNR04';
const CONTACT = { email: 'Cliente.Prueba@Example.MX', phone: '+52 55 1234 5678' };
const ADDRESS = {
  street: 'Av. Insurgentes Sur', number: '1602', neighborhood: 'Crédito Constructor',
  municipality: 'Benito Juárez', postalCode: '03940', state: 'CMX',
};

describe.each(ENGINES)('BFF API v1 on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    server = await startTestServer({ engine });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  // KASU registers a CURP once per product: each test that registers takes its own CURP from the sandbox registry.
  const funerarioCurps = SANDBOX_CURPS.filter((p) => !p.deceased && /Funerario/.test(p.note)).map((p) => p.curp);
  const nextCurp = () => {
    const curp = funerarioCurps.shift();
    if (!curp) throw new Error('the sandbox registry has no more CURPs for Funerario');
    return curp;
  };

  /** A checkout with everything filled in, ready to submit. */
  async function readyCheckout(curp = CURP, contact = CONTACT) {
    const created = await call('POST', '/v1/checkouts', { body: { curp } });
    expect(created.status).toBe(201);
    const { checkout, token } = CreateCheckoutResponseSchema.parse(created.body);
    const quoted = await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product: 'Funerario' } });
    expect(quoted.status).toBe(200);
    const { quote } = QuoteResponseSchema.parse(quoted.body);
    const patched = await call('PATCH', `/v1/checkouts/${checkout.id}`, {
      token,
      body: { planCount: quote.plans.at(-1)!.count, contact, address: ADDRESS, consents: { terms: true, privacy: true, trust: true } },
      headers: { 'user-agent': 'checkout-test/1.0' },
    });
    expect(patched.status).toBe(200);
    return { id: checkout.id, token, quote };
  }

  it('when a valid CURP starts a checkout, then it answers the birth date, age, sex and each product’s eligibility', async () => {
    const { status, body } = await call('POST', '/v1/checkouts', { body: { curp: ' camc880526hmcbnr04 ' } });
    expect(status).toBe(201);
    const { checkout, token } = CreateCheckoutResponseSchema.parse(body);
    expect(token.length).toBeGreaterThan(30);
    expect(checkout.customer).toMatchObject({ curp: CURP, birthDate: '1988-05-26', sex: 'H' });
    expect(checkout.customer.age).toBeGreaterThanOrEqual(38);
    const byProduct = Object.fromEntries(checkout.products.map((p) => [p.product, p]));
    expect(byProduct.Funerario).toMatchObject({ eligible: true });
    expect(byProduct.Universidad).toMatchObject({ eligible: false, reason: 'TOO_OLD', maxAge: 7 });
    expect(byProduct.Retiro).toMatchObject({ eligible: true });
    expect(checkout.status).toBe('open');
  });

  it('when the CURP has a wrong check digit, then 400 CURP_INVALID_CHECK_DIGIT names the field', async () => {
    const { status, body } = await call('POST', '/v1/checkouts', { body: { curp: 'CAMC880526HMCBNR05' } });
    expect(status).toBe(400);
    const { error } = ErrorBodySchema.parse(body);
    expect(error).toMatchObject({ code: 'CURP_INVALID_CHECK_DIGIT', retryable: false, fields: { curp: 'CURP_INVALID_CHECK_DIGIT' } });
    expect(error.requestId).toBeTruthy();
  });

  it('when KASU does not know the CURP (well formed, not in RENAPO), then 422 CURP_REJECTED', async () => {
    const { status, body } = await call('POST', '/v1/checkouts', { body: { curp: SANDBOX_UNKNOWN_CURP } });
    expect({ status, code: body.error?.code }).toEqual({ status: 422, code: 'CURP_REJECTED' });
  });

  it('when the body is not JSON or has no CURP, then 400 VALIDATION_FAILED in the customer’s language', async () => {
    const broken = await call('POST', '/v1/checkouts', { body: '{"curp":', headers: { 'accept-language': 'en-US' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('VALIDATION_FAILED');
    expect(broken.body.error.message).toMatch(/check/i);
    const empty = await call('POST', '/v1/checkouts', { body: {} });
    expect(empty.body.error).toMatchObject({ code: 'VALIDATION_FAILED', fields: { curp: 'REQUIRED' } });
    expect(empty.body.error.message).toMatch(/Revisa/);
  });

  it('when a call has no token or another checkout’s token, then 401 UNAUTHORIZED', async () => {
    const a = await readyCheckout();
    const other = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: CURP } })).body);
    expect((await call('GET', `/v1/checkouts/${a.id}`)).status).toBe(401);
    const wrong = await call('GET', `/v1/checkouts/${a.id}`, { token: other.token });
    expect({ status: wrong.status, code: wrong.body.error.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    expect((await call('GET', `/v1/checkouts/${a.id}`, { token: a.token })).status).toBe(200);
  });

  it('when a product is quoted, then the plans follow KASU’s price and rate in whole centavos', async () => {
    const created = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: CURP } })).body);
    const { status, body } = await call('POST', `/v1/checkouts/${created.checkout.id}/quote`, { token: created.token, body: { product: 'Funerario' } });
    expect(status).toBe(200);
    const { quote, checkout } = QuoteResponseSchema.parse(body);
    expect(quote.kasuProduct).toBe('30a49');
    expect(Number.isInteger(quote.price) && quote.price > 0).toBe(true);
    expect(quote.plans[0]).toEqual({ count: 1, instalment: quote.price, total: quote.price });
    for (const plan of quote.plans) expect(plan.total).toBe(plan.instalment * plan.count);
    expect(checkout.product).toBe('Funerario');
    const ineligible = await call('POST', `/v1/checkouts/${created.checkout.id}/quote`, { token: created.token, body: { product: 'Universidad' } });
    expect({ status: ineligible.status, code: ineligible.body.error.code }).toEqual({ status: 422, code: 'PRODUCT_NOT_ELIGIBLE' });
  });

  it('when contact and address are invalid, then each field says why and nothing is saved', async () => {
    const created = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: CURP } })).body);
    const { status, body } = await call('PATCH', `/v1/checkouts/${created.checkout.id}`, {
      token: created.token,
      body: { contact: { email: 'no-es-correo', phone: '123' }, address: { ...ADDRESS, postalCode: '3940', state: 'XX' } },
    });
    expect(status).toBe(400);
    expect(body.error.fields).toMatchObject({
      'contact.email': 'EMAIL_INVALID', 'contact.phone': 'PHONE_INVALID', 'address.postalCode': 'POSTAL_CODE_INVALID', 'address.state': 'INVALID',
    });
    const after = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${created.checkout.id}`, { token: created.token })).body);
    expect(after.checkout.contact).toBeNull();
  });

  it('when consents are given, then each is kept as evidence with document version, time, IP and user agent', async () => {
    const { id } = await readyCheckout();
    const events = await listConsentEvents(server.db, id);
    expect(events.map((e) => e.document).sort()).toEqual(['privacy', 'terms', 'trust']);
    for (const event of events) {
      expect(event).toMatchObject({ accepted: true, user_agent: 'checkout-test/1.0' });
      expect(event.ip).toMatch(/127\.0\.0\.1/);
      expect(event.version).toBeTruthy();
      expect(event.url).toMatch(/^https:\/\//);
    }
  });

  it('when the checkout is saved, then a reload gets back phone normalised to 10 digits and email lower-cased', async () => {
    const { id, token } = await readyCheckout();
    const { checkout } = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body);
    expect(checkout.contact).toEqual({ email: 'cliente.prueba@example.mx', phone: '5512345678' });
    expect(checkout.address).toEqual(ADDRESS);
    expect(checkout.consents).toEqual({ terms: true, privacy: true, trust: true });
  });

  it('when submit has no Idempotency-Key, then 400 IDEMPOTENCY_KEY_REQUIRED and nothing is registered', async () => {
    const { id, token } = await readyCheckout();
    const { status, body } = await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' } });
    expect({ status, code: body.error.code }).toEqual({ status: 400, code: 'IDEMPOTENCY_KEY_REQUIRED' });
    expect(await findOrderByCheckout(server.db, id)).toBeNull();
  });

  it('when a consent is missing, then submit answers CONSENT_REQUIRED naming it', async () => {
    const { id, token } = await readyCheckout('REAE060617MMCYLVA4', { email: 'rea@example.mx', phone: '5598765432' });
    await call('PATCH', `/v1/checkouts/${id}`, { token, body: { consents: { trust: false } } });
    const { status, body } = await call('POST', `/v1/checkouts/${id}/submit`, {
      token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'consent-missing-1' },
    });
    expect({ status, code: body.error.code, fields: body.error.fields }).toEqual({
      status: 422, code: 'CONSENT_REQUIRED', fields: { 'consents.trust': 'REQUIRED' },
    });
  });

  it('when submit is called twice with the same Idempotency-Key, then KASU registers once, with one token, and both answers carry the same policy', async () => {
    const curp = nextCurp();
    const { id, token } = await readyCheckout(curp, { email: 'dos@example.mx', phone: '5511112222' });
    const before = server.kasuSandbox!.registrations.length;
    const headers = { 'idempotency-key': 'same-key-0001' };
    const first = await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers });
    const second = await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    const a = CheckoutResponseSchema.parse(first.body).checkout;
    const b = CheckoutResponseSchema.parse(second.body).checkout;
    expect(a.status).toBe('registered');
    expect(a.order?.policy).toBeTruthy();
    expect(b.order?.policy).toBe(a.order?.policy);
    expect(a.order?.kasuStatus).toBe('PREVENTA');
    expect(server.kasuSandbox!.registrations.length - before).toBe(1);
    // One KASU token served the whole purchase: create (token_full), quote, and both submits.
    expect(server.kasu.tokenRequests(curp)).toBe(1);
    expect(server.kasuSandbox!.tokenRequests.get(curp)).toBe(1);
    const order = await findOrderByCheckout(server.db, id);
    expect(await listPayments(server.db, order!.id)).toEqual([
      expect.objectContaining({ provider: 'kasu_email', status: 'pending', instalment_number: 1, amount_centavos: a.order!.instalmentAmount }),
    ]);
  });

  it('when submits race with different keys, then KASU still registers once', async () => {
    const { id, token } = await readyCheckout(nextCurp(), { email: 'carrera@example.mx', phone: '5533334444' });
    const before = server.kasuSandbox!.registrations.length;
    const answers = await Promise.all(
      ['race-key-0001', 'race-key-0002', 'race-key-0003'].map((key) =>
        call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': key } })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.checkout.order.policy)).size).toBe(1);
    expect(server.kasuSandbox!.registrations.length - before).toBe(1);
  });

  it('when a key is reused with a different body, then 422 IDEMPOTENCY_KEY_REUSED', async () => {
    const { id, token } = await readyCheckout(nextCurp(), { email: 'reuso@example.mx', phone: '5555556666' });
    const headers = { 'idempotency-key': 'reused-key-0001' };
    await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers });
    const { status, body } = await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'card' }, headers });
    expect({ status, code: body.error.code }).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('when the email is already registered under another CURP, then CONTACT_ALREADY_REGISTERED and the customer can change it and submit', async () => {
    const first = await readyCheckout(nextCurp(), { email: 'tomado@example.mx', phone: '5512120000' });
    await call('POST', `/v1/checkouts/${first.id}/submit`, { token: first.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'taken-0001' } });
    const second = await readyCheckout(nextCurp(), { email: 'tomado@example.mx', phone: '5512120001' });
    const refused = await call('POST', `/v1/checkouts/${second.id}/submit`, {
      token: second.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'taken-0002' },
    });
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 409, code: 'CONTACT_ALREADY_REGISTERED' });
    await call('PATCH', `/v1/checkouts/${second.id}`, { token: second.token, body: { contact: { email: 'otro@example.mx', phone: '5512120001' } } });
    const ok = await call('POST', `/v1/checkouts/${second.id}/submit`, {
      token: second.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'taken-0003' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.checkout.status).toBe('registered');
  });

  it('when the checkout is registered, then it can be read but no longer changed', async () => {
    const { id, token } = await readyCheckout(nextCurp(), { email: 'cerrado@example.mx', phone: '5599990000' });
    await call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'closed-0001' } });
    const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
    expect(view.status).toBe('registered');
    expect(view.order?.reference).toMatch(/^KC-[0-9A-Z]{10}$/);
    const patch = await call('PATCH', `/v1/checkouts/${id}`, { token, body: { consents: { terms: false } } });
    expect({ status: patch.status, code: patch.body.error.code }).toEqual({ status: 409, code: 'CHECKOUT_CLOSED' });
  });

  it('when anything was logged, then no CURP, email or phone appears in clear', () => {
    const logs = server.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(CURP);
    expect(logs).not.toContain('REAE060617MMCYLVA4');
    expect(logs).not.toMatch(/tomado@example\.mx|cliente\.prueba@example\.mx/i);
    expect(logs).not.toContain('5512345678');
  });
});

describe('BFF service endpoints', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('when asked for health and readiness, then both answer 200 with the database kind', async () => {
    const call = apiClient(server.url);
    expect((await call('GET', '/healthz')).body).toEqual({ ok: true });
    expect((await call('GET', '/readyz')).body).toMatchObject({ ok: true, database: 'pglite', mode: 'sandbox' });
  });

  it('when /openapi.json is read, then it documents every v1 endpoint with its schemas', async () => {
    const { body } = await apiClient(server.url)('GET', '/openapi.json');
    expect(body.openapi).toBe('3.1.0');
    expect(Object.keys(body.paths).sort()).toEqual([
      '/v1/checkouts', '/v1/checkouts/{id}', '/v1/checkouts/{id}/card-session', '/v1/checkouts/{id}/quote',
      '/v1/checkouts/{id}/submit', '/v1/khipu/banks',
    ]);
    expect(body.paths['/v1/checkouts/{id}/submit'].post.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: true })]),
    );
    expect(body.paths['/v1/checkouts'].post.requestBody.content['application/json'].schema.properties.curp).toBeTruthy();
  });

  it('when a partner origin preflights the API, then CORS allows our headers', async () => {
    const response = await fetch(`${server.url}/v1/checkouts`, {
      method: 'OPTIONS',
      headers: { origin: 'https://partner.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'idempotency-key' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('https://partner.example');
    expect(response.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
  });

  it('when the BFF runs in sandbox mode, then every provider simulator answers under /sandbox', async () => {
    const login = await fetch(`${server.url}/sandbox/tupay/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessKey: 'sandbox@kasu.example', secretKey: 'sandbox-tupay-secret' }),
    });
    expect(login.status).toBe(200);
    expect(login.headers.get('set-cookie')).toMatch(/^BEARER_TOKEN=/);
    const banks = await apiClient(server.url)('GET', '/v1/khipu/banks');
    expect(banks.status).toBe(200);
    const kasu = await fetch(`${server.url}/sandbox/kasu`, { method: 'GET' });
    expect(kasu.status).toBe(405);
  });

  it('when an unknown API path is called, then 404 in the error envelope', async () => {
    const { status, body } = await apiClient(server.url)('GET', '/v1/nothing-here');
    expect(status).toBe(404);
    expect(ErrorBodySchema.parse(body).error.code).toBe('NOT_FOUND');
  });
});

describe('BFF when KASU cannot be reached', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { KASU_BASE_URL: 'http://127.0.0.1:9/kasu', KASU_TIMEOUT_MS: '500' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('when KASU is down, then the customer gets a retryable PROVIDER_UNAVAILABLE and no checkout is stored', async () => {
    const { status, body } = await apiClient(server.url)('POST', '/v1/checkouts', { body: { curp: CURP } });
    expect(status).toBe(503);
    expect(body.error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    const { rows } = await server.db.query<{ n: number }>('SELECT count(*)::int AS n FROM checkouts');
    expect(rows[0]!.n).toBe(0);
  });
});

describe('BFF with a payment method the merchant does not offer', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { PAYMENT_METHODS: 'email,khipu' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('when a payment method is not offered, then PAYMENT_METHOD_UNAVAILABLE, nothing is registered and the checkout stays open', async () => {
    const call = apiClient(server.url);
    const { checkout, token } = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: CURP } })).body);
    expect(checkout.paymentMethods).toContainEqual({ method: 'card', available: false });
    const quote = (await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product: 'Funerario' } })).body.quote;
    await call('PATCH', `/v1/checkouts/${checkout.id}`, {
      token, body: { planCount: quote.plans[0].count, contact: CONTACT, address: ADDRESS, consents: { terms: true, privacy: true, trust: true } },
    });
    const { status, body } = await call('POST', `/v1/checkouts/${checkout.id}/submit`, {
      token, body: { paymentMethod: 'card', recurringConsent: true, card: { token: 'tok', last4: '4242', brand: 'visa', expiry: '12/30' } },
      headers: { 'idempotency-key': 'card-key-0001' },
    });
    expect({ status, code: body.error.code }).toEqual({ status: 422, code: 'PAYMENT_METHOD_UNAVAILABLE' });
    expect(server.kasuSandbox!.registrations).toHaveLength(0);
    const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${checkout.id}`, { token })).body).checkout;
    expect(view.status).toBe('open');
  });
});
