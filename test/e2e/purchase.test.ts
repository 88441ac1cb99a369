/**
 * The whole purchase in a real browser: the demo partner page served by the real BFF (sandbox mode, embedded
 * database, built-in KASU simulator), driven like a customer would, under the page's strict CSP.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const WIDGET_DIR = fileURLToPath(new URL('../../dist/widget/', import.meta.url));

describe('purchase end to end', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(`${WIDGET_DIR}/kasu-checkout.js`)) throw new Error('build the widget first: npm run build:widget');
    server = await startTestServer({ widgetDir: WIDGET_DIR });
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
  });

  it('when a customer buys Funerario with CURP CAMC880526HMCBNR04 and pays later, then the confirmation shows the policy number KASU issued', async () => {
    await page.goto(`${server.url}/`);
    const widget = page.locator('kasu-checkout');

    await widget.getByRole('textbox', { name: 'CURP' }).fill('camc880526hmcbnr04');
    await widget.getByRole('button', { name: 'Continuar' }).click();

    await expect.poll(() => widget.getByRole('heading', { name: 'Elige tu producto' }).isVisible()).toBe(true);
    await expect.poll(() => widget.getByRole('radio', { name: /Universidad/ }).isDisabled()).toBe(true);
    await widget.getByRole('radio', { name: /Funerario/ }).check();
    await widget.getByRole('button', { name: 'Continuar' }).click();

    await expect.poll(() => widget.getByRole('heading', { name: 'Elige cómo pagar' }).isVisible()).toBe(true);
    await widget.getByRole('radio', { name: /pagos mensuales/ }).first().check();
    await widget.getByRole('button', { name: 'Continuar' }).click();

    await expect.poll(() => widget.getByRole('heading', { name: /datos de contacto/ }).isVisible()).toBe(true);
    await widget.getByRole('textbox', { name: 'Correo electrónico' }).fill('comprador.e2e@example.mx');
    await widget.getByRole('textbox', { name: /Teléfono celular/ }).fill('+52 55 8765 4321');
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
});
