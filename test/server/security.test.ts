/**
 * Security of the BFF through HTTP: headers per route class (helmet), rate limits shared through the database,
 * request size limits and error envelopes, what the logs never hold after whole purchases, checkout tokens, CORS,
 * the admin token, and secrets never bundled into the widget.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutResponseSchema, CreateCheckoutResponseSchema, ErrorBodySchema } from '../../shared/contract.js';
import { loadConfig, SANDBOX_ADMIN_TOKEN, SANDBOX_SECRETS } from '../../server/config.js';
import { createMemoryLogger } from '../../server/log.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { DEMO_CSP } from '../../server/demo/demo-page.js';
import { API_CSP } from '../../server/http/middleware.js';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { SANDBOX_CARD_KEY } from '../../server/sandbox/card/card-sandbox.js';
import { SANDBOX_KHIPU_SECRET } from '../../server/sandbox/khipu/khipu-sandbox.js';
import { ENGINES, openTestDatabase, type Engine, type TestDatabase } from '../support/databases.js';
import { purchaser } from '../support/purchase.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LIVE_ENV = {
  MODE: 'live', PUBLIC_URL: 'https://checkout.example', ADMIN_TOKEN: 'l'.repeat(32), ALLOWED_ORIGINS: 'https://partner.example',
  KASU_BASE_URL: 'http://127.0.0.1:9/kasu', KASU_USER: 'partner', KASU_PRIVATE_KEY: 'a-live-kasu-key',
};
const CURP = 'CAMC880526HMCBNR04';
const OTHER_CURP = 'REAE060617MMCYLVA4';

/** The widget built once for this file, into a directory of its own (no clash with other builds). */
let widgetDir: string;
beforeAll(async () => {
  widgetDir = await mkdtemp(join(tmpdir(), 'kasu-widget-'));
  await build({
    configFile: join(ROOT, 'vite.config.ts'), root: ROOT, logLevel: 'warn',
    build: { outDir: widgetDir, emptyOutDir: true },
  });
}, 60_000);
afterAll(async () => {
  if (widgetDir) await rm(widgetDir, { recursive: true, force: true });
});

const expectEnvelope = (response: { status: number; headers: Headers; body: any }, code: string) => {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(ErrorBodySchema.parse(response.body).error.code).toBe(code);
};

/**
 * A clock that runs with real time, shifted so that a test can start one second into a fresh rate-limit window (and
 * so never straddles two windows by accident): `next()` jumps forward to the start of the next window.
 */
function windowClock() {
  let shift = 0;
  const now = () => new Date(Date.now() + shift);
  return {
    now,
    next() {
      const current = now().getTime();
      shift += Math.floor(current / 60_000) * 60_000 + 60_000 + 1_000 - current;
    },
  };
}

describe('security headers', () => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  beforeAll(async () => {
    server = await startTestServer({ widgetDir });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  const hardened = (headers: Headers) => {
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('referrer-policy')).toBe('no-referrer');
    expect(headers.get('x-powered-by')).toBeNull();
  };

  it('when an API answer goes out (success, refusal or 404), then it carries nosniff, frame deny, no-referrer, same-origin CORP, no HSTS in sandbox', async () => {
    const answers = [
      await call('GET', '/healthz'),
      await call('GET', '/openapi.json'),
      await call('POST', '/v1/checkouts', { body: { curp: 'nope' } }),
      await call('GET', '/v1/checkouts/chk_x', { token: 'x' }),
      await call('GET', '/admin/orders'),
      await call('POST', '/webhooks/khipu', { body: {} }),
      await call('GET', '/no/such/path'),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 401, 401, 400, 404]);
    for (const { headers } of answers) {
      hardened(headers);
      expect(headers.get('x-frame-options')).toBe('DENY');
      expect(headers.get('content-security-policy')).toBe(API_CSP);
      expect(headers.get('cross-origin-resource-policy')).toBe('same-origin');
      expect(headers.get('strict-transport-security')).toBeNull();
    }
  });

  it('when the widget is fetched, then partner pages may load it cross-origin (CORP cross-origin, CORS open), still nosniff', async () => {
    for (const file of ['kasu-checkout.js', 'kasu-checkout.iife.js']) {
      const response = await fetch(`${server.url}/widget/${file}`, { headers: { origin: 'https://any-partner.example' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('content-type')).toMatch(/javascript/);
      hardened(response.headers);
      await response.arrayBuffer();
    }
  });

  it('when the demo page is served, then its own strict CSP is the only policy (helmet adds none), framing denied', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(DEMO_CSP);
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    hardened(response.headers);
    await response.text();
    const nonced = await fetch(`${server.url}/?nonce=1`);
    const policy = nonced.headers.get('content-security-policy')!;
    expect(policy).toMatch(/script-src 'self' 'nonce-[^']+'/);
    expect(policy.split(', ')).toHaveLength(1); // one header, not two joined
    expect(policy).not.toContain('upgrade-insecure-requests'); // a helmet default
    await nonced.text();
  });

  it('when a partner page frames the sandbox card tokenizer, then no X-Frame-Options forbids it and frame-ancestors is that partner', async () => {
    const { id, token } = await purchaser(call, server.url).ready();
    const session = await call('POST', `/v1/checkouts/${id}/card-session`, { token, body: { origin: 'https://partner.example' } });
    expect(session.status).toBe(200);
    const page = await fetch(session.body.tokenizerUrl as string);
    expect(page.status).toBe(200);
    expect(page.headers.get('x-frame-options')).toBeNull();
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors https:\/\/partner\.example$/);
    expect(page.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    hardened(page.headers);
    await page.text();
  });

  it('when the BFF runs in live mode, then answers carry HSTS', async () => {
    const live = await startTestServer({ env: LIVE_ENV, widgetDir });
    try {
      const response = await fetch(`${live.url}/healthz`);
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      await response.text();
    } finally {
      await live.close();
    }
  });
});

