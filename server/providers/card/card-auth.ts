/**
 * The card gateway's authentication headers (NOTES.md, "Card gateway"), pure so that the adapter signs and the
 * sandbox verifies with the same code:
 *
 *   x-scrty-content-sha256: SHA-256 of the exact body bytes sent ("" for a GET)
 *   x-scrty-date:           unix seconds
 *   Authorization:          scrty :<HMAC-SHA256(key, METHOD|Content-Type|body-sha|date)>
 *
 * Which digest encoding the gateway expects (hex or base64) and the exact separator of the string to sign are not
 * public *(unverified)*: both are options, default hex and "|". The same encoding applies to the body hash and to the
 * HMAC. Content-Type is the header exactly as sent, "" when the request has none.
 * The key only feeds the HMAC: nothing here returns or logs it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type CardAuthEncoding = 'hex' | 'base64';

export type CardAuthOptions = {
  /** Digest encoding of the body hash and the HMAC; default 'hex'. */
  encoding?: CardAuthEncoding;
  /** Between METHOD, Content-Type, body hash and date in the string to sign; default '|'. */
  separator?: string;
  /** What precedes the HMAC in Authorization; default 'scrty :' (as NOTES.md writes it). */
  authorizationPrefix?: string;
};

export type CardAuthRequest = {
  method: string;
  /** The Content-Type header as sent, '' when none. */
  contentType: string;
  /** The exact body sent ('' for none). */
  body: string | Uint8Array;
};

export type CardAuthHeaders = {
  'x-scrty-content-sha256': string;
  'x-scrty-date': string;
  authorization: string;
};

export const CARD_AUTH_TOLERANCE_SECONDS = 300;

const DEFAULTS = { encoding: 'hex', separator: '|', authorizationPrefix: 'scrty :' } as const;

export function cardBodyHash(body: string | Uint8Array, encoding: CardAuthEncoding = DEFAULTS.encoding): string {
  return createHash('sha256').update(body).digest(encoding);
}

/** METHOD|Content-Type|body-sha|date, with the configured separator. */
export function cardStringToSign(request: Omit<CardAuthRequest, 'body'> & { bodyHash: string; date: string }, options: CardAuthOptions = {}): string {
  const separator = options.separator ?? DEFAULTS.separator;
  return [request.method.toUpperCase(), request.contentType, request.bodyHash, request.date].join(separator);
}

function signature(key: string, stringToSign: string, encoding: CardAuthEncoding): string {
  return createHmac('sha256', key).update(stringToSign).digest(encoding);
}

/** The three headers for one request; `dateSeconds` defaults to now. */
export function cardAuthHeaders(
  key: string,
  request: CardAuthRequest,
  options: CardAuthOptions = {},
  dateSeconds: number = Math.floor(Date.now() / 1000),
): CardAuthHeaders {
  const encoding = options.encoding ?? DEFAULTS.encoding;
  const bodyHash = cardBodyHash(request.body, encoding);
  const date = String(Math.floor(dateSeconds));
  const toSign = cardStringToSign({ method: request.method, contentType: request.contentType, bodyHash, date }, options);
  return {
    'x-scrty-content-sha256': bodyHash,
    'x-scrty-date': date,
    authorization: `${options.authorizationPrefix ?? DEFAULTS.authorizationPrefix}${signature(key, toSign, encoding)}`,
  };
}

export type CardAuthFailure = 'missing-headers' | 'body-hash-mismatch' | 'stale-date' | 'bad-signature';
export type CardAuthVerdict = { ok: true } | { ok: false; reason: CardAuthFailure };

/**
 * Checks a received request's headers (names lowercase, as node gives them) against the key: the body hash must be
 * the hash of the body received, the date within ±`toleranceSeconds` of `nowSeconds`, and the HMAC equal (compared
 * in constant time).
 */
export function verifyCardAuth(
  key: string,
  request: CardAuthRequest & { headers: Record<string, string | string[] | undefined> },
  options: CardAuthOptions & { nowSeconds?: number; toleranceSeconds?: number } = {},
): CardAuthVerdict {
  const encoding = options.encoding ?? DEFAULTS.encoding;
  const prefix = options.authorizationPrefix ?? DEFAULTS.authorizationPrefix;
  const bodyHash = single(request.headers['x-scrty-content-sha256']);
  const date = single(request.headers['x-scrty-date']);
  const authorization = single(request.headers.authorization);
  if (!bodyHash || !date || !authorization || !authorization.startsWith(prefix)) return { ok: false, reason: 'missing-headers' };
  if (!sameText(bodyHash, cardBodyHash(request.body, encoding))) return { ok: false, reason: 'body-hash-mismatch' };
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? CARD_AUTH_TOLERANCE_SECONDS;
  if (!/^\d{1,12}$/.test(date) || Math.abs(Number(date) - nowSeconds) > tolerance) return { ok: false, reason: 'stale-date' };
  const toSign = cardStringToSign({ method: request.method, contentType: request.contentType, bodyHash, date }, options);
  if (!sameText(authorization.slice(prefix.length), signature(key, toSign, encoding))) return { ok: false, reason: 'bad-signature' };
  return { ok: true };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // timingSafeEqual needs equal lengths; comparing b with itself keeps the time independent of where they differ.
  return left.length === right.length ? timingSafeEqual(left, right) : !timingSafeEqual(right, right);
}
