import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  encodeKhipuParams,
  khipuAuthorization,
  khipuAuthorizationReceiver,
  khipuStringToSign,
  rfc3986Encode,
  verifyKhipuAuthorization,
} from '../../server/providers/khipu/signature.js';

// ---------- an independent, straightforward reading of NOTES.md, byte by byte ----------

/** RFC 3986: unreserved ASCII bytes stay, every other UTF-8 byte is %XX. */
function referenceEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /^[A-Za-z0-9\-_.~]$/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Form decoding of a query string: '+' is a space, %XX are UTF-8 bytes. */
function referenceDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

function referenceAuthorization(
  receiverId: string,
  secret: string,
  method: string,
  url: string,
  form: Array<[string, string]>,
): string {
  const [base = '', query = ''] = url.split('?');
  const pairs: Array<[string, string]> = query
    .split('&')
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      return eq === -1 ? [referenceDecode(part), ''] : [referenceDecode(part.slice(0, eq)), referenceDecode(part.slice(eq + 1))];
    });
  pairs.push(...form);
  const bytes = (text: string) => Buffer.from(text, 'utf8');
  pairs.sort((a, b) => Buffer.compare(bytes(a[0]), bytes(b[0])) || Buffer.compare(bytes(a[1]), bytes(b[1])));
  const toSign = `${method.toUpperCase()}&${referenceEncode(base)}${pairs.map(([k, v]) => `&${referenceEncode(k)}=${referenceEncode(v)}`).join('')}`;
  return `${receiverId}:${createHmac('sha256', secret).update(toSign).digest('hex')}`;
}

describe('khipuAuthorization', () => {
  it('when signing the worked example of NOTES.md, then the string and the header are exactly the documented ones', () => {
    const input = {
      receiverId: '1234',
      secret: 'abc123',
      method: 'POST',
      url: 'https://khipu.com/api/2.0/payments',
      params: { subject: 'ejemplo de compra', amount: '1000', currency: 'CLP' },
    };
    expect(khipuStringToSign(input)).toBe(
      'POST&https%3A%2F%2Fkhipu.com%2Fapi%2F2.0%2Fpayments&amount=1000&currency=CLP&subject=ejemplo%20de%20compra',
    );
    expect(khipuAuthorization(input)).toBe('1234:7a1c8e431b41b4546140f03d7e818633519d699f6bd095afeae3a9a352091377');
  });

  it('when the amount is written differently (1000 vs 1000.0), then the signature differs: the exact string sent is signed', () => {
    const sign = (amount: string) =>
      khipuAuthorization({ receiverId: '1234', secret: 'abc123', method: 'POST', url: 'https://khipu.com/api/2.0/payments', params: { amount } });
    expect(sign('1000')).not.toBe(sign('1000.0'));
  });

  it('when query and form parameters come together, then they are merged, decoded and sorted by key', () => {
    const url = 'https://khipu.com/api/2.0/payments?z=%C3%BAltimo&notification_token=abc+def&a=1';
    expect(khipuStringToSign({ method: 'get', url, params: [['m', 'x y']] })).toBe(
      'GET&https%3A%2F%2Fkhipu.com%2Fapi%2F2.0%2Fpayments&a=1&m=x%20y&notification_token=abc%20def&z=%C3%BAltimo',
    );
  });

  it('when a key repeats, then every pair is signed, sorted by value', () => {
    const text = khipuStringToSign({ method: 'POST', url: 'https://k/x?k=b', params: [['k', 'c'], ['k', 'a'], ['j', '']] });
    expect(text).toBe('POST&https%3A%2F%2Fk%2Fx&j=&k=a&k=b&k=c');
  });

  it('when a URL has a fragment, then neither it nor the query is part of the signed URL', () => {
    expect(khipuStringToSign({ method: 'GET', url: 'https://k/x?a=1#frag' })).toBe('GET&https%3A%2F%2Fk%2Fx&a=1');
  });

  const cases: Array<{ name: string; method: string; url: string; form: Array<[string, string]> }> = [
    { name: 'spaces and accents', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['subject', 'Compra en línea de Ñandú'], ['body', 'año  nuevo ']] },
    { name: 'the characters encodeURIComponent leaves alone', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['subject', "¡Hola! it's (mine) *now* ~ok~"]] },
    { name: 'form delimiters in values', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['custom', 'a+b&c=d;e,f'], ['transaction_id', '=&+']] },
    { name: 'slashes, colons and a URL as a value', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['return_url', 'https://shop.example/back?x=1&y=a b#top'], ['path', '/a/b\\c']] },
    { name: 'empty values', method: 'POST', url: 'https://khipu.com/api/2.0/payments/abc/refunds', form: [['amount', ''], ['', 'empty key']] },
    { name: 'query and form together', method: 'POST', url: 'https://khipu.com/api/2.0/payments?b=2&a=%21%27%28%29%2A', form: [['c', '3'], ['a', '0']] },
    { name: 'repeated keys', method: 'POST', url: 'https://khipu.com/api/2.0/payments?tag=z&tag=a', form: [['tag', 'm'], ['tag', 'a']] },
    { name: 'a GET with only a query', method: 'GET', url: 'http://127.0.0.1:8080/sandbox/khipu/api/2.0/payments?notification_token=Abc123', form: [] },
    { name: 'a DELETE without parameters', method: 'delete', url: 'https://khipu.com/api/2.0/payments/gqzdy6chjne9', form: [] },
    { name: 'emoji and other scripts', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['subject', 'pago 💳 支付 €'], ['b[0]', 'brackets']] },
    { name: 'keys that differ only after encoding', method: 'POST', url: 'https://khipu.com/api/2.0/payments', form: [['a b', '1'], ['a+b', '2'], ['a~b', '3'], ['añ', '4'], ['az', '5']] },
  ];
  for (const { name, method, url, form } of cases) {
    it(`when signing ${name}, then the header equals an independent byte-level implementation`, () => {
      const expected = referenceAuthorization('987654', 's3cr3t ñ', method, url, form);
      expect(khipuAuthorization({ receiverId: '987654', secret: 's3cr3t ñ', method, url, params: form })).toBe(expected);
    });
  }
});

