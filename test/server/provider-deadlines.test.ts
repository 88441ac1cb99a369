/**
 * The overall deadline of every provider call (ProviderTimeouts.totalMs, from *_TIMEOUT_MS): a provider that sends
 * its answer slowly but steadily (a byte every few tens of milliseconds: undici's body timeout, which times silence,
 * never fires) is cut off at the deadline with the same retryable PROVIDER_UNAVAILABLE as any timeout, its connection
 * let go. Real local HTTP servers: one trickles the body after prompt headers, one trickles header lines and never
 * ends them. undici's own timeouts are 5 s here, so a failure within 2 s is the deadline's doing.
 */
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { failure } from '../support/provider-errors.js';
import { sendJson, startStubServer, type StubRequest } from '../support/stub-server.js';
import { ConfigError, loadConfig, providerTimeouts } from '../../server/config.js';
import type { ProviderError } from '../../server/errors.js';
import { createMemoryLogger } from '../../server/log.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { KasuClient, type KasuRegistration } from '../../server/providers/kasu/kasu-client.js';
import { KhipuClient } from '../../server/providers/khipu/khipu-client.js';
import {
  DEADLINE_EXCEEDED,
  ProviderDeadlineError,
  callDeadlineMs,
  providerCall,
  transportDetail,
  type ProviderTimeouts,
} from '../../server/providers/provider-http.js';
import { TupayClient } from '../../server/providers/tupay/tupay-client.js';
import { SANDBOX_PRIVATE_KEY, SANDBOX_USER, startKasuSandbox } from '../../server/sandbox/kasu/kasu-sandbox.js';

/** The overall deadline in these tests. */
const DEADLINE_MS = 300;
/** undici's headers and body timeouts: far longer than the deadline (and a steady trickle never trips the body one). */
const INACTIVITY_MS = 5_000;
/** "Well before the inactivity timeouts": the failure comes within this (the deadline plus room for a busy machine). */
const WITHIN_MS = 2_000;
/** A byte (or a header line) this often: never silent long enough for an inactivity timeout. */
const DRIP_MS = 40;
const TIMEOUTS: ProviderTimeouts = { connectMs: 1_000, headersMs: INACTIVITY_MS, bodyMs: INACTIVITY_MS, totalMs: DEADLINE_MS };

const CURP = 'CAMC880526HMCBNR04';
const KHIPU_SECRET = 'khipu-secret-that-must-never-leak';
const CARD_KEY = 'card-key-that-must-never-leak';
const TUPAY_SECRET = 'tupay-secret-that-must-never-leak';
const KASU_TOKEN = 'kasu-token-that-must-never-leak';
const TUPAY_TOKEN = 'tupay-session-that-must-never-leak';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

// ---------- misbehaving providers ----------

type Drip = { closedAt: number | null };

