#!/usr/bin/env node
/**
 * docs/screenshots/: every step of a purchase in `<kasu-checkout>`, as a customer sees it on the demo page, in es-MX
 * and en, and in the dark scheme when the widget has one (theme="auto" with the system preferring dark; skipped when
 * it looks exactly like the light one).
 *
 *   node --import tsx scripts/screenshots.mjs [--build | --no-build]
 *
 * Each walk starts the real BFF in sandbox mode in this process (built-in simulators, a fresh PGlite database in a
 * temporary directory, port 0), so the same sandbox CURP can buy Funerario every time: CAMC880526HMCBNR04,
 * Funerario, the first plan, contact and address, the three consents, "Pagar después" (pay later). Chromium is
 * Debian's (/usr/bin/chromium, or CHROMIUM_PATH), driven by playwright-core; viewport 480×900, each PNG clipped to
 * the element's box: docs/screenshots/<locale>[-dark]-<n>-<step>.png.
 *
 * The widget is served from dist/widget: rebuilt with `vite build` when a source file is newer than the build (or
 * with --build; --no-build never rebuilds). Any console error on the page (a CSP violation among them) fails the run.
 */
/* global document, window, customElements -- the functions given to page.evaluate() run in the page */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { URLSearchParams, fileURLToPath } from 'node:url';
import { loadConfig } from '../server/config.js';
import { createLogger } from '../server/log.js';
import { startServer } from '../server/server.js';
import { launchChromium } from '../test/support/browser.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WIDGET_DIR = join(ROOT, 'dist', 'widget');
const OUT_DIR = join(ROOT, 'docs', 'screenshots');
const VIEWPORT = { width: 480, height: 900 };
const CURP = 'CAMC880526HMCBNR04';
const STEPS = ['curp', 'product', 'plan', 'contact', 'consents', 'payment', 'confirmation'];
const CUSTOMER = {
  email: 'ana.castro@example.mx',
  phone: '55 1234 5678',
  street: 'Av. Revolución',
  number: '1425',
  neighborhood: 'San Ángel',
  municipality: 'Álvaro Obregón',
  postalCode: '01000',
  state: 'CMX',
};

const log = (message) => process.stdout.write(`${message}\n`);

// ---------- the widget build ----------

function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(ROOT, 'widget'));
  walk(join(ROOT, 'shared'));
  return Math.max(newest, statSync(join(ROOT, 'vite.config.ts')).mtimeMs);
}

function ensureWidget(mode) {
  const bundle = join(WIDGET_DIR, 'kasu-checkout.js');
  const stale = !existsSync(bundle) || statSync(bundle).mtimeMs < newestSource();
  if (mode === 'never' || (mode === 'auto' && !stale)) {
    if (!existsSync(bundle)) throw new Error('dist/widget/kasu-checkout.js is missing: run npx vite build (or drop --no-build)');
    log(`widget: reusing ${relative(ROOT, bundle)}${stale ? ' (older than the sources)' : ''}`);
    return;
  }
  log('widget: vite build');
  const result = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (result.status !== 0) throw new Error('vite build failed');
}

// ---------- the BFF ----------

