/**
 * The whole purchase in a real browser: the demo partner page served by the real BFF (sandbox mode, embedded
 * database, built-in KASU simulator), driven like a customer would, under the page's strict CSP.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { verifyMerchantWebhook } from '../../server/webhooks/merchant-webhooks.js';

const WEBHOOK_SECRET = 'e2e-merchant-webhook-secret';

const WIDGET_DIR = fileURLToPath(new URL('../../dist/widget/', import.meta.url));


/** Drives the demo page from the CURP to the payment step, as a customer would. */
async function fillUpToPayment(page: Page, baseUrl: string, curp: string, email: string, phone: string) {
  await page.goto(`${baseUrl}/`);
  const widget = page.locator('kasu-checkout');

  await widget.getByRole('textbox', { name: 'CURP' }).fill(curp);
  await widget.getByRole('button', { name: 'Continuar' }).click();

  await expect.poll(() => widget.getByRole('heading', { name: 'Elige tu producto' }).isVisible()).toBe(true);
  await expect.poll(() => widget.getByRole('radio', { name: /Universidad/ }).isDisabled()).toBe(true);
  await widget.getByRole('radio', { name: /Funerario/ }).check();
  await widget.getByRole('button', { name: 'Continuar' }).click();

  await expect.poll(() => widget.getByRole('heading', { name: 'Elige cómo pagar' }).isVisible()).toBe(true);
  await widget.getByRole('radio', { name: /pagos mensuales/ }).first().check();
  await widget.getByRole('button', { name: 'Continuar' }).click();

  await expect.poll(() => widget.getByRole('heading', { name: /datos de contacto/ }).isVisible()).toBe(true);
  await widget.getByRole('textbox', { name: 'Correo electrónico' }).fill(email);
  await widget.getByRole('textbox', { name: /Teléfono celular/ }).fill(phone);
  await widget.getByRole('textbox', { name: 'Calle' }).fill('Av. Reforma');
  await widget.getByRole('textbox', { name: /Número exterior/ }).fill('222');
  await widget.getByRole('textbox', { name: 'Colonia' }).fill('Juárez');
  await widget.getByRole('textbox', { name: /Municipio/ }).fill('Cuauhtémoc');
  await widget.getByRole('textbox', { name: 'Código postal' }).fill('06600');
  await widget.getByRole('combobox', { name: 'Estado' }).selectOption({ label: 'Ciudad de México' });
  await widget.getByRole('button', { name: 'Continuar' }).click();

  await expect.poll(() => widget.getByRole('heading', { name: /acepta los documentos/ }).isVisible()).toBe(true);
  await widget.getByRole('checkbox', { name: /términos y condiciones/ }).check();
  await widget.getByRole('checkbox', { name: /aviso de privacidad/ }).check();
  await widget.getByRole('checkbox', { name: /fideicomiso F\/0003/ }).check();
  await widget.getByRole('button', { name: 'Continuar' }).click();

  await expect.poll(() => widget.getByRole('heading', { name: 'Forma de pago' }).isVisible()).toBe(true);
  return widget;
}