/** Prompt headers (with the whole Content-Length), then the body one byte every DRIP_MS; stops when the client leaves. */
function trickleBody(res: ServerResponse, body: string): Drip {
  const drip: Drip = { closedAt: null };
  const bytes = Buffer.from(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
  res.flushHeaders();
  let offset = 0;
  const timer = setInterval(() => {
    if (offset >= bytes.length) {
      clearInterval(timer);
      res.end();
      return;
    }
    res.write(bytes.subarray(offset, offset + 1));
    offset += 1;
  }, DRIP_MS);
  res.on('close', () => {
    clearInterval(timer);
    drip.closedAt = performance.now();
  });
  return drip;
}

/** A long valid-looking answer: at one byte per DRIP_MS it would take minutes. */
const LONG_BODY = JSON.stringify({ ok: true, padding: 'x'.repeat(4_000) });

async function stub(handle: (req: StubRequest, res: ServerResponse) => void) {
  const server = await startStubServer(handle);
  closers.push(server.close);
  return server;
}

/**
 * A raw TCP "provider" that answers every request with a status line and then one more header line every DRIP_MS,
 * never the blank line that ends the headers.
 */
async function trickleHeaders(): Promise<{
  url: string;
  /** Requests received. */
  requests: () => number;
  /** Connections that carried a request and are closed now. */
  closed: () => number;
}> {
  const sockets = new Set<Socket>();
  let requests = 0;
  let closed = 0;
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    let asked = false;
    socket.on('error', () => undefined);
    socket.once('data', () => {
      asked = true;
      requests += 1;
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n');
      let line = 0;
      timer = setInterval(() => socket.write(`x-still-thinking-${(line += 1)}: yes\r\n`), DRIP_MS);
    });
    socket.on('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
      if (asked) closed += 1;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests, closed: () => closed };
}

// ---------- what every deadline failure looks like ----------

/** Times the call from before it starts (the deadline's timer starts with it). */
async function timedFailure(call: () => Promise<unknown>): Promise<{ error: ProviderError; ms: number }> {
  const started = performance.now();
  const error = await failure(call());
  return { error, ms: performance.now() - started };
}

/** The same retryable PROVIDER_UNAVAILABLE as any other timeout, at the deadline, and nothing secret in it. */
function expectDeadline(outcome: { error: ProviderError; ms: number }, provider: string, secrets: string[]): void {
  const { error, ms } = outcome;
  expect(error).toMatchObject({ provider, code: 'PROVIDER_UNAVAILABLE', status: 503, retryable: true, message: 'PROVIDER_UNAVAILABLE' });
  expect(error.upstreamStatus).toBeUndefined();
  expect(error.detail).toMatchObject({ provider, reason: DEADLINE_EXCEEDED, deadlineMs: DEADLINE_MS });
  expect(error.cause).toBeInstanceOf(ProviderDeadlineError);
  expect(ms, 'not before the deadline').toBeGreaterThanOrEqual(DEADLINE_MS - 5);
  expect(ms, 'well before the inactivity timeouts').toBeLessThan(WITHIN_MS);
  const visible = [error.message, JSON.stringify(error.detail), String(error.cause), (error.cause as Error).message].join('\n');
  for (const secret of secrets) expect(visible).not.toContain(secret);
}

/** The server saw the connection closed soon after the deadline (the client did not keep reading the trickle). */
async function expectLetGo(closedAt: () => number | null, failedAt: number): Promise<void> {
  await expect.poll(closedAt, { timeout: 1_000, interval: 10 }).not.toBeNull();
  expect(closedAt()! - failedAt).toBeLessThan(500);
}

// ---------- the adapters ----------

function kasu(baseUrl: string, timeouts: ProviderTimeouts = TIMEOUTS, dispatcher?: Agent): KasuClient {
  const client = new KasuClient(
    {
      baseUrl,
      user: SANDBOX_USER,
      privateKey: SANDBOX_PRIVATE_KEY,
      paths: { tokenFull: '', modifyRecord: '', newService: '' },
      timeouts,
      tokenRefreshSkewSeconds: 30,
      userAgent: 'kasu-checkout-test/0.1',
    },
    { logger: createMemoryLogger(), ...(dispatcher ? { dispatcher } : {}) },
  );
  closers.push(() => client.close());
  return client;
}

function khipu(baseUrl: string): KhipuClient {
  const client = new KhipuClient(
    { baseUrl, receiverId: '100000', secret: KHIPU_SECRET, timeouts: TIMEOUTS, userAgent: 'kasu-checkout-test/0.1' },
    { logger: createMemoryLogger() },
  );
  closers.push(() => client.close());
  return client;
}

function card(baseUrl: string, dispatcher?: Agent): CardClient {
  const client = new CardClient(
    { baseUrl, merchantId: '3fa85f64-5717-4562-b3fc-2c963f66afa6', key: CARD_KEY, timeouts: TIMEOUTS, userAgent: 'kasu-checkout-test/0.1' },
    { logger: createMemoryLogger(), ...(dispatcher ? { dispatcher } : {}) },
  );
  closers.push(() => client.close());
  return client;
}

function tupay(baseUrl: string): TupayClient {
  const client = new TupayClient(
    { baseUrl, accessKey: 'api@kasu.example', secretKey: TUPAY_SECRET, timeouts: TIMEOUTS, userAgent: 'kasu-checkout-test/0.1' },
    { logger: createMemoryLogger() },
  );
  closers.push(() => client.close());
  return client;
}

const tokenAnswer = () => ({
  ok: true,
  token: KASU_TOKEN,
  nombre: 'JOSE CARLOS CABRERA MONROY',
  token_data: { timestamp: Math.floor(Date.now() / 1000), expires_in: 600 },
});

const REGISTRATION: KasuRegistration = {
  curp: CURP,
  email: 'carlos@example.com',
  phone: '5512345678',
  product: 'Funerario',
  instalments: 12,
  consents: { terms: true, privacy: true, trust: true },
  address: {
    street: 'Avenida Insurgentes Sur',
    number: '1602',
    neighborhood: 'Crédito Constructor',
    municipality: 'Benito Juárez',
    postalCode: '03940',
    stateName: 'Ciudad de México',
  },
};

const CHARGE = { customerId: 'KSU0001', merchantOrderId: 'KSU-0001-1', amount: 123_450, currency: 'MXN', token: 'card-token-1' };

async function collect<T>(records: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const record of records) all.push(record);
  return all;
}

