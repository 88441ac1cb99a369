/**
 * The demo partner page's Content-Security-Policy, through HTTP: the default strict policy exactly as the BFF sends
 * it, and the nonce variant (`?nonce=1`) for hosts that bootstrap inline: a fresh nonce per response, the same one
 * on the inline script, and never 'unsafe-inline'.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';

const STRICT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** `<script …>` tags of a page, with their attributes. */
function scripts(html: string): Array<{ src: string | null; nonce: string | null; body: string }> {
  return [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].map(([, attributes = '', body = '']) => ({
    src: /\bsrc="([^"]*)"/.exec(attributes)?.[1] ?? null,
    nonce: /\bnonce="([^"]*)"/.exec(attributes)?.[1] ?? null,
    body,
  }));
}

function nonceOf(csp: string, directive: 'script-src' | 'style-src'): string | null {
  const value = csp.split(';').map((part) => part.trim()).find((part) => part.startsWith(`${directive} `)) ?? '';
  return /'nonce-([A-Za-z0-9+/_=-]+)'/.exec(value)?.[1] ?? null;
}

async function get(baseUrl: string, path: string) {
  const response = await fetch(`${baseUrl}${path}`);
  return { status: response.status, headers: response.headers, html: await response.text() };
}

/** Nothing a CSP would have to allow inline: no style attribute, no <style>, no on* handler, no javascript: URL. */
function expectNoInlineStyleOrHandlers(html: string) {
  expect(html).not.toMatch(/<style\b/i);
  expect(html).not.toMatch(/\sstyle=/i);
  expect(html).not.toMatch(/\son[a-z]+=/i);
  expect(html).not.toMatch(/javascript:/i);
}

describe('demo page served by the BFF', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ backgroundJobs: false });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('when the demo page is requested, then it is served under the strict CSP exactly, with no inline script or style', async () => {
    const page = await get(server.url, '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(STRICT_CSP);
    expect(scripts(page.html)).toEqual([{ src: '/widget/kasu-checkout.js', nonce: null, body: '' }]);
    expect(page.html).toContain('<kasu-checkout api=""></kasu-checkout>');
    expectNoInlineStyleOrHandlers(page.html);
  });

  it('when the demo stylesheet is requested, then it is a same-origin file the strict policy allows', async () => {
    const css = await get(server.url, '/demo.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });
});

describe('demo page variants through the BFF', () => {
  let bff: TestServer;
  let baseUrl: string;

  beforeAll(async () => {
    bff = await startTestServer({ backgroundJobs: false });
    baseUrl = bff.url;
  });

  afterAll(async () => {
    await bff?.close();
  });

  it('when no option is given, then the page and its policy are the strict default', async () => {
    const page = await get(baseUrl, '/');
    expect(page.headers.get('content-security-policy')).toBe(STRICT_CSP);
    expect(page.headers.get('cache-control')).toBeNull();
    expect(scripts(page.html)).toEqual([{ src: '/widget/kasu-checkout.js', nonce: null, body: '' }]);
    expectNoInlineStyleOrHandlers(page.html);
  });

  it('when ?nonce=1, then script-src and style-src allow a nonce and the one inline script carries that nonce', async () => {
    const page = await get(baseUrl, '/?nonce=1');
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    const nonce = nonceOf(csp, 'script-src');
    expect(nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/); // 16 random bytes
    expect(csp).toBe(
      `default-src 'self'; script-src 'self' 'nonce-${nonce}'; style-src 'self' 'nonce-${nonce}'; img-src 'self' data:; ` +
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    const inline = scripts(page.html).filter((script) => script.src === null);
    expect(inline).toHaveLength(1);
    expect(inline[0]!.nonce).toBe(nonce);
    // It does something real: shows the policy number on kasu-complete, and hands Lit the nonce.
    expect(inline[0]!.body).toContain("addEventListener('kasu-complete'");
    expect(inline[0]!.body).toContain('event.detail.policy');
    expect(inline[0]!.body).toContain('window.litNonce = document.currentScript.nonce');
    expect(page.html).toContain('id="demo-result"');
    // The widget itself is still a same-origin module, without a nonce.
    expect(scripts(page.html).filter((script) => script.src !== null)).toEqual([
      { src: '/widget/kasu-checkout.js', nonce: null, body: '' },
    ]);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expectNoInlineStyleOrHandlers(page.html);
  });

  it('when ?nonce=1 is requested again, then every response has a nonce of its own', async () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 5; i += 1) {
      const page = await get(baseUrl, '/?nonce=1');
      const nonce = nonceOf(page.headers.get('content-security-policy') ?? '', 'script-src');
      expect(nonce).not.toBeNull();
      expect(scripts(page.html).find((script) => script.src === null)?.nonce).toBe(nonce);
      nonces.add(nonce!);
    }
    expect(nonces.size).toBe(5);
  });

  it('when any variant is served, then no policy allows unsafe-inline or unsafe-eval', async () => {
    for (const path of ['/', '/?nonce=1', '/?locale=en', '/?locale=en&nonce=1&theme=dark&product=Retiro', '/?nonce=true']) {
      const page = await get(baseUrl, path);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp, path).not.toMatch(/unsafe-inline|unsafe-eval|unsafe-hashes|\*/);
      expect(csp, path).toMatch(/(^|; )default-src 'self'(;|$)/);
      // Every inline script is covered by the response's nonce.
      const nonce = nonceOf(csp, 'script-src');
      for (const script of scripts(page.html).filter((s) => s.src === null)) expect(script.nonce, path).toBe(nonce);
    }
  });

  it('when nonce is anything but 1, then the strict default is served', async () => {
    for (const path of ['/?nonce=0', '/?nonce=true', '/?nonce=1&nonce=1', '/?nonce=']) {
      const page = await get(baseUrl, path);
      expect(page.headers.get('content-security-policy'), path).toBe(STRICT_CSP);
      expect(scripts(page.html).filter((script) => script.src === null), path).toEqual([]);
    }
  });

  it('when ?locale=en, then the page and the widget are in English under the same strict policy', async () => {
    const page = await get(baseUrl, '/?locale=en');
    expect(page.headers.get('content-security-policy')).toBe(STRICT_CSP);
    expect(page.html).toContain('<html lang="en">');
    expect(page.html).toContain('<kasu-checkout api="" locale="en"></kasu-checkout>');
    expect(page.html).toContain('Protect your family with a KASU plan');
  });

  it('when product and theme are given, then only allowed values reach the widget', async () => {
    const good = await get(baseUrl, '/?product=Universidad&theme=auto');
    expect(good.html).toContain('<kasu-checkout api="" product="Universidad" theme="auto"></kasu-checkout>');
    const bad = await get(baseUrl, `/?product=${encodeURIComponent('"><script>alert(1)</script>')}&theme=neon&locale=fr`);
    expect(bad.html).toContain('<html lang="es-MX">');
    expect(bad.html).toContain('<kasu-checkout api=""></kasu-checkout>');
    expect(bad.html).not.toContain('alert(1)');
  });
});
