import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { failure } from '../support/provider-errors.js';
import { createMemoryLogger } from '../../server/log.js';
import { isDuplicateMerchantOrder } from '../../server/providers/card/card-api.js';
import { verifyCardAuth } from '../../server/providers/card/card-auth.js';
import { CardClient, type CardConfig } from '../../server/providers/card/card-client.js';
import {
  SANDBOX_CARD_KEY,
  SANDBOX_CARD_MERCHANT_ID,
  SANDBOX_CARD_TEST_CARDS,
  startCardSandbox,
} from '../../server/sandbox/card/card-sandbox.js';

let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
const clients: CardClient[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startCardSandbox({ hangMs: 3_000 });
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.state.reset());
afterEach(async () => {
  await Promise.all([...clients.splice(0).map((client) => client.close()), ...closers.splice(0).map((close) => close())]);
});

function config(overrides: Partial<CardConfig> = {}): CardConfig {
  return {
    baseUrl: sandbox.url,
    merchantId: SANDBOX_CARD_MERCHANT_ID,
    key: SANDBOX_CARD_KEY,
    timeouts: { connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000 },
    userAgent: 'kasu-checkout-test/0.1',
    ...overrides,
  };
}

function makeClient(overrides: Partial<CardConfig> = {}, logger = createMemoryLogger()): CardClient {
  const client = new CardClient(config(overrides), { logger });
  clients.push(client);
  return client;
}


const CUSTOMER = {
  customerId: 'KSU0001',
  contractNumber: 'KSU-0001',
  email: 'cliente@example.mx',
  phoneNumber: '5512345678',
  address: 'Av. Reforma 1, CDMX',
  zipCode: '06600',
};

