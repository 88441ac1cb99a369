/**
 * A price that changes between the quote and the purchase: an old quote is priced again at submit, and a new price
 * reaches the customer before anything is registered or charged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutResponseSchema } from '../../shared/contract.js';
import { ENGINES } from '../support/databases.js';
import { purchaser } from '../support/purchase.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

describe.each(ENGINES)('price changes at submit on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  let shop: ReturnType<typeof purchaser>;
  let clock = Date.now();
  beforeAll(async () => {
    server = await startTestServer({ engine, backgroundJobs: false, now: () => new Date(clock) });
    call = apiClient(server.url);
    shop = purchaser(call, server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  const view = async (id: string, token: string) => CheckoutResponseSchema.parse((await call('GET', `/v1/checkouts/${id}`, { token })).body).checkout;
  const submit = (id: string, token: string, key: string) =>
    call('POST', `/v1/checkouts/${id}/submit`, { token, body: { paymentMethod: 'email' }, headers: { 'idempotency-key': key } });
  const priceCalls = () => server.kasuSandbox!.calls.filter((c) => c.function === 'modify_record').length;

  it('when KASU’s price changed after an old quote, then submit answers PRICE_CHANGED with nothing registered, and the new price is bought next', async () => {
    const { id, token } = await shop.ready(12);
    const before = await view(id, token);
    const code = before.quote!.kasuProduct;
    server.kasuSandbox!.prices.set(code, before.quote!.price / 100 + 300);
    clock += 31 * 60_000;

    const refused = await submit(id, token, 'price-change-1');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'PRICE_CHANGED', retryable: false, fields: { price: 'CHANGED' } });
    expect(server.kasuSandbox!.registrations).toHaveLength(0);

    const after = await view(id, token);
    expect(after.status).toBe('open');
    expect(after.quote!.price).toBe(before.quote!.price + 30_000);
    expect(after.planCount).toBe(12);
    const plan = after.quote!.plans.find((p) => p.count === 12)!;

    // The same key keeps its answer; the customer's next attempt (a new key) buys at the new price.
    expect((await submit(id, token, 'price-change-1')).body.error.code).toBe('PRICE_CHANGED');
    const bought = await submit(id, token, 'price-change-2');
    expect(bought.status, JSON.stringify(bought.body)).toBe(200);
    const { order } = CheckoutResponseSchema.parse(bought.body).checkout;
    expect(order).toMatchObject({ price: before.quote!.price + 30_000, instalmentAmount: plan.instalment });
    expect(server.kasuSandbox!.registrations).toHaveLength(1);
  });

  it('when the quote is recent, then submit does not price again; an old quote with the same price goes through', async () => {
    const fresh = await shop.ready(1);
    const calls = priceCalls();
    clock += 5 * 60_000;
    expect((await submit(fresh.id, fresh.token, 'recent-quote')).status).toBe(200);
    expect(priceCalls()).toBe(calls);

    const old = await shop.ready(1);
    const oldCalls = priceCalls();
    clock += 40 * 60_000;
    expect((await submit(old.id, old.token, 'old-same-price')).status).toBe(200);
    expect(priceCalls()).toBe(oldCalls + 1);
  });
});
