/**
 * Khipu API 2.0 request signing: `Authorization: <receiver_id>:<hex HMAC-SHA256>` over
 * `METHOD&enc(url without query)&enc(k1)=enc(v1)&…`, the parameters (query and form together, decoded) sorted by key.
 * Pure: used by the client to sign and by the sandbox to verify, so both sides share one reading of the algorithm,
 * and the tests pin it to the worked example in NOTES.md and to an independent implementation.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type KhipuSignatureInput = {
  receiverId: string;
  secret: string;
  /** Upper-cased before signing. */
  method: string;
  /** The full URL as sent, query string included; its query parameters are signed with the form parameters. */
  url: string;
  /** Form parameters (decoded values exactly as sent). Pairs, so a repeated key is signed once per value. */
  params?: Iterable<readonly [string, string]> | Record<string, string>;
};

const UNRESERVED = /[A-Za-z0-9\-_.~]/;
const encoder = new TextEncoder();
/** `<receiver id>:<64 hex>`. */
const AUTHORIZATION = /^([^:\s]+):([0-9a-fA-F]{64})$/;

/**
 * RFC 3986 percent-encoding: only A-Z a-z 0-9 - _ . ~ stay; every other UTF-8 byte becomes %XX (uppercase), so a
 * space is %20 (never +) and ! ' ( ) * are escaped, unlike encodeURIComponent. Lone surrogates are encoded as U+FFFD,
 * which is what any server decodes them to.
 */
export function rfc3986Encode(value: string): string {
  let out = '';
  for (const char of value) {
    if (UNRESERVED.test(char)) {
      out += char;
      continue;
    }
    for (const byte of encoder.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `k=v&k=v` with rfc3986Encode: a valid form body and query string whose decoded values are exactly what is signed. */
export function encodeKhipuParams(params: Iterable<readonly [string, string]>): string {
  return [...params].map(([key, value]) => `${rfc3986Encode(key)}=${rfc3986Encode(value)}`).join('&');
}

/** The URL before its query (and fragment), and its query parameters decoded as a form decoder does ('+' = space). */
export function splitKhipuUrl(url: string): { base: string; query: Array<[string, string]> } {
  const withoutFragment = url.split('#', 1)[0] ?? '';
  const mark = withoutFragment.indexOf('?');
  if (mark === -1) return { base: withoutFragment, query: [] };
  return { base: withoutFragment.slice(0, mark), query: [...new URLSearchParams(withoutFragment.slice(mark + 1))] };
}

function pairsOf(params: KhipuSignatureInput['params']): Array<[string, string]> {
  if (!params) return [];
  if (Symbol.iterator in params) return [...(params as Iterable<readonly [string, string]>)].map(([k, v]) => [k, v]);
  return Object.entries(params);
}

/** Code point order (= UTF-8 byte order), unlike `<` on strings, which compares UTF-16 code units. */
function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The exact string that is HMAC'd; exported for diagnostics and tests. */
export function khipuStringToSign(input: Pick<KhipuSignatureInput, 'method' | 'url' | 'params'>): string {
  const { base, query } = splitKhipuUrl(input.url);
  const pairs = [...query, ...pairsOf(input.params)].sort(
    ([keyA, valueA], [keyB, valueB]) => compareCodePoints(keyA, keyB) || compareCodePoints(valueA, valueB),
  );
  let text = `${input.method.toUpperCase()}&${rfc3986Encode(base)}`;
  for (const [key, value] of pairs) text += `&${rfc3986Encode(key)}=${rfc3986Encode(value)}`;
  return text;
}

/** The whole Authorization header value: `<receiverId>:<lowercase hex HMAC-SHA256>`. */
export function khipuAuthorization(input: KhipuSignatureInput): string {
  const hash = createHmac('sha256', input.secret).update(khipuStringToSign(input), 'utf8').digest('hex');
  return `${input.receiverId}:${hash}`;
}

/** The receiver id an Authorization header claims, or null when the header is not `<id>:<64 hex>`. */
export function khipuAuthorizationReceiver(header: string | undefined): string | null {
  const match = AUTHORIZATION.exec(header?.trim() ?? '');
  return match?.[1] ?? null;
}

/**
 * Constant-time check of an Authorization header against the expected one for this secret and request.
 * False for a missing or malformed header or another receiver's id.
 */
export function verifyKhipuAuthorization(header: string | undefined, expected: KhipuSignatureInput): boolean {
  const match = AUTHORIZATION.exec(header?.trim() ?? '');
  if (!match) return false;
  // The id compares exactly; the hex in either case (it is a number, and some clients print it upper-case).
  const received = Buffer.from(`${match[1]}:${match[2]!.toLowerCase()}`, 'utf8');
  const wanted = Buffer.from(khipuAuthorization(expected), 'utf8');
  return received.length === wanted.length && timingSafeEqual(received, wanted);
}