describe('request size and shape', () => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  beforeAll(async () => {
    server = await startTestServer();
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('when a JSON body is larger than 16 kB, then 413 in our error envelope (not an HTML page)', async () => {
    const response = await call('POST', '/v1/checkouts', { body: { curp: 'A'.repeat(20_000) } });
    expect(response.status).toBe(413);
    expectEnvelope(response, 'VALIDATION_FAILED');
    expect(response.body.error.fields).toEqual({ '(body)': 'TOO_LARGE' });
    const admin = await call('POST', '/admin/reconciliations', {
      body: { from: '2026-01-01', to: '2026-01-02', pad: 'x'.repeat(5_000) }, headers: { authorization: `Bearer ${SANDBOX_ADMIN_TOKEN}` },
    });
    expect(admin.status).toBe(413);
    expectEnvelope(admin, 'VALIDATION_FAILED');
    const form = await fetch(`${server.url}/webhooks/khipu`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `notification_token=${'t'.repeat(5_000)}`,
    });
    expect(form.status).toBe(413);
    expect(ErrorBodySchema.parse(await form.json()).error.code).toBe('VALIDATION_FAILED');
  });

  it('when a JSON body is malformed, then 400 VALIDATION_FAILED with the reason', async () => {
    for (const body of ['{"curp":', '{curp: 1}', '[1,]', '\u0000']) {
      const response = await call('POST', '/v1/checkouts', { body });
      expect(response.status, body).toBe(400);
      expectEnvelope(response, 'VALIDATION_FAILED');
      expect(response.body.error.fields).toEqual({ '(body)': 'INVALID_JSON' });
    }
  });

  it('when the body declares a charset or encoding the server does not read, then 415 in our envelope', async () => {
    const post = (headers: Record<string, string>) => fetch(`${server.url}/v1/checkouts`, { method: 'POST', headers, body: '{}' });
    const cases: Array<Record<string, string>> = [
      { 'content-type': 'application/json; charset=latin1' }, { 'content-type': 'application/json', 'content-encoding': 'br-nope' },
    ];
    for (const headers of cases) {
      const response = await post(headers);
      expect(response.status).toBe(415);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(ErrorBodySchema.parse(await response.json()).error).toMatchObject({ code: 'VALIDATION_FAILED', fields: { '(body)': 'UNSUPPORTED_MEDIA' } });
    }
  });

  it('when a path has a broken percent-encoding or a NUL, then 400 in our envelope, never 500', async () => {
    const broken = await call('GET', '/v1/checkouts/%E0%A4%A', { token: 'x' });
    expect(broken.status).toBe(400);
    expectEnvelope(broken, 'VALIDATION_FAILED');
    expect(broken.body.error.fields).toEqual({ '(url)': 'INVALID' });
    const nul = await call('GET', '/admin/subscriptions/a%00b/charges', { headers: { authorization: `Bearer ${SANDBOX_ADMIN_TOKEN}` } });
    expect(nul.status).toBe(400);
    expectEnvelope(nul, 'VALIDATION_FAILED');
    const nulInForm = await fetch(`${server.url}/webhooks/khipu`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'api_version=1.3&notification_token=a%00b',
    });
    expect(nulInForm.status).toBe(400);
    expect(ErrorBodySchema.parse(await nulInForm.json()).error.code).toBe('VALIDATION_FAILED');
    const nulInBody = await call('PATCH', '/v1/checkouts/chk_x', { token: 'x', body: { address: { street: 'a\u0000b' } } });
    expect(nulInBody.status).toBe(400);
    expectEnvelope(nulInBody, 'VALIDATION_FAILED');
    // Half a surrogate pair is valid JSON but not storable (found by the fuzzer: it answered 500).
    const loneSurrogate = await call('PATCH', '/v1/checkouts/chk_x', { token: 'x', body: '{"address":{"number":"\\ud80010"}}' });
    expect(loneSurrogate.status).toBe(400);
    expectEnvelope(loneSurrogate, 'VALIDATION_FAILED');
    const pair = await call('PATCH', '/v1/checkouts/chk_x', { token: 'x', body: '{"address":{"number":"\\ud83d\\ude00"}}' });
    expect(pair.status, 'a whole pair (an emoji) is not refused as unstorable').not.toBe(400);
  });

  it('when an admin job name is a prototype key, then it is an unknown job (404), never run or a 500', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const answer = await call('POST', `/admin/jobs/${name}/run`, { headers: { authorization: `Bearer ${SANDBOX_ADMIN_TOKEN}` } });
      expect(answer.status, name).toBe(404);
      expectEnvelope(answer, 'NOT_FOUND');
    }
  });
});

