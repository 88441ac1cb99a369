/**
 * Submit when KASU fails: nothing lost, nothing registered twice. A small proxy between the BFF and the built-in
 * KASU simulator loses or refuses `new_service` calls on demand.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CreateCheckoutResponseSchema } from '../../shared/contract.js';
import { findOrderByCheckout } from '../../server/checkouts/checkout-store.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

type Mode = 'pass' | 'lose-answer' | 'answer-503';

describe('submit when KASU fails', () => {
  let proxy: Server;
  let target = '';
  let mode: Mode = 'pass';
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString();
      const isRegistration = body.includes('"new_service"');
      if (isRegistration && mode === 'answer-503') {
        mode = 'pass';
        res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>');
        return;
      }
      const upstream = await fetch(`${target}${req.url === '/' ? '' : req.url}`, {
        method: req.method, body, headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
      });
      const text = await upstream.text();
      if (isRegistration && mode === 'lose-answer') {
        mode = 'pass';
        req.socket.destroy(); // KASU did the work; the answer never arrives
        return;
      }
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    server = await startTestServer({ env: { KASU_BASE_URL: proxyUrl, KASU_TIMEOUT_MS: '3000' } });
    target = `${server.url}/sandbox/kasu`;
    call = apiClient(server.url);
  });

  afterAll(async () => {
    await server?.close();
    proxy?.close();
  });

  beforeEach(() => {
    mode = 'pass';
  });

  async function readyCheckout(curp: string, email: string) {
    const { checkout, token } = CreateCheckoutResponseSchema.parse((await call('POST', '/v1/checkouts', { body: { curp } })).body);
    const quote = (await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product: 'Funerario' } })).body.quote;
    const patched = await call('PATCH', `/v1/checkouts/${checkout.id}`, {
      token,
      body: {
        planCount: quote.plans[0].count, contact: { email, phone: `55${String(Math.random()).slice(2, 10)}` },
        address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
        consents: { terms: true, privacy: true, trust: true },
      },
    });
    expect(patched.status).toBe(200);
    return { id: checkout.id, token };
  }

  const submit = (id: string, token: string, key: string) =>
    call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': key } });

  it('when KASU answers 503 to the registration, then the customer gets a retryable error and the same key then registers once', async () => {
    const { id, token } = await readyCheckout('HELG740315MDFRPD02', 'falla503@example.mx');
    mode = 'answer-503';
    const failed = await submit(id, token, 'retry-503-key');
    expect(failed.status).toBe(503);
    expect(failed.body.error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    expect((await call('GET', `/v1/checkouts/${id}`, { token })).body.checkout.status).toBe('open');

    const retried = await submit(id, token, 'retry-503-key');
    expect(retried.status).toBe(200);
    expect(retried.body.checkout.order.policy).toBeTruthy();
    expect(server.kasuSandbox!.registrations.filter((r) => r.curp === 'HELG740315MDFRPD02')).toHaveLength(1);
  });

  it('when KASU registers but its answer is lost, then the retry hears "already registered" and the order goes to review, not to a second registration', async () => {
    const { id, token } = await readyCheckout('MARL690210HJCRMS02', 'perdida@example.mx');
    mode = 'lose-answer';
    const lost = await submit(id, token, 'lost-answer-key');
    expect(lost.status).toBe(503);
    expect(lost.body.error.retryable).toBe(true);
    expect(server.kasuSandbox!.registrations.filter((r) => r.curp === 'MARL690210HJCRMS02')).toHaveLength(1);

    const retried = await submit(id, token, 'lost-answer-key');
    expect(retried.status).toBe(409);
    expect(retried.body.error.code).toBe('REGISTRATION_NEEDS_REVIEW');
    expect(server.kasuSandbox!.registrations.filter((r) => r.curp === 'MARL690210HJCRMS02')).toHaveLength(1);
    const order = await findOrderByCheckout(server.db, id);
    expect(order).toMatchObject({ status: 'needs_review', registrationAttempts: 2 });
    expect((await call('GET', `/v1/checkouts/${id}`, { token })).body.checkout.status).toBe('needs_review');

    const again = await submit(id, token, 'another-key-later');
    expect(again.body.error.code).toBe('REGISTRATION_NEEDS_REVIEW');
    expect(server.kasuSandbox!.registrations.filter((r) => r.curp === 'MARL690210HJCRMS02')).toHaveLength(1);
  });
});