describe('rfc3986Encode', () => {
  it('when a text has reserved, unreserved and non-ASCII characters, then only A-Z a-z 0-9 - _ . ~ stay and bytes are uppercase %XX', () => {
    expect(rfc3986Encode('AZaz09-_.~')).toBe('AZaz09-_.~');
    expect(rfc3986Encode("! ' ( ) *")).toBe('%21%20%27%20%28%20%29%20%2A');
    expect(rfc3986Encode('+&=/?#%:@')).toBe('%2B%26%3D%2F%3F%23%25%3A%40');
    expect(rfc3986Encode('ñáü')).toBe('%C3%B1%C3%A1%C3%BC');
    expect(rfc3986Encode('💳')).toBe('%F0%9F%92%B3');
    expect(rfc3986Encode('')).toBe('');
  });

  it('when compared with encodeURIComponent, then they differ exactly on ! \' ( ) *', () => {
    const sample = "Pago de año ¡ya! (O'Higgins) *x* ~ ñ/€";
    const fixed = encodeURIComponent(sample).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    expect(rfc3986Encode(sample)).toBe(fixed);
    expect(rfc3986Encode(sample)).not.toBe(encodeURIComponent(sample));
  });

  it('when a string holds a lone surrogate, then it is encoded as U+FFFD instead of throwing', () => {
    expect(rfc3986Encode('a\uD800b')).toBe('a%EF%BF%BDb');
  });
});

describe('encodeKhipuParams', () => {
  it('when a form body is decoded by a standard form parser, then the very pairs that were signed come back', () => {
    const pairs: Array<[string, string]> = [
      ['subject', 'KASU Funerario · KSU-1 (¡ya!)'],
      ['custom', 'a+b&c=d'],
      ['empty', ''],
      ['tag', 'x'],
      ['tag', 'y'],
    ];
    const body = encodeKhipuParams(pairs);
    expect(body).not.toMatch(/[+ !'()*]/);
    expect([...new URLSearchParams(body)]).toEqual(pairs);
  });
});

describe('verifyKhipuAuthorization', () => {
  const request = { receiverId: '100000', secret: 'sandbox-khipu-secret', method: 'POST', url: 'http://h/api/2.0/payments', params: { amount: '10.00' } };
  const header = khipuAuthorization(request);

  it('when the header is the one computed for the request, then it verifies (hex in either case)', () => {
    expect(verifyKhipuAuthorization(header, request)).toBe(true);
    const [id, hex] = header.split(':');
    expect(verifyKhipuAuthorization(`${id}:${hex!.toUpperCase()}`, request)).toBe(true);
    expect(khipuAuthorizationReceiver(header)).toBe('100000');
  });

  it('when anything differs (a parameter, the secret, the method, the URL, the receiver), then it does not verify', () => {
    expect(verifyKhipuAuthorization(header, { ...request, params: { amount: '10.0' } })).toBe(false);
    expect(verifyKhipuAuthorization(header, { ...request, secret: 'other' })).toBe(false);
    expect(verifyKhipuAuthorization(header, { ...request, method: 'PUT' })).toBe(false);
    expect(verifyKhipuAuthorization(header, { ...request, url: 'https://h/api/2.0/payments' })).toBe(false);
    expect(verifyKhipuAuthorization(header.replace('100000:', '100001:'), request)).toBe(false);
  });

  it('when the header is missing or malformed, then it does not verify and names no receiver', () => {
    for (const bad of [undefined, '', '100000', '100000:', `100000:${'g'.repeat(64)}`, `Bearer ${header}`, `${header}0`]) {
      expect(verifyKhipuAuthorization(bad, request)).toBe(false);
    }
    expect(khipuAuthorizationReceiver('100000:abc')).toBeNull();
  });
});