describe.each(ENGINES)('rate limits on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  const clock = windowClock();
  beforeAll(async () => {
    server = await startTestServer({
      engine, now: clock.now,
      env: { RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '3', RATE_LIMIT_PER_CHECKOUT_PER_MINUTE: '3', TRUST_PROXY: 'loopback' },
    });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  const lookup = (ip: string, curp = CURP) => call('POST', '/v1/checkouts', { body: { curp }, headers: { 'x-forwarded-for': ip } });

  it('when one IP looks up more CURPs than allowed in a minute, then 429 RATE_LIMITED with Retry-After, KASU is not asked, and another IP is unaffected', async () => {
    clock.next();
    for (let i = 0; i < 3; i++) expect((await lookup('203.0.113.7')).status).toBe(201);
    const kasuCalls = server.kasuSandbox!.calls.length;
    const refused = await lookup('203.0.113.7', OTHER_CURP);
    expect(refused.status).toBe(429);
    expectEnvelope(refused, 'RATE_LIMITED');
    expect(refused.body.error.retryable).toBe(true);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(server.kasuSandbox!.calls.length).toBe(kasuCalls);
    // Behind a proxy chain, the client is the address the trusted proxy saw.
    expect((await lookup('198.51.100.9')).status).toBe(201);
    expect((await lookup('203.0.113.7, 198.51.100.20')).status).toBe(201);
    // Malformed requests are refused before they count.
    expect((await call('POST', '/v1/checkouts', { body: {}, headers: { 'x-forwarded-for': '198.51.100.30' } })).status).toBe(400);
  });

  it('when the window ends, then the count starts over and ended windows are deleted', async () => {
    clock.next();
    expect((await lookup('192.0.2.44')).status).toBe(201);
    const before = await server.db.query<{ n: number }>('SELECT count(*)::int AS n FROM rate_limit_hits');
    expect(before.rows[0]!.n).toBeGreaterThan(1);
    clock.next();
    clock.next();
    expect((await lookup('203.0.113.7')).status).toBe(201);
    const { rows } = await server.db.query<{ window_start: Date }>('SELECT window_start FROM rate_limit_hits');
    const current = Math.floor(clock.now().getTime() / 60_000) * 60_000;
    expect(rows.map((row) => new Date(row.window_start).getTime())).toEqual([current]);
  });

  it('when one checkout asks KASU (quote, submit) more often than allowed, then 429 for it only, and a wrong token never counts', async () => {
    clock.next();
    const mine = CreateCheckoutResponseSchema.parse((await lookup('198.51.100.1')).body);
    const other = CreateCheckoutResponseSchema.parse((await lookup('198.51.100.2', OTHER_CURP)).body);
    const quote = (id: string, token: string) => call('POST', `/v1/checkouts/${id}/quote`, { token, body: { product: 'Funerario' } });
    for (let i = 0; i < 5; i++) expect((await quote(mine.checkout.id, other.token)).status).toBe(401);
    expect((await quote(mine.checkout.id, mine.token)).status).toBe(200);
    expect((await quote(mine.checkout.id, mine.token)).status).toBe(200);
    const submit = await call('POST', `/v1/checkouts/${mine.checkout.id}/submit`, {
      token: mine.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'rate-limit-0001' },
    });
    expect(submit.status).toBe(422); // counted (the third call), refused for being incomplete
    const refused = await quote(mine.checkout.id, mine.token);
    expect(refused.status).toBe(429);
    expectEnvelope(refused, 'RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const refusedSubmit = await call('POST', `/v1/checkouts/${mine.checkout.id}/submit`, {
      token: mine.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'rate-limit-0002' },
    });
    expect(refusedSubmit.status).toBe(429);
    // Reading and saving the checkout are not limited; another checkout is unaffected.
    expect((await call('GET', `/v1/checkouts/${mine.checkout.id}`, { token: mine.token })).status).toBe(200);
    expect((await quote(other.checkout.id, other.token)).status).toBe(200);
  });
});

