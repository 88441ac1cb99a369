import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cardAuthHeaders, cardBodyHash, verifyCardAuth } from '../../server/providers/card/card-auth.js';

const KEY = 'sandbox-card-key';
const BODY = '{"transactionType":"sale","order":{"amount":"1234.50"}}';
const DATE = 1_780_315_200;
const REQUEST = { method: 'POST', contentType: 'application/json', body: BODY };

describe('card gateway authentication headers', () => {
  it('when a POST is signed with the defaults, then the headers are hex SHA-256 of the body, unix seconds and scrty :HMAC of method|type|hash|date', () => {
    const bodyHash = createHash('sha256').update(BODY).digest('hex');
    const expected = createHmac('sha256', KEY).update(`POST|application/json|${bodyHash}|${DATE}`).digest('hex');
    expect(cardAuthHeaders(KEY, REQUEST, {}, DATE)).toEqual({
      'x-scrty-content-sha256': bodyHash,
      'x-scrty-date': String(DATE),
      authorization: `scrty :${expected}`,
    });
  });

  it('when base64 and another separator are configured, then both digests are base64 and the string to sign uses the separator', () => {
    const bodyHash = createHash('sha256').update(BODY).digest('base64');
    const expected = createHmac('sha256', KEY).update(`POST\napplication/json\n${bodyHash}\n${DATE}`).digest('base64');
    const headers = cardAuthHeaders(KEY, REQUEST, { encoding: 'base64', separator: '\n' }, DATE);
    expect(headers['x-scrty-content-sha256']).toBe(bodyHash);
    expect(headers.authorization).toBe(`scrty :${expected}`);
  });

  it('when a GET has no body, then the hash is the SHA-256 of the empty string and the content type is empty', () => {
    const headers = cardAuthHeaders(KEY, { method: 'get', contentType: '', body: '' }, {}, DATE);
    expect(headers['x-scrty-content-sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const expected = createHmac('sha256', KEY).update(`GET||${cardBodyHash('')}|${DATE}`).digest('hex');
    expect(headers.authorization).toBe(`scrty :${expected}`);
  });

  it('when the same request is verified with the same key within five minutes, then it is accepted', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    expect(verifyCardAuth(KEY, { ...REQUEST, headers }, { nowSeconds: DATE + 299 })).toEqual({ ok: true });
    expect(verifyCardAuth(KEY, { ...REQUEST, body: Buffer.from(BODY), headers }, { nowSeconds: DATE - 299 })).toEqual({ ok: true });
  });

  it('when the body was tampered with, then it is refused as a body hash mismatch', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    const tampered = BODY.replace('1234.50', '1.00');
    expect(verifyCardAuth(KEY, { ...REQUEST, body: tampered, headers }, { nowSeconds: DATE })).toEqual({ ok: false, reason: 'body-hash-mismatch' });
  });

  it('when the body and its hash were both replaced, then the HMAC no longer matches', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    const tampered = BODY.replace('1234.50', '1.00');
    const forged = { ...headers, 'x-scrty-content-sha256': cardBodyHash(tampered) };
    expect(verifyCardAuth(KEY, { ...REQUEST, body: tampered, headers: forged }, { nowSeconds: DATE })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('when signed with another key, then it is refused', () => {
    const headers = cardAuthHeaders('another-key', REQUEST, {}, DATE);
    expect(verifyCardAuth(KEY, { ...REQUEST, headers }, { nowSeconds: DATE })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('when the date is more than five minutes away, then it is refused as stale, even if the date header was rewritten', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    expect(verifyCardAuth(KEY, { ...REQUEST, headers }, { nowSeconds: DATE + 301 })).toEqual({ ok: false, reason: 'stale-date' });
    expect(verifyCardAuth(KEY, { ...REQUEST, headers }, { nowSeconds: DATE - 301 })).toEqual({ ok: false, reason: 'stale-date' });
    const rewritten = { ...headers, 'x-scrty-date': String(DATE + 600) };
    expect(verifyCardAuth(KEY, { ...REQUEST, headers: rewritten }, { nowSeconds: DATE + 600 })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('when the method, content type or encoding differ from what was signed, then it is refused', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    expect(verifyCardAuth(KEY, { ...REQUEST, method: 'PUT', headers }, { nowSeconds: DATE }).ok).toBe(false);
    expect(verifyCardAuth(KEY, { ...REQUEST, contentType: 'text/plain', headers }, { nowSeconds: DATE }).ok).toBe(false);
    expect(verifyCardAuth(KEY, { ...REQUEST, headers }, { nowSeconds: DATE, encoding: 'base64' }).ok).toBe(false);
  });

  it('when a header is missing or the scheme is not scrty, then it is refused as missing headers', () => {
    const headers = cardAuthHeaders(KEY, REQUEST, {}, DATE);
    const { 'x-scrty-date': _date, ...withoutDate } = headers;
    expect(verifyCardAuth(KEY, { ...REQUEST, headers: withoutDate }, { nowSeconds: DATE })).toEqual({ ok: false, reason: 'missing-headers' });
    const bearer = { ...headers, authorization: headers.authorization.replace('scrty :', 'Bearer ') };
    expect(verifyCardAuth(KEY, { ...REQUEST, headers: bearer }, { nowSeconds: DATE })).toEqual({ ok: false, reason: 'missing-headers' });
  });
});
