import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cardAuthHeaders } from '../../server/providers/card/card-auth.js';
import {
  SANDBOX_CARD_KEY,
  SANDBOX_CARD_MERCHANT_ID,
  SANDBOX_CARD_TEST_CARDS,
  startCardSandbox,
} from '../../server/sandbox/card/card-sandbox.js';

/** 1 June 2026, noon UTC. */
const NOW = Date.UTC(2026, 5, 1, 12);
const PARENT = 'http://127.0.0.1:5999';
const MERCHANT = SANDBOX_CARD_MERCHANT_ID;

let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;

beforeAll(async () => {
  sandbox = await startCardSandbox({ now: () => NOW, cardLatencyMs: { '4111111111111111': 250 } });
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.state.reset());

/** A signed API call, as the adapter makes it. */
async function call(method: 'GET' | 'POST', path: string, body?: unknown, key = SANDBOX_CARD_KEY): Promise<{ status: number; body: any }> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const contentType = body === undefined ? '' : 'application/json';
  const headers: Record<string, string> = { ...cardAuthHeaders(key, { method, contentType, body: text }, {}, Math.floor(NOW / 1000)) };
  if (contentType) headers['content-type'] = contentType;
  const response = await fetch(`${sandbox.url}/api/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: text }) });
  return { status: response.status, body: await response.json() };
}

function createUser(customerId = 'C1') {
  return call('POST', '/create-user', {
    merchantId: MERCHANT, customerId, contractNumber: 'K-1',
    contactInfo: { email: 'a@example.mx', phoneNumber: '5512345678', address: 'Calle 1', zipCode: '06600' },
  });
}

function tokenizeRequest(card: Record<string, string>, customerId = 'C1', contentType = 'application/json'): Promise<Response> {
  const fields = { merchantId: MERCHANT, customerId, number: SANDBOX_CARD_TEST_CARDS.approved, expiry: '12/30', cvv: '123', name: 'Ana López', ...card };
  return fetch(`${sandbox.url}/tokenizer/tokens`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: contentType === 'application/json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
  });
}

async function tokenize(number: string, customerId = 'C1'): Promise<string> {
  const response = await tokenizeRequest({ number }, customerId);
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

function sale(token: string, merchantOrderId: string, overrides: Record<string, unknown> = {}) {
  return {
    transactionType: 'sale', merchantId: MERCHANT, customerId: 'C1',
    order: { merchantOrderId, amount: '10.00', currency: 'MXN' }, card: { token }, ...overrides,
  };
}

describe('card sandbox API', () => {
  it('when a request has no authentication headers, then it is 401 in the gateway error shape', async () => {
    const response = await fetch(`${sandbox.url}/api/v1/create-user`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ merchantId: MERCHANT }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ isSuccess: false, errors: [{ key: 'UnauthorizedAccessException', value: [expect.stringContaining('missing-headers')] }] });
  });

  it('when signed with a wrong key or for an unknown merchant, then it is 401', async () => {
    expect((await createUser()).status).toBe(200);
    expect((await call('GET', `/Card/get-cards?MerchantId=${MERCHANT}&CustomerId=C1`, undefined, 'nope')).status).toBe(401);
    expect((await call('GET', '/Card/get-cards?MerchantId=other&CustomerId=C1')).status).toBe(401);
  });

  it('when a user is created twice, then the second answers 400 InvalidOperationException "User already exists"', async () => {
    expect(await createUser()).toEqual({ status: 200, body: { isSuccess: true } });
    expect(await createUser()).toEqual({ status: 400, body: { isSuccess: false, errors: [{ key: 'InvalidOperationException', value: ['User already exists'] }] } });
  });

  it('when charging an unknown user, then it answers the document 404 "User does not exist: <merchant> <customer>"', async () => {
    const answer = await call('POST', '/make-payment-token', { ...sale('t', 'O-1'), customerId: 'IdUser' });
    expect(answer).toEqual({
      status: 404,
      body: { isSuccess: false, errors: [{ key: 'ResourceNotFoundException', value: [`User does not exist: ${MERCHANT} IdUser`] }] },
    });
  });

  it('when an approving token is charged, then the answer has the document shape and the ledger records it', async () => {
    await createUser();
    const token = await tokenize(SANDBOX_CARD_TEST_CARDS.approved);
    const answer = await call('POST', '/make-payment-token', sale(token, 'O-1'));
    expect(answer).toEqual({
      status: 200,
      body: {
        payload: {
          responseCode: '00', responseDescription: 'Aprobada', authorizationNumber: expect.stringMatching(/^\d{6}$/),
          referenceNumber: expect.any(String), status: 'approved', order: { id: expect.any(String), amount: '10.00', currency: 'MXN' },
        },
        isSuccess: true,
      },
    });
    expect(sandbox.state.ledger).toEqual([
      {
        merchantId: MERCHANT, merchantOrderId: 'O-1', customerId: 'C1', amount: '10.00', currency: 'MXN', token,
        outcome: 'approved', responseCode: '00', orderId: answer.body.payload.order.id, answered: true, at: new Date(NOW).toISOString(),
      },
    ]);
  });

  it('when three orders are charged and one is repeated, then the ledger counts three and the repeat is 400 DuplicateMerchantOrderId', async () => {
    await createUser();
    const good = await tokenize(SANDBOX_CARD_TEST_CARDS.approved);
    const poor = await tokenize(SANDBOX_CARD_TEST_CARDS.insufficientFunds);
    expect((await call('POST', '/make-payment-token', sale(good, 'O-1'))).status).toBe(200);
    expect((await call('POST', '/make-payment-token', sale(poor, 'O-2'))).body).toMatchObject({ isSuccess: false, payload: { status: 'rejected', responseCode: '51' } });
    expect((await call('POST', '/make-payment-token', sale(good, 'O-3'))).status).toBe(200);
    const repeat = await call('POST', '/make-payment-token', sale(good, 'O-2'));
    expect(repeat).toMatchObject({ status: 400, body: { isSuccess: false, errors: [{ key: 'DuplicateMerchantOrderId' }] } });
    expect(sandbox.state.ledger.map((entry) => [entry.merchantOrderId, entry.outcome])).toEqual([
      ['O-1', 'approved'], ['O-2', 'rejected'], ['O-3', 'approved'],
    ]);
  });

  it('when the body breaks the document (not a sale, another currency, a float amount), then it is 400 ValidationException', async () => {
    await createUser();
    const token = await tokenize(SANDBOX_CARD_TEST_CARDS.approved);
    for (const body of [
      sale(token, 'O-1', { transactionType: 'refund' }),
      sale(token, 'O-1', { order: { merchantOrderId: 'O-1', amount: '10.00', currency: 'USD' } }),
      sale(token, 'O-1', { order: { merchantOrderId: 'O-1', amount: 10.5, currency: 'MXN' } }),
      sale(token, 'O-1', { order: { merchantOrderId: 'O-1', amount: '10.001', currency: 'MXN' } }),
    ]) {
      expect(await call('POST', '/make-payment-token', body)).toMatchObject({ status: 400, body: { errors: [{ key: 'ValidationException' }] } });
    }
    expect(sandbox.state.ledger).toHaveLength(0);
  });

  it("when another customer's token is charged, then it is 404 and nothing is charged", async () => {
    await createUser('C1');
    await createUser('C2');
    const token = await tokenize(SANDBOX_CARD_TEST_CARDS.approved, 'C2');
    expect((await call('POST', '/make-payment-token', sale(token, 'O-1'))).status).toBe(404);
    expect(sandbox.state.ledger).toHaveLength(0);
  });

  it('when latency is set globally or for a card, then answers wait that long', async () => {
    await createUser();
    const slow = await tokenize('4111 1111 1111 1111');
    let started = performance.now();
    expect((await call('POST', '/make-payment-token', sale(slow, 'O-1'))).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    sandbox.state.latencyMs = 200;
    started = performance.now();
    await call('GET', `/Card/get-cards?MerchantId=${MERCHANT}&CustomerId=C1`);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe('card sandbox tokenizer', () => {
  it('when the page is requested for an allowed origin, then it is framed only by that origin and has no inline script or style', async () => {
    await createUser();
    const response = await fetch(`${sandbox.url}/tokenizer?merchantId=${MERCHANT}&customerId=C1&origin=${encodeURIComponent(PARENT)}`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`frame-ancestors ${PARENT}`);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
    expect(html).toContain('src="/tokenizer/tokenizer.js"');
    expect(html).toMatch(/<label for="number">/);
    const script = await fetch(`${sandbox.url}/tokenizer/tokenizer.js`);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    const source = await script.text();
    expect(source).toContain("type: 'kasu-card-token'");
    expect(source).not.toContain("'*'");
    expect((await fetch(`${sandbox.url}/tokenizer/tokenizer.css`)).headers.get('content-type')).toMatch(/text\/css/);
  });

  it('when the origin is not an origin or not allowed, then the page refuses to be framed at all', async () => {
    await createUser();
    const strict = await startCardSandbox({ allowedParentOrigins: ['https://shop.example'] });
    try {
      for (const [url, status] of [
        [`${sandbox.url}/tokenizer?merchantId=${MERCHANT}&customerId=C1&origin=${encodeURIComponent(`${PARENT}/page`)}`, 400],
        [`${sandbox.url}/tokenizer?merchantId=${MERCHANT}&customerId=C1&origin=*`, 400],
        [`${strict.url}/tokenizer?merchantId=${MERCHANT}&customerId=C1&origin=${encodeURIComponent(PARENT)}`, 400],
      ] as const) {
        const response = await fetch(url);
        expect(response.status).toBe(status);
        expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      }
    } finally {
      await strict.close();
    }
  });

  it('when the customer does not exist, then the page says so', async () => {
    const response = await fetch(`${sandbox.url}/tokenizer?merchantId=${MERCHANT}&customerId=nobody&origin=${encodeURIComponent(PARENT)}`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('role="alert"');
  });

  it('when the card number fails Luhn, the expiry is past or malformed, or the CVV is short, then the POST names each field', async () => {
    await createUser();
    const luhn = await tokenizeRequest({ number: '4242 4242 4242 4241' });
    expect(luhn.status).toBe(400);
    expect(((await luhn.json()) as any).errors).toEqual({ number: expect.any(String) });
    const past = await tokenizeRequest({ expiry: '05/26' });
    expect(((await past.json()) as any).errors).toEqual({ expiry: 'La tarjeta está vencida.' });
    const bad = await tokenizeRequest({ expiry: '13/30', cvv: '12', name: ' ' });
    expect(Object.keys(((await bad.json()) as any).errors).sort()).toEqual(['cvv', 'expiry', 'name']);
    expect(sandbox.state.cards.size).toBe(0);
  });

  it('when a good card is posted (spaces allowed, this month still valid), then a token comes back without the number, bound to the customer', async () => {
    await createUser();
    const response = await tokenizeRequest({ number: '4242 4242 4242 4242', expiry: '06/26' });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, string>;
    expect(body).toEqual({ token: expect.any(String), last4: '4242', brand: 'visa', expiry: '06/26' });
    expect(sandbox.state.cards.get(body.token!)).toMatchObject({ merchantId: MERCHANT, customerId: 'C1', bin: '424242', behaviour: 'approve' });
    expect(JSON.stringify([...sandbox.state.cards.values()])).not.toContain('4242424242424242');
    const listed = await call('GET', `/Card/get-cards?MerchantId=${MERCHANT}&CustomerId=C1`);
    expect(listed.body).toEqual({ payload: [{ token: body.token, cardInfo: { bin: '424242', last4Numbers: '4242', cardBrand: 'visa' }, isDefault: true }], isSuccess: true });
  });

  it('when the card data arrives as a form post (a cross-origin simple request), then it is refused', async () => {
    await createUser();
    expect((await tokenizeRequest({}, 'C1', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect(sandbox.state.cards.size).toBe(0);
  });
});