describe('rate limits without a trusted proxy', () => {
  it('when TRUST_PROXY is off (the default), then X-Forwarded-For is ignored and cannot dodge the limit', async () => {
    const clock = windowClock();
    clock.next();
    const server = await startTestServer({ now: clock.now, env: { RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '2' } });
    try {
      const call = apiClient(server.url);
      const statuses = [];
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        statuses.push((await call('POST', '/v1/checkouts', { body: { curp: CURP }, headers: { 'x-forwarded-for': ip } })).status);
      }
      expect(statuses).toEqual([201, 201, 429]);
    } finally {
      await server.close();
    }
  });

  it('when TRUST_PROXY or a limit is malformed, then the configuration is refused', () => {
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/99' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ TRUST_PROXY: 'proxy.example' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '-1' })).toThrow(/RATE_LIMIT_CURP_PER_IP_PER_MINUTE/);
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual(['loopback', '10.0.0.0/8']);
    expect(loadConfig({}).rateLimits).toEqual({ curpPerIp: 20, perCheckout: 30, windowSeconds: 60 });
    expect(loadConfig({ RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '0' }).rateLimits.curpPerIp).toBe(0);
  });
});

describe('rate limits shared by two BFF instances on one PostgreSQL database', () => {
  let database: TestDatabase;
  const instances: RunningServer[] = [];
  const clock = windowClock();
  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    const config = loadConfig({
      MODE: 'sandbox', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', RATE_LIMIT_CURP_PER_IP_PER_MINUTE: '4', TRUST_PROXY: 'loopback',
    });
    for (let i = 0; i < 2; i++) {
      instances.push(await startServer(config, { db: database.db, logger: createMemoryLogger(), now: clock.now, backgroundJobs: false }));
    }
  });
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    await database?.drop();
  });

  it('when requests of one IP alternate between the instances, then they share one count', async () => {
    clock.next();
    const [a, b] = instances.map((instance) => apiClient(instance.url));
    const lookup = (call: ReturnType<typeof apiClient>) =>
      call('POST', '/v1/checkouts', { body: { curp: CURP }, headers: { 'x-forwarded-for': '203.0.113.50' } });
    const statuses = [];
    for (const call of [a!, b!, a!, b!, a!, b!]) statuses.push((await lookup(call)).status);
    expect(statuses).toEqual([201, 201, 201, 201, 429, 429]);
    const { rows } = await database.db.query<{ hits: number }>(`SELECT hits FROM rate_limit_hits WHERE bucket = 'curp-ip'`);
    expect(rows).toEqual([{ hits: 6 }]);
  });

  it('when many requests race on both instances, then the atomic upsert counts every one', async () => {
    clock.next();
    const calls = instances.map((instance) => apiClient(instance.url));
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      calls[i % 2]!('POST', '/v1/checkouts', { body: { curp: CURP }, headers: { 'x-forwarded-for': '203.0.113.51' } })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(4);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(8);
  });
});

