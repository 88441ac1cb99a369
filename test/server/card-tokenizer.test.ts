import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CardClient } from '../../server/providers/card/card-client.js';
import {
  SANDBOX_CARD_KEY,
  SANDBOX_CARD_MERCHANT_ID,
  SANDBOX_CARD_TEST_CARDS,
  startCardSandbox,
} from '../../server/sandbox/card/card-sandbox.js';
import { launchChromium } from '../support/browser.js';

const CUSTOMER_ID = 'KSU0042';

let sandbox: Awaited<ReturnType<typeof startCardSandbox>>;
let parent: Server;
let parentUrl: string;
let browser: Browser;
let client: CardClient;

/**
 * The host page: another origin, a strict CSP of its own, the tokenizer in an iframe, and a listener that records
 * every message it receives (the test then checks there is exactly the one expected).
 */
function parentPage(frameOrigin: string): string {
  const src = `${sandbox.url}/tokenizer?merchantId=${SANDBOX_CARD_MERCHANT_ID}&customerId=${CUSTOMER_ID}&origin=${encodeURIComponent(frameOrigin)}`;
  return (
    '<!doctype html><html lang="es-MX"><head><meta charset="utf-8"><title>Tienda</title>' +
    '<script src="/parent.js"></script></head><body><h1>Pago con tarjeta</h1>' +
    `<iframe id="card" title="Datos de tu tarjeta" src="${src.replace(/&/g, '&amp;')}"></iframe></body></html>`
  );
}

const PARENT_JS = `
window.received = [];
window.addEventListener('message', (event) => {
  window.received.push({ origin: event.origin, fromFrame: event.source === document.getElementById('card').contentWindow, data: event.data });
});
`;

beforeAll(async () => {
  sandbox = await startCardSandbox();
  parent = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/parent.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(PARENT_JS);
      return;
    }
    // ?frameOrigin= lets a test claim another parent origin than the real one.
    const frameOrigin = url.searchParams.get('frameOrigin') ?? parentUrl;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; script-src 'self'; frame-src ${sandbox.url}`,
    });
    res.end(parentPage(frameOrigin));
  });
  await new Promise<void>((resolve) => parent.listen(0, '127.0.0.1', resolve));
  parentUrl = `http://127.0.0.1:${(parent.address() as AddressInfo).port}`;
  browser = await launchChromium();
  client = new CardClient({
    baseUrl: sandbox.url,
    merchantId: SANDBOX_CARD_MERCHANT_ID,
    key: SANDBOX_CARD_KEY,
    timeouts: { connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000 },
    userAgent: 'kasu-checkout-test/0.1',
  });
});

afterAll(async () => {
  await browser?.close();
  await client?.close();
  await new Promise<void>((resolve) => {
    parent.closeAllConnections();
    parent.close(() => resolve());
  });
  await sandbox.close();
});

beforeEach(async () => {
  sandbox.state.reset();
  await client.ensureCustomer({
    customerId: CUSTOMER_ID, contractNumber: 'KSU-0042', email: 'ana@example.mx', phoneNumber: '5512345678', address: 'Calle 1', zipCode: '06600',
  });
});

async function openShop(query = ''): Promise<{ page: Page; cspViolations: string[] }> {
  const page = await browser.newPage();
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  await page.goto(`${parentUrl}/${query}`);
  return { page, cspViolations };
}

async function received(page: Page): Promise<Array<{ origin: string; fromFrame: boolean; data: unknown }>> {
  return page.evaluate(() => (window as unknown as { received: Array<{ origin: string; fromFrame: boolean; data: unknown }> }).received);
}

describe('card tokenizer in an iframe on another origin', () => {
  it('when a good card is typed, then the parent receives exactly one kasu-card-token message with token, last4, brand and expiry and no card number', async () => {
    const { page, cspViolations } = await openShop();
    try {
      const frame = page.frameLocator('#card');
      await frame.getByLabel('Número de tarjeta').fill('4242 4242 4242 4242');
      await frame.getByLabel('Vencimiento (MM/AA)').fill('12/39');
      await frame.getByLabel('Código de seguridad (CVV)').fill('123');
      await frame.getByLabel('Nombre como aparece en la tarjeta').fill('Ana López');
      await frame.getByRole('button', { name: 'Guardar tarjeta' }).click();
      await expect.poll(async () => (await received(page)).length).toBe(1);
      const [message] = await received(page);
      expect(message).toEqual({
        origin: sandbox.url,
        fromFrame: true,
        data: { type: 'kasu-card-token', token: expect.any(String), last4: '4242', brand: 'visa', expiry: '12/39' },
      });
      const text = JSON.stringify(message);
      expect(text).not.toContain('4242424242424242');
      expect(text).not.toContain('4242 4242 4242 4242');
      expect(text).not.toContain('"123"');
      const token = (message?.data as { token: string }).token;
      await expect(client.listCards(CUSTOMER_ID)).resolves.toEqual([{ token, bin: '424242', last4: '4242', brand: 'visa', isDefault: true }]);
      expect(await frame.getByRole('status').textContent()).toBe('Tarjeta guardada.');
      expect(cspViolations).toEqual([]);
      await page.waitForTimeout(200);
      expect(await received(page)).toHaveLength(1);
    } finally {
      await page.close();
    }
  });

  it('when the card number fails Luhn, then the field is marked invalid with its message and nothing is posted to the parent', async () => {
    const { page } = await openShop();
    try {
      const frame = page.frameLocator('#card');
      await frame.getByLabel('Número de tarjeta').fill(SANDBOX_CARD_TEST_CARDS.approved.replace(/2$/, '1'));
      await frame.getByLabel('Vencimiento (MM/AA)').fill('12/39');
      await frame.getByLabel('Código de seguridad (CVV)').fill('123');
      await frame.getByLabel('Nombre como aparece en la tarjeta').fill('Ana López');
      await frame.getByRole('button', { name: 'Guardar tarjeta' }).click();
      const number = frame.getByLabel('Número de tarjeta');
      await expect.poll(() => number.getAttribute('aria-invalid')).toBe('true');
      expect(await frame.locator('#number-error').textContent()).toBe('Revisa el número de tarjeta.');
      expect(await frame.getByRole('alert').textContent()).toBe('Revisa los datos marcados.');
      expect(await received(page)).toEqual([]);
      expect(sandbox.state.cards.size).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('when the page claims another parent origin than the one framing it, then the browser refuses to show the tokenizer', async () => {
    const { page } = await openShop(`?frameOrigin=${encodeURIComponent('https://shop.example')}`);
    try {
      await page.waitForTimeout(500);
      const frame = page.frames().find((candidate) => candidate !== page.mainFrame());
      expect(frame).toBeDefined();
      expect(await frame?.locator('#card-form').count()).toBe(0);
      expect(await received(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
