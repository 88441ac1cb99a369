/**
 * The demo partner page served at `/`: what a merchant's page looks like with the widget embedded.
 * Served under a strict Content-Security-Policy (no inline script or style) to prove the widget needs none.
 */
export const DEMO_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export function demoPage(): string {
  return `<!doctype html>
<html lang="es-MX">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Funeraria San Ángel · Contrata tu plan KASU</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/demo.css">
  <script type="module" src="/widget/kasu-checkout.js"></script>
</head>
<body>
  <header class="site">
    <strong>Funeraria San Ángel</strong>
    <span>Sitio de ejemplo de un socio KASU · modo sandbox</span>
  </header>
  <main>
    <h1>Protege a tu familia con un plan KASU</h1>
    <p>Contrata en línea con tu CURP. Sin papeleo.</p>
    <kasu-checkout api=""></kasu-checkout>
  </main>
  <footer>
    <p>Página de demostración. Los pagos y registros ocurren en los simuladores de los proveedores.</p>
  </footer>
</body>
</html>
`;
}

export const DEMO_CSS = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f5f3ef; color: #1f1b16; }
.site { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: baseline; padding: 1rem 1.5rem; background: #2d2a26; color: #fff; }
.site span { font-size: 0.875rem; opacity: 0.85; }
main { max-width: 40rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.75rem; margin: 0.5rem 0; }
footer { text-align: center; font-size: 0.875rem; padding: 1rem; color: #4d4740; }
`;