describe.each(ENGINES)('purchases, tokens and logs on %s', (engine: Engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  beforeAll(async () => {
    server = await startTestServer({ engine });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('when whole purchases are made (pay later, Khipu paid, card), then no log line holds a CURP, email, phone, name, token or key in clear', async () => {
    const shop = purchaser(call, server.url);
    const bought = [await shop.buy('email'), await shop.buy('khipu'), await shop.buy('card')];
    // Khipu: the customer pays and the notification comes back to the BFF.
    const khipu = bought[1]!;
    const khipuPaymentId = khipu.checkout.payment!.redirectUrl!.split('/').at(-1)!;
    const paid = await fetch(`${server.url}/sandbox/khipu/_control/payments/${khipuPaymentId}/pay`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    });
    expect(paid.status).toBeLessThan(300);
    await paid.text();
    for (let i = 0; i < 100; i++) {
      const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${khipu.id}`, { token: khipu.token })).body).checkout;
      if (view.payment?.status === 'paid') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await call('GET', '/admin/orders', { headers: { authorization: `Bearer ${SANDBOX_ADMIN_TOKEN}` } })).status).toBe(200);
    // A failing call with secrets in it: the wrong admin token and a bad checkout token must not be logged either.
    await call('GET', '/admin/orders', { headers: { authorization: 'Bearer wrong-admin-token-but-long-enough-0001' } });

    const secrets: string[] = [...Object.values(SANDBOX_SECRETS), SANDBOX_CARD_KEY, SANDBOX_KHIPU_SECRET, 'wrong-admin-token-but-long-enough-0001'];
    for (const purchase of bought) {
      const view = CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${purchase.id}`, { token: purchase.token })).body).checkout;
      secrets.push(purchase.token, view.customer.curp, view.contact!.email, view.contact!.phone);
      const name = SANDBOX_CURPS.find((person) => person.curp === view.customer.curp)!.name;
      secrets.push(name);
    }
    const { rows: orders } = await server.db.query<{ customer_name: string | null }>('SELECT customer_name FROM orders');
    for (const order of orders) if (order.customer_name) secrets.push(order.customer_name);
    const { rows: cards } = await server.db.query<{ token: string }>('SELECT token FROM payment_cards');
    expect(cards.length).toBeGreaterThan(0);
    for (const card of cards) secrets.push(card.token);
    for (const payment of server.khipuSandbox!.payments.values()) secrets.push(payment.notification_token);
    secrets.push('ANA PEREZ', '4242424242424242');

    expect(server.logs.length).toBeGreaterThan(20);
    const lines = server.logs;
    for (const line of lines) {
      const record = JSON.parse(line); // one JSON object per line
      expect(record).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
    }
    const text = lines.join('\n');
    expect(text).toMatch(/"curp":"[A-Z]{4}\*{14}"/); // CURPs were logged, masked
    for (const secret of new Set(secrets)) expect(text, `log holds ${secret.slice(0, 3)}…`).not.toContain(secret);
    expect(text).not.toMatch(/[0-9a-f]{64}/); // KASU access tokens and signatures
    expect(text).not.toMatch(/Bearer\s+(?!\[redacted\])/);
  });

  it('when a checkout token is used on another checkout, then 401 and nothing of that checkout is shown or changed', async () => {
    const mine = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: CURP } })).body);
    const theirs = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp: OTHER_CURP } })).body);
    const before = await server.db.query('SELECT * FROM checkouts WHERE id = $1', [theirs.checkout.id]);
    const attempts = [
      await call('GET', `/v1/checkouts/${theirs.checkout.id}`, { token: mine.token }),
      await call('PATCH', `/v1/checkouts/${theirs.checkout.id}`, { token: mine.token, body: { consents: { terms: true } } }),
      await call('POST', `/v1/checkouts/${theirs.checkout.id}/quote`, { token: mine.token, body: { product: 'Funerario' } }),
      await call('POST', `/v1/checkouts/${theirs.checkout.id}/card-session`, { token: mine.token, body: { origin: 'https://partner.example' } }),
      await call('POST', `/v1/checkouts/${theirs.checkout.id}/submit`, {
        token: mine.token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': 'cross-token-0001' },
      }),
      await call('GET', `/v1/checkouts/${theirs.checkout.id}`),
      await call('GET', `/v1/checkouts/${theirs.checkout.id}`, { token: `${theirs.token.slice(0, -1)}${theirs.token.endsWith('A') ? 'B' : 'A'}` }),
      await call('GET', '/v1/checkouts/chk_doesnotexist0000', { token: mine.token }),
    ];
    for (const answer of attempts) {
      expect(answer.status).toBe(401);
      expectEnvelope(answer, 'UNAUTHORIZED');
      const text = JSON.stringify(answer.body);
      expect(text).not.toContain(OTHER_CURP);
      expect(text).not.toContain(theirs.checkout.id);
    }
    expect((await server.db.query('SELECT * FROM checkouts WHERE id = $1', [theirs.checkout.id])).rows).toEqual(before.rows);
    const { rows } = await server.db.query('SELECT count(*)::int AS n FROM consent_events WHERE checkout_id = $1', [theirs.checkout.id]);
    expect(rows[0]).toEqual({ n: 0 });
    expect((await call('GET', `/v1/checkouts/${theirs.checkout.id}`, { token: theirs.token })).status).toBe(200);
  });

  it('when the admin API gets a wrong token of the same length, or none, then 401', async () => {
    const wrong = SANDBOX_ADMIN_TOKEN.replace(/.$/, (c) => (c === 'x' ? 'y' : 'x'));
    expect(wrong).toHaveLength(SANDBOX_ADMIN_TOKEN.length);
    for (const headers of [{ authorization: `Bearer ${wrong}` }, { authorization: `Basic ${SANDBOX_ADMIN_TOKEN}` }, {} as Record<string, string>]) {
      const answer = await call('GET', '/admin/orders', { headers });
      expect(answer.status).toBe(401);
      expectEnvelope(answer, 'UNAUTHORIZED');
    }
    expect((await call('GET', '/admin/orders', { headers: { authorization: `Bearer ${SANDBOX_ADMIN_TOKEN}` } })).status).toBe(200);
  });
});