describe('KASU: every call within its overall deadline', () => {
  it('when token_full trickles header lines and never ends them, then verifyCurp fails at the deadline, retryable, and the connection is let go', async () => {
    const slow = await trickleHeaders();
    const outcome = await timedFailure(() => kasu(slow.url).verifyCurp(CURP));
    expectDeadline(outcome, 'kasu', [SANDBOX_PRIVATE_KEY]);
    expect(outcome.error.detail).toMatchObject({ function: 'token_full' });
    expect(outcome.error.detail).not.toHaveProperty('outcomeUnknown');
    expect(slow.requests()).toBe(1);
    await expect.poll(slow.closed, { timeout: 1_000, interval: 10 }).toBe(1);
  });

  it('when new_service answers at once but trickles its body, then register fails at the deadline with the outcome unknown', async () => {
    let drip: Drip = { closedAt: null };
    const server = await stub((req, res) => {
      if ((JSON.parse(req.body) as { tipo_peticion?: string }).tipo_peticion === 'token_full') sendJson(res, 200, tokenAnswer());
      else drip = trickleBody(res, LONG_BODY);
    });
    const outcome = await timedFailure(() => kasu(server.url).register(REGISTRATION));
    const failedAt = performance.now();
    expectDeadline(outcome, 'kasu', [SANDBOX_PRIVATE_KEY, KASU_TOKEN]);
    expect(outcome.error.detail).toMatchObject({ function: 'new_service', outcomeUnknown: true });
    await expectLetGo(() => drip.closedAt, failedAt);
  });

  it('when an answer trickles in but completes within the deadline, then it is read as usual', async () => {
    const server = await stub((_req, res) => {
      const body = JSON.stringify(tokenAnswer());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      const quarter = Math.ceil(body.length / 4);
      let part = 0;
      const timer = setInterval(() => {
        const piece = body.slice(part * quarter, (part + 1) * quarter);
        part += 1;
        if (part >= 4) {
          clearInterval(timer);
          res.end(piece);
        } else res.write(piece);
      }, DRIP_MS);
      res.on('close', () => clearInterval(timer));
    });
    const client = kasu(server.url, { ...TIMEOUTS, totalMs: 2_000 });
    await expect(client.verifyCurp(CURP)).resolves.toEqual({ name: 'JOSE CARLOS CABRERA MONROY' });
  });

  it('when the connection is never made (a connector that never answers), then the call still fails at the deadline', async () => {
    // undici only notices an abort once a request has a connection; the deadline does not wait for it.
    const stuck = new Agent({ connect: () => undefined });
    closers.push(() => stuck.destroy());
    const outcome = await timedFailure(() => kasu('http://127.0.0.1:9', TIMEOUTS, stuck).verifyCurp(CURP));
    expectDeadline(outcome, 'kasu', [SANDBOX_PRIVATE_KEY]);
  });

  it('when the KASU simulator injects a `slow` fault, then the deadline (as *_TIMEOUT_MS makes it) cuts it off after KASU did the work', async () => {
    const sandbox = await startKasuSandbox({ faults: [{ match: { kasuFunction: 'token_full' }, fault: 'slow', ms: DRIP_MS, chunk: 2 }] });
    closers.push(() => sandbox.close());
    const outcome = await timedFailure(() => kasu(sandbox.url, providerTimeouts(DEADLINE_MS)).verifyCurp(CURP));
    expectDeadline(outcome, 'kasu', [SANDBOX_PRIVATE_KEY]);
    expect(sandbox.state.faults.hits()).toEqual([1]);
    // A `latency` fault under the deadline does not matter.
    sandbox.state.faults.set([{ match: { kasuFunction: 'token_full' }, fault: 'latency', ms: 50 }]);
    await expect(kasu(sandbox.url, providerTimeouts(2_000)).verifyCurp(CURP)).resolves.toMatchObject({ name: expect.any(String) });
  });
});

