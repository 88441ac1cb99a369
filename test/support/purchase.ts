/**
 * Buying through the BFF's public API as the widget does, for server tests that need real orders. KASU registers a
 * CURP once per product, so each purchase takes a (CURP, product) pair not used before by this purchaser.
 */
import { CheckoutResponseSchema, CreateCheckoutResponseSchema } from '../../shared/contract.js';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import type { apiClient } from './test-server.js';

type Call = ReturnType<typeof apiClient>;

export function purchaser(call: Call, serverUrl: string) {
  const candidates = SANDBOX_CURPS.filter((person) => !person.deceased).map((person) => person.curp);
  const used = new Set<string>();

  /** A checkout with plan, contact, address and consents, ready to submit. `planCount`: the plan with that count, else the first. */
  async function ready(planCount?: number) {
    for (const curp of candidates) {
      const created = await call('POST', '/v1/checkouts', { body: { curp } });
      const { checkout, token } = CreateCheckoutResponseSchema.parse(created.body);
      const product = checkout.products.find((p) => p.eligible && !used.has(`${curp}/${p.product}`))?.product;
      if (!product) continue;
      used.add(`${curp}/${product}`);
      const quote = (await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product } })).body.quote as {
        plans: Array<{ count: number }>;
      };
      const plan = quote.plans.find((p) => p.count === planCount) ?? quote.plans[0]!;
      const patched = await call('PATCH', `/v1/checkouts/${checkout.id}`, {
        token,
        body: {
          planCount: plan.count,
          contact: { email: `${curp.toLowerCase()}.${product.toLowerCase()}@example.mx`, phone: `55${curp.slice(4, 10)}${product.length}0`.slice(0, 10) },
          address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
          consents: { terms: true, privacy: true, trust: true },
        },
      });
      if (patched.status !== 200) throw new Error(`checkout update failed: ${JSON.stringify(patched.body)}`);
      return { id: checkout.id, token, curp, product };
    }
    throw new Error('the sandbox registry has no unused (CURP, product) pair left');
  }

  /** The card as the gateway's tokenizer frame hands it to the widget (the card number goes to the simulator only). */
  async function tokenize(id: string, token: string, number: string, origin = 'https://partner.example') {
    const session = await call('POST', `/v1/checkouts/${id}/card-session`, { token, body: { origin } });
    const url = new URL(session.body.tokenizerUrl as string);
    const response = await fetch(`${serverUrl}/sandbox/card/tokenizer/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        merchantId: url.searchParams.get('merchantId'), customerId: url.searchParams.get('customerId'),
        number, expiry: '12/30', cvv: '123', name: 'ANA PEREZ',
      }),
    });
    const message = (await response.json()) as { token: string; last4: string; brand: string };
    return { token: message.token, last4: message.last4, brand: message.brand };
  }

  /** A registered order paid (or to be paid) with `method`; returns the checkout as the customer then sees it. */
  async function buy(method: 'email' | 'khipu' | 'card', options: { planCount?: number } = {}) {
    const { id, token } = await ready(options.planCount);
    const body: Record<string, unknown> = { paymentMethod: method };
    if (method === 'khipu') Object.assign(body, { khipuBankId: 'Bawdf', returnUrl: 'https://partner.example/' });
    if (method === 'card') Object.assign(body, { card: await tokenize(id, token, '4242424242424242'), recurringConsent: true });
    const submitted = await call('POST', `/v1/checkouts/${id}/submit`, { token, body, headers: { 'idempotency-key': `buy-${id}` } });
    if (submitted.status !== 200) throw new Error(`submit failed: ${JSON.stringify(submitted.body)}`);
    const checkout = CheckoutResponseSchema.parse(submitted.body).checkout;
    if (!checkout.order) throw new Error('no order after submit');
    return { id, token, checkout, order: checkout.order };
  }

  return { ready, tokenize, buy };
}
