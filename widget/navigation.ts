/**
 * The widget and the page's address: where a payment provider sends the customer back, what it says when it
 * does (`?kasu_payment=cancelled`), and leaving the page to pay. Small on purpose: it is in the first paint.
 */

/** The query parameter the BFF adds to the return address when the customer cancels at the provider. */
const RETURN_PARAM = 'kasu_payment';
/** The contract's limit for `returnUrl`. */
const MAX_RETURN_URL = 2000;

/**
 * Leaving the page. An object rather than a bare function so that browser tests can replace `assign` and see
 * where the customer would have gone without leaving the test page.
 */
export const navigation = {
  assign(url: string): void {
    window.location.assign(url);
  },
};

/** This page as the provider should send the customer back to it: without our own parameter. */
export function returnUrl(): string | undefined {
  const url = new URL(window.location.href);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  // Only when present: deleting re-encodes the whole query, and the page's own parameters must come back as they were.
  if (url.searchParams.has(RETURN_PARAM)) url.searchParams.delete(RETURN_PARAM);
  // Tracking parameters can make an address longer than the BFF accepts; the page itself is what matters.
  return url.href.length <= MAX_RETURN_URL ? url.href : `${url.origin}${url.pathname}`;
}

/** What the provider said on the way back ("cancelled"), read once: the parameter leaves the address bar. */
export function takePaymentReturn(): string | null {
  const url = new URL(window.location.href);
  const value = url.searchParams.get(RETURN_PARAM);
  if (value === null) return null;
  url.searchParams.delete(RETURN_PARAM);
  try {
    history.replaceState(history.state, '', url.href);
  } catch {
    // A sandboxed frame may refuse; the parameter only stays visible.
  }
  return value;
}