describe('Khipu: every call within its overall deadline', () => {
  it('when creating a payment trickles its body, then it fails at the deadline with the outcome unknown', async () => {
    let drip: Drip = { closedAt: null };
    const server = await stub((_req, res) => {
      drip = trickleBody(res, LONG_BODY);
    });
    const payment = { subject: 'KASU Funerario', currency: 'MXN', amount: 123_450, transactionId: 'KSU-0001' };
    const outcome = await timedFailure(() => khipu(server.url).createPayment(payment));
    const failedAt = performance.now();
    expectDeadline(outcome, 'khipu', [KHIPU_SECRET]);
    expect(outcome.error.detail).toMatchObject({ operation: 'createPayment', outcomeUnknown: true });
    await expectLetGo(() => drip.closedAt, failedAt);
  });

  it('when the bank list trickles header lines, then it fails at the deadline', async () => {
    const slow = await trickleHeaders();
    const outcome = await timedFailure(() => khipu(slow.url).banks());
    expectDeadline(outcome, 'khipu', [KHIPU_SECRET]);
    expect(outcome.error.detail).toMatchObject({ operation: 'banks' });
    expect(outcome.error.detail).not.toHaveProperty('outcomeUnknown');
    await expect.poll(slow.closed, { timeout: 1_000, interval: 10 }).toBe(1);
  });
});

describe('card gateway: every call within its overall deadline', () => {
  it('when a charge trickles its body, then it fails at the deadline with the outcome unknown (retry with the same merchantOrderId)', async () => {
    let drip: Drip = { closedAt: null };
    const server = await stub((_req, res) => {
      drip = trickleBody(res, LONG_BODY);
    });
    const outcome = await timedFailure(() => card(server.url).chargeToken(CHARGE));
    const failedAt = performance.now();
    expectDeadline(outcome, 'card', [CARD_KEY, CHARGE.token]);
    expect(outcome.error.detail).toMatchObject({ operation: 'makePaymentToken', outcomeUnknown: true });
    await expectLetGo(() => drip.closedAt, failedAt);
  });

  it('when the cards on file trickle header lines, then listing them fails at the deadline', async () => {
    const slow = await trickleHeaders();
    const outcome = await timedFailure(() => card(slow.url).listCards('KSU0001'));
    expectDeadline(outcome, 'card', [CARD_KEY]);
    expect(outcome.error.detail).toMatchObject({ operation: 'getCards' });
  });
});

describe('Tupay: every call within its overall deadline', () => {
  it('when a page of deposits trickles its body, then reading fails at the deadline (after a prompt login)', async () => {
    let drip: Drip = { closedAt: null };
    const server = await stub((req, res) => {
      if (req.url === '/v1/auth/login') {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': `BEARER_TOKEN=${TUPAY_TOKEN}; Path=/; HttpOnly` });
        res.end('{}');
        return;
      }
      drip = trickleBody(res, JSON.stringify({ maxRows: 50, data: [], padding: 'x'.repeat(4_000) }));
    });
    const reading = () => collect(tupay(server.url).deposits({ from: new Date(Date.now() - 86_400_000), to: new Date() }));
    const outcome = await timedFailure(reading);
    const failedAt = performance.now();
    expectDeadline(outcome, 'tupay', [TUPAY_SECRET, TUPAY_TOKEN]);
    expect(outcome.error.detail).toMatchObject({ operation: 'deposits' });
    expect(server.requests.map((request) => request.url.split('?')[0])).toEqual(['/v1/auth/login', '/v1/deposits']);
    await expectLetGo(() => drip.closedAt, failedAt);
  });

  it('when the login trickles header lines, then it fails at the deadline', async () => {
    const slow = await trickleHeaders();
    const reading = () => collect(tupay(slow.url).cashouts({ from: new Date(Date.now() - 86_400_000), to: new Date() }));
    const outcome = await timedFailure(reading);
    expectDeadline(outcome, 'tupay', [TUPAY_SECRET]);
    expect(outcome.error.detail).toMatchObject({ operation: 'login' });
  });
});