describe('purchase end to end', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  /** The merchant's webhook endpoint: raw bodies and headers, as received. */
  let merchant: Server;
  const delivered: Array<{ signature: string; body: string }> = [];

  beforeAll(async () => {
    if (!existsSync(`${WIDGET_DIR}/kasu-checkout.js`)) throw new Error('build the widget first: npm run build:widget');
    merchant = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      delivered.push({ signature: String(req.headers['kasu-signature']), body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => merchant.listen(0, '127.0.0.1', resolve));
    server = await startTestServer({
      widgetDir: WIDGET_DIR,
      env: {
        MERCHANT_WEBHOOK_URL: `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/kasu`,
        MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
        WEBHOOK_DISPATCH_INTERVAL_MS: '200',
      },
    });
    browser = await launchChromium();
    page = await browser.newPage({ locale: 'es-MX' });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    merchant?.close();
  });

  it('when a customer buys Funerario with CURP CAMC880526HMCBNR04 and pays later, then the confirmation shows the policy number KASU issued', async () => {
    const widget = await fillUpToPayment(page, server.url, 'camc880526hmcbnr04', 'comprador.e2e@example.mx', '+52 55 8765 4321');

    await expect.poll(() => widget.getByRole('heading', { name: 'Forma de pago' }).isVisible()).toBe(true);
    await widget.getByRole('radio', { name: /Pagar después/ }).check();
    await widget.getByRole('button', { name: 'Confirmar compra' }).click();

    await expect.poll(() => widget.getByRole('heading', { name: /Tu compra quedó registrada/ }).isVisible(), { timeout: 15_000 }).toBe(true);
    const registrations = server.kasuSandbox!.registrations;
    expect(registrations).toHaveLength(1);
    const [registration] = registrations;
    expect(registration).toMatchObject({ curp: 'CAMC880526HMCBNR04', product: 'Funerario', email: 'comprador.e2e@example.mx', phone: '5587654321' });
    await expect.poll(() => widget.getByText(registration!.policy).isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });

  it('when a customer pays by bank transfer on Khipu’s page, then back on the partner page the purchase shows paid and the merchant gets a signed order.paid', async () => {
    const context = await browser.newContext({ locale: 'es-MX' });
    const khipuPage = await context.newPage();
    const errors: string[] = [];
    khipuPage.on('pageerror', (error) => errors.push(error.message));
    const widget = await fillUpToPayment(khipuPage, server.url, 'REAE060617MMCYLVA4', 'evelyn.e2e@example.mx', '55 2222 3333');

    await widget.getByRole('radio', { name: /Transferencia bancaria/ }).check();
    await widget.getByRole('combobox', { name: /Tu banco/ }).selectOption({ label: 'DemoBank' });
    await widget.getByRole('button', { name: 'Confirmar compra' }).click();

    await khipuPage.waitForURL(/\/sandbox\/khipu\/payment\/[A-Za-z0-9]{12}$/);
    await khipuPage.getByRole('button', { name: 'Pagar' }).click();

    await khipuPage.waitForURL(`${server.url}/`);
    const back = khipuPage.locator('kasu-checkout');
    // In the confirmation (the live region also says "Pagado" when the payment turned paid while the page was open).
    await expect.poll(() => back.getByRole('region', { name: /Listo/ }).getByText('Pagado').isVisible(), { timeout: 20_000 }).toBe(true);
    const [registration] = server.kasuSandbox!.registrations.filter((r) => r.curp === 'REAE060617MMCYLVA4');
    expect(registration).toBeTruthy();
    await expect.poll(() => back.getByText(registration!.policy).isVisible()).toBe(true);

    const paid = await expect
      .poll(() => delivered.map((d) => ({ ...d, event: JSON.parse(d.body) })).filter((d) => d.event.type === 'order.paid'), { timeout: 10_000 })
      .toHaveLength(1)
      .then(() => delivered.find((d) => JSON.parse(d.body).type === 'order.paid')!);
    expect(verifyMerchantWebhook(WEBHOOK_SECRET, paid.signature, paid.body)).toBe(true);
    expect(JSON.parse(paid.body).data).toMatchObject({ policy: registration!.policy, payment: { method: 'khipu', currency: 'MXN' } });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('when a customer pays by card, first with a declined card and then with an approving one, then the first instalment is paid and the schedule shown, and no card number ever reached the BFF', async () => {
    const context = await browser.newContext({ locale: 'es-MX' });
    const cardPage = await context.newPage();
    const errors: string[] = [];
    cardPage.on('pageerror', (error) => errors.push(error.message));
    // Every request the browser makes, with its body: the card may go to the gateway's page only.
    const requests: Array<{ url: string; body: string }> = [];
    cardPage.on('request', (request) => requests.push({ url: request.url(), body: request.postData() ?? '' }));

    const widget = await fillUpToPayment(cardPage, server.url, 'HELG740315MDFRPD02', 'lupita.e2e@example.mx', '55 4444 5555');
    await widget.getByRole('radio', { name: /Tarjeta \(cargo recurrente\)/ }).check();
    const typeCard = async (number: string) => {
      const frame = widget.frameLocator('iframe[title="Datos de tu tarjeta"]');
      await frame.getByLabel('Número de tarjeta').fill(number);
      await frame.getByLabel('Vencimiento (MM/AA)').fill('12/30');
      await frame.getByLabel('Código de seguridad (CVV)').fill('123');
      await frame.getByLabel('Nombre como aparece en la tarjeta').fill('MARIA GUADALUPE HERNANDEZ');
      await frame.getByRole('button', { name: 'Guardar tarjeta' }).click();
      await expect.poll(() => widget.getByText(`Tarjeta terminada en ${number.slice(-4)}`).isVisible()).toBe(true);
    };

    await typeCard('4000 0000 0000 9995');
    await widget.getByRole('checkbox', { name: /Autorizo a KASU a cargar a mi tarjeta/ }).check();
    await widget.getByRole('button', { name: 'Confirmar compra' }).click();
    await expect.poll(() => widget.getByText(/Tu banco rechazó el cargo/).first().isVisible(), { timeout: 15_000 }).toBe(true);

    await typeCard('4242 4242 4242 4242');
    const consent = widget.getByRole('checkbox', { name: /Autorizo a KASU a cargar a mi tarjeta/ });
    if (!(await consent.isChecked())) await consent.check();
    await widget.getByRole('button', { name: 'Confirmar compra' }).click();

    await expect.poll(() => widget.getByRole('heading', { name: /Tu compra quedó registrada/ }).isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => widget.getByText('Calendario de pagos').isVisible()).toBe(true);
    await expect.poll(() => widget.getByText('Pagado').first().isVisible()).toBe(true);
    const [registration] = server.kasuSandbox!.registrations.filter((r) => r.curp === 'HELG740315MDFRPD02');
    expect(registration).toBeTruthy();
    const charges = server.cardSandbox!.ledger.filter((e) => e.customerId.startsWith('kc-'));
    expect(charges.map((e) => [e.responseCode, e.outcome])).toEqual([['51', 'rejected'], ['00', 'approved']]);

    const toBff = requests.filter((r) => !new URL(r.url).pathname.startsWith('/sandbox/card/'));
    for (const request of toBff) {
      expect(request.body).not.toMatch(/4242\s?4242\s?4242\s?4242|4000\s?0000\s?0000\s?9995/);
      expect(request.body).not.toMatch(/"cvv"|12\/30/i); // no CVV, no expiry
    }
    expect(toBff.some((r) => r.url.endsWith('/submit'))).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });
});
