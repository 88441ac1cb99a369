/**
 * The demo partner page served at `/`: what a merchant's page looks like with the widget embedded.
 * Served under a strict Content-Security-Policy (no inline script or style) to prove the widget needs none.
 *
 * Query options (allow-listed; anything else is ignored):
 *   ?locale=en           the page and the widget in English (default es-MX)
 *   ?product=Funerario   the product chosen in advance (Funerario, Universidad or Retiro)
 *   ?theme=dark          the widget's theme (light, dark or auto)
 *   ?nonce=1             the variant for hosts that need inline bootstrapping: every response gets a fresh random
 *                        nonce, allowed in `script-src` and `style-src` next to 'self', and an inline
 *                        `<script nonce>` that shows the policy number when `kasu-complete` fires and hands the
 *                        nonce to Lit (`window.litNonce`), which uses it only in browsers without constructable
 *                        stylesheets. The widget itself needs neither: the nonce is for the host's own script.
 *
 * `serveDemoPage` is the route handler (`app.get('/', serveDemoPage)`); `demoPage()` and `DEMO_CSP` are the
 * default page and its policy.
 */
import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import { PRODUCTS, type Product } from '../../shared/products.js';

export type DemoLocale = 'es-MX' | 'en';
export const DEMO_THEMES = ['light', 'dark', 'auto'] as const;
export type DemoTheme = (typeof DEMO_THEMES)[number];

export type DemoOptions = {
  locale?: DemoLocale;
  product?: Product;
  theme?: DemoTheme;
  /** Serve the inline bootstrapping script with this nonce (and allow it in the CSP). */
  nonce?: string;
};

/** The demo page's policy; with a nonce, that nonce is allowed for scripts and styles besides 'self'. */
export function demoCsp(nonce?: string): string {
  const withNonce = nonce ? ` 'nonce-${nonce}'` : '';
  return [
    "default-src 'self'",
    `script-src 'self'${withNonce}`,
    `style-src 'self'${withNonce}`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

export const DEMO_CSP = demoCsp();

/** 128 random bits, base64: a new one for every response that carries inline script. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

const COPY = {
  'es-MX': {
    title: 'Funeraria San Ángel · Contrata tu plan KASU',
    tagline: 'Sitio de ejemplo de un socio KASU · modo sandbox',
    heading: 'Protege a tu familia con un plan KASU',
    lead: 'Contrata en línea con tu CURP. Sin papeleo.',
    footer: 'Página de demostración. Los pagos y registros ocurren en los simuladores de los proveedores.',
    policy: 'Tu número de póliza: ',
    reference: 'Tu referencia de compra: ',
  },
  en: {
    title: 'San Ángel Funeral Home · Get your KASU plan',
    tagline: 'Example site of a KASU partner · sandbox mode',
    heading: 'Protect your family with a KASU plan',
    lead: 'Buy online with your CURP. No paperwork.',
    footer: "Demo page. Payments and registrations happen in the providers' simulators.",
    policy: 'Your policy number: ',
    reference: 'Your purchase reference: ',
  },
} as const satisfies Record<DemoLocale, Record<string, string>>;

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);

/** A JSON string literal that is safe inside an inline `<script>` (no `</script>`, no `<!--`). */
const scriptString = (text: string) => JSON.stringify(text).replace(/</g, '\\u003c');

/**
 * The host's inline bootstrapping, allowed by the response's nonce only. It shows the policy number in the page when
 * the purchase is registered, and gives Lit the nonce for the `<style>` elements it adds in browsers without
 * constructable stylesheets (`adoptedStyleSheets`); modern browsers need no inline style at all.
 */
function bootstrapScript(nonce: string, locale: DemoLocale): string {
  const copy = COPY[locale];
  return `<script nonce="${escapeHtml(nonce)}">
    window.litNonce = document.currentScript.nonce;
    document.addEventListener('kasu-complete', function (event) {
      var result = document.getElementById('demo-result');
      var policy = event.detail.policy;
      result.textContent = policy ? ${scriptString(copy.policy)} + policy : ${scriptString(copy.reference)} + event.detail.reference;
    });
  </script>`;
}

export function demoPage(options: DemoOptions = {}): string {
  const locale = options.locale ?? 'es-MX';
  const copy = COPY[locale];
  const attributes = [
    'api=""',
    ...(locale !== 'es-MX' ? [`locale="${locale}"`] : []),
    ...(options.product ? [`product="${escapeHtml(options.product)}"`] : []),
    ...(options.theme ? [`theme="${escapeHtml(options.theme)}"`] : []),
  ].join(' ');
  const bootstrap = options.nonce ? `\n  ${bootstrapScript(options.nonce, locale)}` : '';
  const result = options.nonce ? '\n    <p id="demo-result" class="demo-result" role="status"></p>' : '';
  return `<!doctype html>
<html lang="${locale}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(copy.title)}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/demo.css">${bootstrap}
  <script type="module" src="/widget/kasu-checkout.js"></script>
</head>
<body>
  <header class="site">
    <strong>Funeraria San Ángel</strong>
    <span>${escapeHtml(copy.tagline)}</span>
  </header>
  <main>
    <h1>${escapeHtml(copy.heading)}</h1>
    <p>${escapeHtml(copy.lead)}</p>
    <kasu-checkout ${attributes}></kasu-checkout>${result}
  </main>
  <footer>
    <p>${escapeHtml(copy.footer)}</p>
  </footer>
</body>
</html>
`;
}

const single = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** The page's options from its query string; unknown or malformed values are ignored. */
export function demoOptionsFrom(query: Record<string, unknown>): Omit<DemoOptions, 'nonce'> & { nonce: boolean } {
  const locale = single(query.locale);
  const product = single(query.product);
  const theme = single(query.theme);
  return {
    ...(locale && /^en\b/i.test(locale) ? { locale: 'en' as const } : {}),
    ...(PRODUCTS.includes(product as Product) ? { product: product as Product } : {}),
    ...(DEMO_THEMES.includes(theme as DemoTheme) ? { theme: theme as DemoTheme } : {}),
    nonce: single(query.nonce) === '1',
  };
}

/** GET / : the demo page, with its CSP (a fresh nonce per response for `?nonce=1`, never cached). */
export const serveDemoPage: RequestHandler = (req, res) => {
  const { nonce: wantsNonce, ...options } = demoOptionsFrom(req.query as Record<string, unknown>);
  const nonce = wantsNonce ? newNonce() : undefined;
  res.setHeader('Content-Security-Policy', demoCsp(nonce));
  // A cached page would replay its nonce.
  if (nonce) res.setHeader('Cache-Control', 'no-store');
  res.type('html').send(demoPage({ ...options, ...(nonce ? { nonce } : {}) }));
};

export const DEMO_CSS = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f5f3ef; color: #1f1b16; }
.site { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: baseline; padding: 1rem 1.5rem; background: #2d2a26; color: #fff; }
.site span { font-size: 0.875rem; opacity: 0.85; }
main { max-width: 40rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.75rem; margin: 0.5rem 0; }
.demo-result { font-weight: 600; }
.demo-result:empty { margin: 0; }
footer { text-align: center; font-size: 0.875rem; padding: 1rem; color: #4d4740; }
`;