async function startBff() {
  const dataDir = mkdtempSync(join(tmpdir(), 'kasu-screenshots-'));
  const config = loadConfig({ MODE: 'sandbox', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'error' });
  const logger = createLogger({ level: 'error', write: (line) => process.stderr.write(`bff: ${line}\n`) });
  const running = await startServer(config, { logger, widgetDir: WIDGET_DIR, backgroundJobs: false });
  return {
    url: running.url,
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------- the walk ----------

/** Waits until `step` is the one on screen and ready for input (its submit button enabled, the render settled). */
async function reach(page, step) {
  const element = `kasu-step-${step}`;
  await page.waitForFunction(
    (tag) => {
      const host = document.querySelector('kasu-checkout');
      const root = host?.shadowRoot;
      const current = root?.querySelector(tag);
      const button = current?.shadowRoot?.querySelector('[part="submit-button"]');
      return Boolean(current && (tag === 'kasu-step-confirmation' || (button && !button.disabled)));
    },
    element,
    { timeout: 20_000 },
  );
  await page.evaluate(() => document.querySelector('kasu-checkout')?.updateComplete);
}

const inStep = (page, step, selector) => page.locator(`kasu-checkout kasu-step-${step} ${selector}`);

async function submit(page, step) {
  await inStep(page, step, '[part="submit-button"]').click();
}

/** No focus ring in the picture: the focused field or heading loses focus (deep, through the shadow roots). */
async function blur(page) {
  await page.evaluate(() => {
    let active = document.activeElement;
    while (active?.shadowRoot?.activeElement) active = active.shadowRoot.activeElement;
    if (active && 'blur' in active) active.blur();
  });
}

async function shoot(page, file) {
  await blur(page);
  await page.evaluate(() => document.querySelector('kasu-checkout')?.updateComplete);
  const png = await page.locator('kasu-checkout').screenshot({ animations: 'disabled', caret: 'hide', scale: 'css' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  if (overflow) log(`  warning: the page scrolls horizontally at ${VIEWPORT.width}px (${file})`);
  return png;
}

/**
 * One purchase from the CURP to the confirmation in a context of its own; `onStep(step, png)` receives each picture
 * and may return false to stop the walk there.
 */
async function walk(browser, baseUrl, { locale, dark }, onStep) {
  const context = await browser.newContext({
    viewport: VIEWPORT,
    deviceScaleFactor: 1,
    locale,
    colorScheme: dark ? 'dark' : 'light',
    reducedMotion: 'reduce',
  });
  const problems = [];
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  // Not page script: Playwright's init scripts are outside the page's CSP.
  await page.addInitScript(() => {
    document.addEventListener('kasu-complete', (event) => {
      window.__kasuComplete = event.detail;
    });
  });
  let pictures;
  try {
    pictures = await purchase(page, { locale, dark }, baseUrl, onStep);
  } finally {
    await context.close();
  }
  if (problems.length) throw new Error(`errors on the page (${locale}${dark ? ', dark' : ''}):\n  ${problems.join('\n  ')}`);
  return pictures;
}

/** The customer's part of the walk: the demo page, then each step filled in, pictured and sent. */
async function purchase(page, { locale, dark }, baseUrl, onStep) {
  await page.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
  const query = new URLSearchParams({ ...(locale === 'es-MX' ? {} : { locale }), ...(dark ? { theme: 'auto' } : {}) });
  await page.goto(`${baseUrl}/${query.size ? `?${query}` : ''}`);
  await page.waitForFunction(() => customElements.get('kasu-checkout') !== undefined);
  // The page's own options, set on the element when this BFF's demo route does not read the query yet.
  const wanted = { ...(locale === 'es-MX' ? {} : { locale }), ...(dark ? { theme: 'auto' } : {}) };
  const missing = await page.evaluate((attributes) => {
    const element = document.querySelector('kasu-checkout');
    const set = [];
    for (const [name, value] of Object.entries(attributes)) {
      if (element.getAttribute(name) !== value) {
        element.setAttribute(name, value);
        set.push(name);
      }
    }
    return set;
  }, wanted);
  if (missing.length) log(`  note: the demo page did not set ${missing.join(', ')} from the query; set on the element`);

  const pictures = [];
  const step = async (name, act) => {
    await reach(page, name);
    await act?.();
    const png = await shoot(page, name);
    pictures.push(name);
    return (await onStep(name, png)) !== false;
  };

  if (!(await step('curp', () => inStep(page, 'curp', '#curp').fill(CURP)))) return pictures;
  await submit(page, 'curp');

  if (!(await step('product', () => inStep(page, 'product', '#product-Funerario').check()))) return pictures;
  await submit(page, 'product');

  if (!(await step('plan', () => inStep(page, 'plan', 'input[name="plan"]').first().check()))) return pictures;
  await submit(page, 'plan');

  const contact = async () => {
    await inStep(page, 'contact', '#email').fill(CUSTOMER.email);
    await inStep(page, 'contact', '#phone').fill(CUSTOMER.phone);
    await inStep(page, 'contact', '#street').fill(CUSTOMER.street);
    await inStep(page, 'contact', '#number').fill(CUSTOMER.number);
    await inStep(page, 'contact', '#neighborhood').fill(CUSTOMER.neighborhood);
    await inStep(page, 'contact', '#municipality').fill(CUSTOMER.municipality);
    await inStep(page, 'contact', '#postal-code').fill(CUSTOMER.postalCode);
    await inStep(page, 'contact', '#state').selectOption(CUSTOMER.state);
  };
  if (!(await step('contact', contact))) return pictures;
  await submit(page, 'contact');

  const consents = async () => {
    for (const id of ['terms', 'privacy', 'trust']) await inStep(page, 'consents', `#consent-${id}`).check();
  };
  if (!(await step('consents', consents))) return pictures;
  await submit(page, 'consents');

  if (!(await step('payment', () => inStep(page, 'payment', '#payment-email').check()))) return pictures;
  await submit(page, 'payment');

  const confirmation = async () => {
    await page.waitForFunction(() => window.__kasuComplete !== undefined, undefined, { timeout: 20_000 });
    const { policy, reference } = await page.evaluate(() => window.__kasuComplete);
    const shown = await inStep(page, 'confirmation', '[part="policy"]').first().textContent();
    if (policy && !shown?.includes(policy)) throw new Error(`kasu-complete said policy ${policy}, the page shows "${shown}"`);
    log(`  registered ${reference}, policy ${policy ?? '(pending)'}`);
  };
  await step('confirmation', confirmation);
  return pictures;
}

// ---------- main ----------

/** The light scheme's first picture per locale, to tell whether the dark scheme looks any different. */
const lightCurp = new Map();
let skipDark = false;

async function main(argv) {
  const unknown = argv.filter((arg) => !['--build', '--no-build'].includes(arg));
  if (unknown.length) {
    process.stderr.write(`unknown option ${unknown.join(' ')}\nusage: node --import tsx scripts/screenshots.mjs [--build | --no-build]\n`);
    return 2;
  }
  ensureWidget(argv.includes('--build') ? 'always' : argv.includes('--no-build') ? 'never' : 'auto');
  mkdirSync(OUT_DIR, { recursive: true });
  for (const file of readdirSync(OUT_DIR)) {
    if (/^(es-MX|en)(-dark)?-\d-[a-z]+\.png$/.test(file)) rmSync(join(OUT_DIR, file));
  }

  const browser = await launchChromium();
  const written = [];
  try {
    for (const dark of [false, true]) {
      for (const locale of ['es-MX', 'en']) {
        log(`${locale}${dark ? ' dark' : ''}:`);
        const bff = await startBff();
        try {
          await walk(browser, bff.url, { locale, dark }, (step, png) => {
            const n = STEPS.indexOf(step) + 1;
            const name = `${locale}${dark ? '-dark' : ''}-${n}-${step}.png`;
            if (dark) {
              const light = lightCurp.get(locale);
              if (step === 'curp' && light && light.equals(png)) {
                log('  the dark scheme looks exactly like the light one: no dark screenshots');
                skipDark = true;
                return false;
              }
            } else if (step === 'curp') lightCurp.set(locale, png);
            writeFileSync(join(OUT_DIR, name), png);
            written.push(name);
            log(`  ${relative(ROOT, join(OUT_DIR, name))}`);
            return true;
          });
        } finally {
          await bff.close();
        }
        if (skipDark) break;
      }
      if (skipDark) break;
    }
  } finally {
    await browser.close();
  }
  log(`${written.length} screenshots in ${relative(ROOT, OUT_DIR)}/`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`screenshots failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