describe('the deadline itself (provider-http)', () => {
  it('when no totalMs is given, then the deadline is connect + headers + body + 1 s, so undici’s own timeouts still come first', () => {
    expect(callDeadlineMs({ connectMs: 1_000, headersMs: 300, bodyMs: 300 })).toBe(2_600);
    expect(callDeadlineMs({ connectMs: 1_000, headersMs: 300, bodyMs: 300, totalMs: 250 })).toBe(250);
  });

  it('when the caller’s own signal fires first, then the call stops at once, as an abort and not as the deadline', async () => {
    const slow = await trickleHeaders();
    const dispatcher = new Agent();
    closers.push(() => dispatcher.destroy());
    const caller = new AbortController();
    setTimeout(() => caller.abort(), 50);
    const started = performance.now();
    const error: unknown = await providerCall(`${slow.url}/x`, {
      method: 'GET', headers: {}, dispatcher, timeouts: { ...TIMEOUTS, totalMs: 5_000 }, signal: caller.signal,
    }).catch((caught: unknown) => caught);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).not.toBeInstanceOf(ProviderDeadlineError);
    expect(transportDetail(error)).toEqual({ reason: 'AbortError' });
  });

  it('transportDetail: string codes as they are, a DOMException by its name (its code is a number), the deadline with its length', () => {
    expect(transportDetail(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toEqual({ reason: 'ECONNREFUSED' });
    expect(transportDetail(new DOMException('late', 'TimeoutError'))).toEqual({ reason: 'TimeoutError' });
    expect(transportDetail(new ProviderDeadlineError(1234))).toEqual({ reason: DEADLINE_EXCEEDED, deadlineMs: 1234 });
    expect(transportDetail('weird')).toEqual({ reason: 'Error' });
  });
});

describe('configuration: *_TIMEOUT_MS is the overall deadline of each call', () => {
  it('when nothing is set, then customer-facing providers get 10–15 s per call and Tupay pages a minute (30 s of silence at most)', () => {
    const config = loadConfig({});
    expect(config.kasu.timeouts).toEqual({ connectMs: 5_000, headersMs: 10_000, bodyMs: 10_000, totalMs: 10_000 });
    expect(config.khipu!.timeouts).toEqual({ connectMs: 5_000, headersMs: 15_000, bodyMs: 15_000, totalMs: 15_000 });
    expect(config.card!.timeouts).toEqual({ connectMs: 5_000, headersMs: 15_000, bodyMs: 15_000, totalMs: 15_000 });
    expect(config.tupay!.timeouts).toEqual({ connectMs: 5_000, headersMs: 30_000, bodyMs: 30_000, totalMs: 60_000 });
  });

  it('when each is set, then every timeout of that provider fits within it', () => {
    const config = loadConfig({ KASU_TIMEOUT_MS: '400', KHIPU_TIMEOUT_MS: '8000', CARD_TIMEOUT_MS: '20000', TUPAY_TIMEOUT_MS: '2000' });
    expect(config.kasu.timeouts).toEqual({ connectMs: 400, headersMs: 400, bodyMs: 400, totalMs: 400 });
    expect(config.khipu!.timeouts).toEqual({ connectMs: 5_000, headersMs: 8_000, bodyMs: 8_000, totalMs: 8_000 });
    expect(config.card!.timeouts).toEqual({ connectMs: 5_000, headersMs: 20_000, bodyMs: 20_000, totalMs: 20_000 });
    expect(config.tupay!.timeouts).toEqual({ connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000, totalMs: 2_000 });
    expect(loadConfig({ TUPAY_TIMEOUT_MS: '120000' }).tupay!.timeouts).toEqual({ connectMs: 5_000, headersMs: 30_000, bodyMs: 30_000, totalMs: 120_000 });
  });

  it('when one is not a whole number of milliseconds from 1 to 600000, then the process refuses to start, naming it', () => {
    let error: unknown;
    try {
      loadConfig({ KASU_TIMEOUT_MS: '0', KHIPU_TIMEOUT_MS: 'soon', CARD_TIMEOUT_MS: '1.5', TUPAY_TIMEOUT_MS: '600001' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['KASU_TIMEOUT_MS', 'KHIPU_TIMEOUT_MS', 'CARD_TIMEOUT_MS', 'TUPAY_TIMEOUT_MS']) expect(problems).toContain(key);
    expect(problems).toContain('at most 600000');
  });
});