describe('CORS', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { ALLOWED_ORIGINS: 'https://partner.example,https://shop.example' }, widgetDir });
  });
  afterAll(async () => {
    await server?.close();
  });

  const request = (path: string, origin: string, method = 'GET', headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method, headers: { origin, ...headers } });

  it('when an allowed origin calls the API, then it alone gets Access-Control-Allow-Origin, preflights included', async () => {
    const allowed = await request('/v1/khipu/banks', 'https://partner.example');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://partner.example');
    expect(allowed.headers.get('vary')).toMatch(/Origin/);
    expect(allowed.headers.get('access-control-expose-headers')).toMatch(/Retry-After/); // the widget can read a 429's wait
    await allowed.text();
    const preflight = await request('/v1/checkouts', 'https://shop.example', 'OPTIONS', {
      'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type',
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://shop.example');
  });

  it('when another origin calls the API, then no Access-Control-Allow-Origin, and its preflight is refused', async () => {
    for (const origin of ['https://evil.example', 'https://partner.example.evil.example', 'null', 'http://partner.example']) {
      const answer = await request('/v1/khipu/banks', origin);
      expect(answer.headers.get('access-control-allow-origin'), origin).toBeNull();
      await answer.text();
      const preflight = await request('/v1/checkouts', origin, 'OPTIONS', { 'access-control-request-method': 'POST' });
      expect(preflight.status).toBe(403);
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      await preflight.text();
    }
    // The admin API and the notifications are never CORS-open.
    const admin = await request('/admin/orders', 'https://partner.example');
    expect(admin.headers.get('access-control-allow-origin')).toBeNull();
    await admin.text();
  });

  it('when any page loads the widget, then it is CORS-open (public code)', async () => {
    const answer = await request('/widget/kasu-checkout.js', 'https://evil.example');
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    await answer.arrayBuffer();
  });
});

describe('the built widget', () => {
  it('when the widget is built, then no configured secret is in any file of the bundle (source maps included)', async () => {
    const files = await readdir(widgetDir);
    expect(files).toContain('kasu-checkout.js');
    expect(files).toContain('kasu-checkout.iife.js');
    const secrets = [...Object.values(SANDBOX_SECRETS), SANDBOX_CARD_KEY, SANDBOX_KHIPU_SECRET];
    for (const file of files) {
      const text = await readFile(join(widgetDir, file), 'utf8');
      for (const secret of secrets) expect(text, `${file} holds a secret`).not.toContain(secret);
      expect(text, file).not.toMatch(/MERCHANT_WEBHOOK_SECRET|KASU_PRIVATE_KEY|TUPAY_SECRET_KEY|ADMIN_TOKEN/);
    }
  });
});