/** Tokenises a card the way the tokenizer page does (straight to the sandbox, never through the BFF). */
async function tokenize(number: string, customerId = CUSTOMER.customerId): Promise<string> {
  const response = await fetch(`${sandbox.url}/tokenizer/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ merchantId: SANDBOX_CARD_MERCHANT_ID, customerId, number, expiry: '12/39', cvv: '123', name: 'Ana López' }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

async function customerWithCard(number: string): Promise<{ client: CardClient; token: string }> {
  const client = makeClient();
  await client.ensureCustomer(CUSTOMER);
  return { client, token: await tokenize(number) };
}

function charge(token: string, merchantOrderId = 'KSU-0001-1', amount = 123_450) {
  return { customerId: CUSTOMER.customerId, merchantOrderId, amount, currency: 'MXN', token };
}

type Captured = { method: string; url: string; headers: IncomingMessage['headers']; body: string };

/** A tiny HTTP server standing in for the gateway when the sandbox cannot misbehave the way a test needs. */
async function stub(handle: (req: Captured, res: ServerResponse) => void): Promise<{ url: string; requests: Captured[] }> {
  const requests: Captured[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const captured = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(captured);
      handle(captured, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function paymentAnswer(isSuccess: boolean, status: string, responseCode: string, amount = '1234.50') {
  return {
    payload: {
      responseCode, responseDescription: 'Message', authorizationNumber: '123', referenceNumber: 'ref-1', status,
      order: { id: 'order-1', amount, currency: 'MXN' },
    },
    isSuccess,
  };
}

describe('CardClient against the card sandbox', () => {
  it('when a new customer is ensured, then the gateway creates it with its contact info', async () => {
    await expect(makeClient().ensureCustomer(CUSTOMER)).resolves.toEqual({ created: true });
    const stored = sandbox.state.customers.get(`${SANDBOX_CARD_MERCHANT_ID} ${CUSTOMER.customerId}`);
    expect(stored?.contactInfo).toEqual({ email: CUSTOMER.email, phoneNumber: CUSTOMER.phoneNumber, address: CUSTOMER.address, zipCode: CUSTOMER.zipCode });
    expect(sandbox.state.requests.at(-1)).toMatchObject({ path: '/create-user', auth: 'ok', status: 200 });
  });

  it('when an existing customer is ensured again, then it is a success with created false', async () => {
    const client = makeClient();
    await client.ensureCustomer(CUSTOMER);
    await expect(client.ensureCustomer(CUSTOMER)).resolves.toEqual({ created: false });
    expect(sandbox.state.requests.at(-1)?.status).toBe(400);
  });

  it('when the customer data is refused, then it is a configuration error', async () => {
    const error = await failure(makeClient().ensureCustomer({ ...CUSTOMER, contractNumber: 'x'.repeat(21) }));
    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(error.upstreamStatus).toBe(400);
  });

  it('when cards are listed for an unknown customer, then it is NOT_FOUND', async () => {
    const error = await failure(makeClient().listCards('nobody'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.upstreamStatus).toBe(404);
  });

  it('when two cards were tokenised, then both are listed with bin, last4, brand and the first as default', async () => {
    const { client, token } = await customerWithCard('4242 4242 4242 4242');
    const second = await tokenize('5555555555554444');
    await expect(client.listCards(CUSTOMER.customerId)).resolves.toEqual([
      { token, bin: '424242', last4: '4242', brand: 'visa', isDefault: true },
      { token: second, bin: '555555', last4: '4444', brand: 'mastercard', isDefault: false },
    ]);
  });

  it('when an approving card is charged, then the outcome is approved with the order id, and the gateway got "1234.50"', async () => {
    const { client, token } = await customerWithCard(SANDBOX_CARD_TEST_CARDS.approved);
    const result = await client.chargeToken(charge(token));
    expect(result).toMatchObject({ outcome: 'approved', responseCode: '00', authorizationNumber: expect.stringMatching(/^\d{6}$/) });
    expect(sandbox.state.ledger).toHaveLength(1);
    expect(sandbox.state.ledger[0]).toMatchObject({
      merchantOrderId: 'KSU-0001-1', customerId: CUSTOMER.customerId, amount: '1234.50', currency: 'MXN', token,
      outcome: 'approved', orderId: result.orderId, answered: true,
    });
  });

  it('when whole pesos and single centavos are charged, then the amounts are decimal strings with two places', async () => {
    const { client, token } = await customerWithCard(SANDBOX_CARD_TEST_CARDS.approved);
    await client.chargeToken(charge(token, 'KSU-A', 100_000));
    await client.chargeToken(charge(token, 'KSU-B', 5));
    expect(sandbox.state.ledger.map((entry) => entry.amount)).toEqual(['1000.00', '0.05']);
  });

  it.each([
    [SANDBOX_CARD_TEST_CARDS.insufficientFunds, '51'],
    [SANDBOX_CARD_TEST_CARDS.doNotHonour, '05'],
  ])('when card %s is declined, then the outcome is rejected and the response code %s is kept', async (number, code) => {
    const { client, token } = await customerWithCard(number);
    const result = await client.chargeToken(charge(token));
    expect(result).toMatchObject({ outcome: 'rejected', responseCode: code, responseDescription: expect.any(String) });
    expect(sandbox.state.ledger).toMatchObject([{ outcome: 'rejected', responseCode: code }]);
  });

  it('when the gateway fails with a 500, then it is PROVIDER_UNAVAILABLE with the outcome unknown and nothing in the ledger', async () => {
    const { client, token } = await customerWithCard(SANDBOX_CARD_TEST_CARDS.gatewayError);
    const error = await failure(client.chargeToken(charge(token)));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.upstreamStatus).toBe(500);
    expect(error.detail).toMatchObject({ outcomeUnknown: true, merchantOrderId: 'KSU-0001-1' });
    expect(sandbox.state.ledger).toHaveLength(0);
  });

  it('when the gateway does not answer in time, then it is PROVIDER_UNAVAILABLE with outcomeUnknown, and a retry with the same id is a recognisable duplicate', async () => {
    const { token } = await customerWithCard(SANDBOX_CARD_TEST_CARDS.timeout);
    const impatient = makeClient({ timeouts: { connectMs: 1_000, headersMs: 300, bodyMs: 300 } });
    const error = await failure(impatient.chargeToken(charge(token)));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.detail).toMatchObject({ outcomeUnknown: true, reason: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(sandbox.state.ledger).toMatchObject([{ merchantOrderId: 'KSU-0001-1', outcome: 'approved', answered: false }]);
    const retry = await failure(makeClient().chargeToken(charge(token)));
    expect(isDuplicateMerchantOrder(retry)).toBe(true);
    expect(sandbox.state.ledger).toHaveLength(1);
  });

  it('when a merchantOrderId is charged twice, then the second is a PROVIDER_CONFIG_ERROR with duplicateMerchantOrderId and nothing more is charged', async () => {
    const { client, token } = await customerWithCard(SANDBOX_CARD_TEST_CARDS.approved);
    await client.chargeToken(charge(token));
    const error = await failure(client.chargeToken(charge(token)));
    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(error.detail?.duplicateMerchantOrderId).toBe(true);
    expect(isDuplicateMerchantOrder(error)).toBe(true);
    expect(sandbox.state.ledger).toHaveLength(1);
  });

  it('when the customer does not exist, then a charge is NOT_FOUND and not a duplicate', async () => {
    const error = await failure(makeClient().chargeToken({ ...charge('no-token'), customerId: 'nobody' }));
    expect(error.code).toBe('NOT_FOUND');
    expect(isDuplicateMerchantOrder(error)).toBe(false);
  });

  it('when the key is wrong, then the gateway answers 401 and it is a configuration error', async () => {
    const error = await failure(makeClient({ key: 'wrong-key' }).ensureCustomer(CUSTOMER));
    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(error.upstreamStatus).toBe(401);
    expect(sandbox.state.requests.at(-1)?.auth).toBe('bad-signature');
    expect(JSON.stringify(error.detail)).not.toContain('wrong-key');
  });

  it('when the client clock is ten minutes off, then the gateway refuses the date', async () => {
    const client = new CardClient(config(), { nowSeconds: () => Math.floor(Date.now() / 1000) - 600 });
    clients.push(client);
    expect((await failure(client.listCards('x'))).upstreamStatus).toBe(401);
    expect(sandbox.state.requests.at(-1)?.auth).toBe('stale-date');
  });

  it('when both sides use base64 digests, then calls pass; when only one does, then they are refused', async () => {
    const base64Sandbox = await startCardSandbox({ auth: { encoding: 'base64' } });
    closers.push(() => base64Sandbox.close());
    await expect(makeClient({ baseUrl: base64Sandbox.url, auth: { encoding: 'base64' } }).ensureCustomer(CUSTOMER)).resolves.toEqual({ created: true });
    expect((await failure(makeClient({ baseUrl: base64Sandbox.url }).ensureCustomer(CUSTOMER))).upstreamStatus).toBe(401);
  });

  it('when calls are logged, then neither the key nor the card token appears in the log', async () => {
    const logger = createMemoryLogger();
    const client = makeClient({}, logger);
    await client.ensureCustomer(CUSTOMER);
    const token = await tokenize(SANDBOX_CARD_TEST_CARDS.approved);
    await client.listCards(CUSTOMER.customerId);
    await client.chargeToken(charge(token));
    await failure(client.chargeToken(charge(token)));
    const log = logger.lines.join('\n');
    expect(log).toContain('card call');
    expect(log).not.toContain(SANDBOX_CARD_KEY);
    expect(log).not.toContain(token);
  });
});

describe('CardClient against a misbehaving gateway', () => {
  it('when charging, then it POSTs the document body with signed headers to /api/v1/make-payment-token', async () => {
    const gateway = await stub((_req, res) => json(res, 200, paymentAnswer(true, 'approved', '00')));
    const client = makeClient({ baseUrl: `${gateway.url}/` });
    await client.chargeToken(charge('tok-1'));
    const [sent] = gateway.requests;
    expect(sent?.method).toBe('POST');
    expect(sent?.url).toBe('/api/v1/make-payment-token');
    expect(JSON.parse(sent?.body ?? '')).toEqual({
      transactionType: 'sale',
      merchantId: SANDBOX_CARD_MERCHANT_ID,
      customerId: CUSTOMER.customerId,
      order: { merchantOrderId: 'KSU-0001-1', amount: '1234.50', currency: 'MXN' },
      card: { token: 'tok-1' },
    });
    expect(sent?.headers['content-type']).toBe('application/json');
    const verdict = verifyCardAuth(SANDBOX_CARD_KEY, { method: 'POST', contentType: 'application/json', body: sent?.body ?? '', headers: sent?.headers ?? {} });
    expect(verdict).toEqual({ ok: true });
  });

  it('when listing cards, then it GETs /api/v1/Card/get-cards with MerchantId and CustomerId', async () => {
    const gateway = await stub((_req, res) =>
      json(res, 200, { payload: [{ token: 't', cardInfo: { bin: '424242', last4Numbers: '4242', cardBrand: 'VISA' }, isDefault: true }], isSuccess: true }),
    );
    const cards = await makeClient({ baseUrl: gateway.url }).listCards('cliente 1');
    expect(gateway.requests[0]?.url).toBe(`/api/v1/Card/get-cards?MerchantId=${SANDBOX_CARD_MERCHANT_ID}&CustomerId=cliente+1`);
    expect(gateway.requests[0]?.body).toBe('');
    expect(cards).toEqual([{ token: 't', bin: '424242', last4: '4242', brand: 'VISA', isDefault: true }]);
  });

  it.each([
    ['isSuccess true with status rejected', paymentAnswer(true, 'rejected', '05')],
    ["'00' with status rejected", paymentAnswer(false, 'rejected', '00')],
    ['approved with a code other than 00', paymentAnswer(true, 'approved', '05')],
    ['approved with isSuccess false', paymentAnswer(false, 'approved', '00')],
    ['an unknown status', paymentAnswer(true, 'pending', '00')],
    ['an approval for another amount', paymentAnswer(true, 'approved', '00', '12.34')],
  ])('when the gateway answers %s, then it is PROVIDER_UNAVAILABLE with the outcome unknown, never approved', async (_name, answer) => {
    const gateway = await stub((_req, res) => json(res, 200, answer));
    const error = await failure(makeClient({ baseUrl: gateway.url }).chargeToken(charge('tok-1')));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.detail).toMatchObject({ why: 'inconsistent charge outcome', outcomeUnknown: true });
  });

  it('when a decline comes with HTTP 402 and the payload, then it is still a rejection with its code', async () => {
    const gateway = await stub((_req, res) => json(res, 402, paymentAnswer(false, 'rejected', '51')));
    await expect(makeClient({ baseUrl: gateway.url }).chargeToken(charge('tok-1'))).resolves.toMatchObject({ outcome: 'rejected', responseCode: '51' });
  });

  it('when a 200 answer is not JSON, then it is PROVIDER_UNAVAILABLE with the outcome unknown', async () => {
    const gateway = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>ok</html>');
    });
    const error = await failure(makeClient({ baseUrl: gateway.url }).chargeToken(charge('tok-1')));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.detail).toMatchObject({ outcomeUnknown: true });
  });

  it('when the gateway words a duplicate in a message under another key, then it is still recognised', async () => {
    const gateway = await stub((_req, res) =>
      json(res, 400, { isSuccess: false, errors: [{ key: 'InvalidOperationException', value: ['The MerchantOrderId already exists'] }] }),
    );
    expect(isDuplicateMerchantOrder(await failure(makeClient({ baseUrl: gateway.url }).chargeToken(charge('tok-1'))))).toBe(true);
  });

  it('when a 404 is not the gateway error shape, then it is a configuration error (wrong base URL)', async () => {
    const gateway = await stub((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
    });
    expect((await failure(makeClient({ baseUrl: gateway.url }).listCards('x'))).code).toBe('PROVIDER_CONFIG_ERROR');
  });

  it('when the gateway rate-limits, then it is RATE_LIMITED', async () => {
    const gateway = await stub((_req, res) => json(res, 429, { isSuccess: false, errors: [] }));
    expect((await failure(makeClient({ baseUrl: gateway.url }).listCards('x'))).code).toBe('RATE_LIMITED');
  });

  it('when nothing listens, then a charge is PROVIDER_UNAVAILABLE with outcomeUnknown false (it never left)', async () => {
    const gateway = await stub((_req, res) => json(res, 200, {}));
    await closers.pop()?.();
    const error = await failure(makeClient({ baseUrl: gateway.url }).chargeToken(charge('tok-1')));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.detail).toMatchObject({ outcomeUnknown: false, reason: 'ECONNREFUSED' });
  });
});
