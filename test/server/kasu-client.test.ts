import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { failure } from '../support/provider-errors.js';
import { sendJson, startStubServer } from '../support/stub-server.js';
import { AppError, type ProviderError } from '../../server/errors.js';
import { createMemoryLogger } from '../../server/log.js';
import { KasuClient, type KasuConfig, type KasuRegistration } from '../../server/providers/kasu/kasu-client.js';
import {
  SANDBOX_CURPS,
  SANDBOX_PRIVATE_KEY,
  SANDBOX_UNKNOWN_CURP,
  SANDBOX_USER,
  startKasuSandbox,
} from '../../server/sandbox/kasu/kasu-sandbox.js';

/** 1 June 2026, noon UTC: the ages in SANDBOX_CURPS' notes hold on this day. */
const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const MINUTE = 60_000;

const CARLOS = 'CAMC880526HMCBNR04'; // 38: Funerario 30a49, Retiro
const CHILD = 'CAPC200504HMCBXRA2'; // 6: Universidad
function curpNoted(text: string): string {
  const person = SANDBOX_CURPS.find((p) => p.note.includes(text));
  if (!person) throw new Error(`no sandbox CURP noted "${text}"`);
  return person.curp;
}
const NON_BINARY = curpNoted('sex X');
const OLDEST = curpNoted('70+');
const DECEASED = curpNoted('deceased');

let sandbox: Awaited<ReturnType<typeof startKasuSandbox>>;
let sandboxNow = BASE_NOW;
let clientNow = BASE_NOW;
const clients: KasuClient[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startKasuSandbox({ now: () => sandboxNow });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  sandboxNow = BASE_NOW;
  clientNow = BASE_NOW;
  sandbox.state.reset();
});
afterEach(async () => {
  await Promise.all([...clients.splice(0).map((client) => client.close()), ...closers.splice(0).map((close) => close())]);
});

function config(overrides: Partial<KasuConfig> = {}): KasuConfig {
  return {
    baseUrl: sandbox.url,
    user: SANDBOX_USER,
    privateKey: SANDBOX_PRIVATE_KEY,
    paths: { tokenFull: '', modifyRecord: '', newService: '' },
    timeouts: { connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000 },
    tokenRefreshSkewSeconds: 30,
    userAgent: 'kasu-checkout-test/0.1',
    ...overrides,
  };
}

function makeClient(overrides: Partial<KasuConfig> = {}, logger = createMemoryLogger()): KasuClient {
  const client = new KasuClient(config(overrides), { now: () => clientNow, logger });
  clients.push(client);
  return client;
}

function registration(curp: string, overrides: Partial<KasuRegistration> = {}): KasuRegistration {
  return {
    curp,
    email: `${curp.toLowerCase()}@example.com`,
    phone: `55${curp.slice(4, 10).replace(/\D/g, '0')}00`,
    product: 'Funerario',
    instalments: 12,
    consents: { terms: true, privacy: true, trust: true },
    address: {
      street: 'Avenida Insurgentes Sur',
      number: '1602',
      neighborhood: 'Crédito Constructor',
      municipality: 'Benito Juárez',
      postalCode: '03940',
      stateName: 'Ciudad de México',
    },
    ...overrides,
  };
}


type Captured = { path: string; headers: IncomingMessage['headers']; body: Record<string, unknown> };

/** A stand-in for KASU when the sandbox cannot misbehave the way a test needs (JSON bodies parsed). */
async function stub(
  handle: (body: Record<string, unknown>, res: ServerResponse) => void,
): Promise<{ url: string; requests: Captured[] }> {
  const server = await startStubServer((req, res) => handle(req.body ? JSON.parse(req.body) : {}, res));
  closers.push(server.close);
  return {
    url: server.url,
    get requests() {
      return server.requests.map((r) => ({ path: r.url, headers: r.headers, body: r.body ? JSON.parse(r.body) : {} }));
    },
  };
}

const json = sendJson;

const TOKEN_ANSWER = { ok: true, token: 'stub-token', nombre: 'JOSE CARLOS CABRERA MONROY', token_data: { timestamp: BASE_NOW / 1000, expires_in: 600 } };

describe('KasuClient against the KASU sandbox', () => {
  it('when RENAPO knows the CURP, then verifyCurp returns the name RENAPO holds', async () => {
    const client = makeClient();
    await expect(client.verifyCurp(' camc880526hmcbnr04 ')).resolves.toEqual({ name: 'JOSE CARLOS CABRERA MONROY' });
  });

  it('when verifyCurp, price and register run for one CURP, then one token_full serves them all', async () => {
    const client = makeClient();
    await client.verifyCurp(CARLOS);
    const price = await client.price(CARLOS, 'Funerario');
    const result = await client.register(registration(CARLOS, { instalments: 6 }));

    expect(price).toEqual({ kasuProduct: '30a49', price: 620_000, commission: 49_600, maxInstalments: 12, annualRatePercent: 0 });
    expect(result).toMatchObject({ status: 'PREVENTA', name: 'JOSE CARLOS CABRERA MONROY', price: 620_000, instalments: 6, paymentLink: null });
    expect(result.policy).toMatch(/^[0-9A-F]{20}$/);
    expect(client.tokenRequests(CARLOS)).toBe(1);
    expect(sandbox.state.tokenRequests.get(CARLOS)).toBe(1);
    expect(sandbox.state.registrations).toHaveLength(1);
    expect(sandbox.state.registrations[0]).toMatchObject({ curp: CARLOS, product: 'Funerario', policy: result.policy, instalments: 6 });
  });

  it('when each Funerario age band is priced, then KASU\'s band code and price come back in centavos', async () => {
    const client = makeClient();
    const expected: Array<[string, string, number]> = [
      ['REAE060617MMCYLVA4', '02a29', 450_000],
      [CARLOS, '30a49', 620_000],
      [curpNoted('Funerario 50a54'), '50a54', 840_000],
      [curpNoted('Funerario 55a59'), '55a59', 1_030_000],
      [curpNoted('Funerario 60a64'), '60a64', 1_240_000],
      [curpNoted('Funerario 65a69'), '65a69', 1_450_000],
    ];
    for (const [curp, band, centavos] of expected) {
      const quote = await client.price(curp, 'Funerario');
      expect([quote.kasuProduct, quote.price]).toEqual([band, centavos]);
    }
    await expect(client.price(CHILD, 'Universidad')).resolves.toMatchObject({ maxInstalments: 36, annualRatePercent: 8.5 });
    await expect(client.price(CARLOS, 'Retiro')).resolves.toMatchObject({ kasuProduct: 'Retiro', maxInstalments: 60, annualRatePercent: 10 });
  });

  it('when each function has its own path, then each call goes to its path', async () => {
    const client = makeClient({ paths: { tokenFull: '/token', modifyRecord: 'precio', newService: '/registro' } });
    await client.price(CARLOS, 'Funerario');
    await client.register(registration(CARLOS));
    expect(sandbox.state.calls.map((call) => `${call.function} ${call.path}`)).toEqual([
      'token_full /token',
      'modify_record /precio',
      'new_service /registro',
    ]);
  });

  it('when KASU answers 400 (we sent an incomplete request), then PROVIDER_CONFIG_ERROR, not retryable', async () => {
    const client = makeClient();
    const error = await failure(client.register(registration(CARLOS, { address: { ...registration(CARLOS).address, street: '  ' } })));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', retryable: false, upstreamStatus: 400 });
    expect(error.detail).toMatchObject({ function: 'new_service', providerMessage: 'Falta el dato direccion.calle' });
  });

  it('when the private key is wrong (KASU 401, data altered), then PROVIDER_CONFIG_ERROR', async () => {
    const client = makeClient({ privateKey: 'not-the-sandbox-key' });
    const error = await failure(client.verifyCurp(CARLOS));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 401, retryable: false });
  });

  it('when the API user is wrong (KASU 403), then PROVIDER_CONFIG_ERROR', async () => {
    const client = makeClient({ user: 'Api_Otro' });
    const error = await failure(client.verifyCurp(CARLOS));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 403 });
  });

  it('when modify_record is not deployed (KASU 404), then PROVIDER_CONFIG_ERROR naming the function and no price', async () => {
    sandbox.state.disabledFunctions.add('modify_record');
    const client = makeClient();
    const error = await failure(client.price(CARLOS, 'Funerario'));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 404 });
    expect(error.detail).toMatchObject({ function: 'modify_record' });
  });

  it('when something between us and KASU turns the POST into another method (KASU 405) or redirects, then PROVIDER_CONFIG_ERROR', async () => {
    const methodChanged = await stub((_body, res) => json(res, 405, {}));
    const error = await failure(makeClient({ baseUrl: methodChanged.url }).verifyCurp(CARLOS));
    expect(error).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 405 });

    const redirecting = await stub((_body, res) => {
      res.writeHead(301, { location: 'https://apimarket.kasu.com.mx/api/Registro_V1' });
      res.end();
    });
    const redirect = await failure(makeClient({ baseUrl: redirecting.url }).verifyCurp(CARLOS));
    expect(redirect).toMatchObject({ code: 'PROVIDER_CONFIG_ERROR', upstreamStatus: 301 });
  });

  it('when the product does not fit the age (KASU 406), then PRODUCT_NOT_ELIGIBLE', async () => {
    const client = makeClient();
    await expect(failure(client.price(CARLOS, 'Universidad'))).resolves.toMatchObject({ code: 'PRODUCT_NOT_ELIGIBLE', upstreamStatus: 406 });
    await expect(failure(client.register(registration(OLDEST)))).resolves.toMatchObject({ code: 'PRODUCT_NOT_ELIGIBLE' });
    expect(sandbox.state.registrations).toHaveLength(0);
  });

  it('when a consent is not accepted (KASU 409), then CONSENT_REQUIRED and nothing is registered', async () => {
    const client = makeClient();
    const input = registration(CARLOS, { consents: { terms: true, privacy: true, trust: false } });
    const error = await failure(client.register(input));
    expect(error).toMatchObject({ code: 'CONSENT_REQUIRED', upstreamStatus: 409 });
    expect(sandbox.state.registrations).toHaveLength(0);
  });

  it('when the email or phone is already registered under another CURP (KASU 409), then CONTACT_ALREADY_REGISTERED', async () => {
    const client = makeClient();
    const first = registration(CARLOS);
    await client.register(first);
    const sameEmail = registration(NON_BINARY, { email: first.email.toUpperCase() });
    await expect(failure(client.register(sameEmail))).resolves.toMatchObject({ code: 'CONTACT_ALREADY_REGISTERED', upstreamStatus: 409 });
    const samePhone = registration(NON_BINARY, { phone: first.phone });
    await expect(failure(client.register(samePhone))).resolves.toMatchObject({ code: 'CONTACT_ALREADY_REGISTERED' });
    expect(sandbox.state.registrations).toHaveLength(1);
  });

  it('when the CURP already has the product (KASU 412), then ALREADY_REGISTERED', async () => {
    const client = makeClient();
    await client.register(registration(CARLOS));
    const error = await failure(client.register(registration(CARLOS)));
    expect(error).toMatchObject({ code: 'ALREADY_REGISTERED', upstreamStatus: 412 });
  });

  it('when the CURP belongs to a deceased person or RENAPO does not know it (KASU 417), then CURP_REJECTED', async () => {
    const client = makeClient();
    await expect(failure(client.verifyCurp(DECEASED))).resolves.toMatchObject({ code: 'CURP_REJECTED', upstreamStatus: 417 });
    await expect(failure(client.verifyCurp(SANDBOX_UNKNOWN_CURP))).resolves.toMatchObject({ code: 'CURP_REJECTED', upstreamStatus: 417 });
    // A failed token request is not cached: asking again asks KASU again.
    await failure(client.verifyCurp(DECEASED));
    expect(client.tokenRequests(DECEASED)).toBe(2);
  });

  it('when KASU says the token expired (418) while the client still trusts it, then one new token_full and the call succeeds', async () => {
    const client = makeClient();
    await client.verifyCurp(CARLOS);
    sandboxNow += 11 * MINUTE; // KASU's clock runs ahead; ours (clientNow) has not moved
    const price = await client.price(CARLOS, 'Funerario');
    expect(price.kasuProduct).toBe('30a49');
    expect(client.tokenRequests(CARLOS)).toBe(2);
    expect(sandbox.state.tokenRequests.get(CARLOS)).toBe(2);
    expect(sandbox.state.calls.map((call) => `${call.function} ${call.status}`)).toEqual([
      'token_full 200',
      'modify_record 418',
      'token_full 200',
      'modify_record 202',
    ]);
  });

  it('when KASU answers 418 again right after a refresh, then PROVIDER_UNAVAILABLE after exactly one retry', async () => {
    const kasu = await stub((body, res) => (body.tipo_peticion === 'token_full' ? json(res, 200, TOKEN_ANSWER) : json(res, 418, {})));
    const client = makeClient({ baseUrl: kasu.url });
    const error = await failure(client.price(CARLOS, 'Funerario'));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', upstreamStatus: 418, retryable: true });
    expect(kasu.requests.map((r) => r.body.tipo_peticion)).toEqual(['token_full', 'modify_record', 'token_full', 'modify_record']);
  });

  it('when the client\'s clock reaches the refresh skew before expiry, then it asks for a new token before calling', async () => {
    const client = makeClient();
    await client.verifyCurp(CARLOS);
    clientNow = sandboxNow = BASE_NOW + 10 * MINUTE - 31_000;
    await client.price(CARLOS, 'Funerario');
    expect(client.tokenRequests(CARLOS)).toBe(1);
    clientNow = sandboxNow = BASE_NOW + 10 * MINUTE - 29_000;
    await client.price(CARLOS, 'Funerario');
    expect(client.tokenRequests(CARLOS)).toBe(2);
    expect(sandbox.state.calls.some((call) => call.status === 418)).toBe(false);
  });

  it('when several first calls for one CURP run at once, then they share one token_full', async () => {
    const client = makeClient();
    const [verified, funeral, retirement] = await Promise.all([
      client.verifyCurp(CARLOS),
      client.price(CARLOS, 'Funerario'),
      client.price(CARLOS, 'Retiro'),
      client.verifyCurp(CHILD),
    ]);
    expect(verified.name).toBe('JOSE CARLOS CABRERA MONROY');
    expect([funeral.kasuProduct, retirement.kasuProduct]).toEqual(['30a49', 'Retiro']);
    expect(client.tokenRequests(CARLOS)).toBe(1);
    expect(client.tokenRequests(CHILD)).toBe(1);
    expect(sandbox.state.tokenRequests.get(CARLOS)).toBe(1);
  });

  it('when token_full requests exceed KASU\'s rate limit (429), then RATE_LIMITED, retryable', async () => {
    const strict = await startKasuSandbox({ now: () => sandboxNow, tokenRateLimitPerMinute: 2 });
    closers.push(strict.close);
    const client = makeClient({ baseUrl: strict.url });
    await client.verifyCurp(CARLOS);
    await client.verifyCurp(CHILD);
    const error = await failure(client.verifyCurp(NON_BINARY));
    expect(error).toMatchObject({ code: 'RATE_LIMITED', upstreamStatus: 429, retryable: true });
  });
});

describe('KasuClient on a broken network or a broken KASU', () => {
  it('when KASU never answers, then PROVIDER_UNAVAILABLE as soon as the headers timeout passes', async () => {
    const silent = await stub(() => undefined);
    const client = makeClient({ baseUrl: silent.url, timeouts: { connectMs: 200, headersMs: 200, bodyMs: 200 } });
    const started = performance.now();
    const error = await failure(client.verifyCurp(CARLOS));
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    expect(error.detail).toMatchObject({ reason: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('when KASU stops in the middle of a body, then PROVIDER_UNAVAILABLE after the body timeout', async () => {
    const stalling = await stub((_body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"ok":true,');
    });
    const client = makeClient({ baseUrl: stalling.url, timeouts: { connectMs: 200, headersMs: 200, bodyMs: 200 } });
    const error = await failure(client.verifyCurp(CARLOS));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(error.detail).toMatchObject({ reason: 'UND_ERR_BODY_TIMEOUT' });
  });

  it('when nothing listens at KASU\'s address, then PROVIDER_UNAVAILABLE and a registration is known not to have happened', async () => {
    const gone = await stub((body, res) => json(res, 200, TOKEN_ANSWER));
    const client = makeClient({ baseUrl: gone.url });
    await client.verifyCurp(CARLOS); // token cached; now the server goes away
    await closers.pop()?.();
    const error = await failure(client.register(registration(CARLOS)));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(error.detail).toMatchObject({ function: 'new_service', reason: 'ECONNREFUSED', outcomeUnknown: false });
  });

  it('when KASU answers garbage (not JSON, wrong shape, a 5xx page), then PROVIDER_UNAVAILABLE', async () => {
    const answers: Array<(res: ServerResponse) => void> = [
      (res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>Mantenimiento</html>');
      },
      (res) => json(res, 200, { ok: true, nombre: 'SIN TOKEN' }),
      (res) => json(res, 200, { ...TOKEN_ANSWER, ok: false }),
      (res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>Bad gateway</html>');
      },
    ];
    const kasu = await stub((_body, res) => answers.shift()?.(res));
    const client = makeClient({ baseUrl: kasu.url });
    for (let i = 0; i < 4; i++) {
      const error = await failure(client.verifyCurp(CARLOS));
      expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    }
  });

  it('when new_service answers 201 with a broken body, then PROVIDER_UNAVAILABLE flagged as an unknown outcome', async () => {
    const kasu = await stub((body, res) =>
      body.tipo_peticion === 'token_full' ? json(res, 200, TOKEN_ANSWER) : json(res, 201, { ok: true, datos_compra: { poliza: '' } }),
    );
    const error = await failure(makeClient({ baseUrl: kasu.url }).register(registration(CARLOS)));
    expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', upstreamStatus: 201 });
    expect(error.detail).toMatchObject({ outcomeUnknown: true });
  });

  it('when KASU answers in its older shapes (string amounts, foma_pago, Status, Costo, no ok), then they are understood', async () => {
    const kasu = await stub((body, res) => {
      if (body.tipo_peticion === 'token_full') json(res, 200, { ...TOKEN_ANSWER, ok: undefined });
      else if (body.tipo_peticion === 'modify_record') {
        json(res, 200, { producto: '30a49', costo: '6200.00', comision: '496.5', foma_pago: { meses_max: '12', tasa_interes: '9.9' } });
      } else {
        json(res, 201, { mensaje: 'Registro exitoso', datos_compra: { nombre: 'JOSE CARLOS CABRERA MONROY', CURP: CARLOS, poliza: 'ABC123', Status: 'PREVENTA', Costo: '6200.00' } });
      }
    });
    const client = makeClient({ baseUrl: kasu.url });
    await expect(client.price(CARLOS, 'Funerario')).resolves.toEqual({
      kasuProduct: '30a49', price: 620_000, commission: 49_650, maxInstalments: 12, annualRatePercent: 9.9,
    });
    await expect(client.register(registration(CARLOS, { instalments: 3 }))).resolves.toEqual({
      policy: 'ABC123', status: 'PREVENTA', name: 'JOSE CARLOS CABRERA MONROY', price: 620_000, instalments: 3, paymentLink: null,
      message: 'Registro exitoso',
    });
  });
});

describe('KasuClient requests', () => {
  it('when it registers, then it sends the document\'s body, types and headers, echoing token_data exactly', async () => {
    // KASU's token_data is echoed verbatim, whatever its types and extra keys (here an ISO timestamp).
    const tokenData = { timestamp: new Date(BASE_NOW).toISOString(), expires_in: '600', region: 'mx' };
    const kasu = await stub((body, res) =>
      body.tipo_peticion === 'token_full'
        ? json(res, 200, { ...TOKEN_ANSWER, token_data: tokenData })
        : json(res, 201, { ok: true, mensaje: 'ok', datos_compra: { nombre: 'X', poliza: 'P1', status: 'PREVENTA', costo: 6200, numero_pagos: 12, pago_link: 'https://pagos.kasu.com.mx/p/P1' } }),
    );
    const client = makeClient({ baseUrl: kasu.url });
    const result = await client.register(registration(CARLOS, { phone: '5512345678', address: { ...registration(CARLOS).address, number: '12-B', postalCode: '06700' } }));
    await client.register(registration(CARLOS, { consents: { terms: true, privacy: false, trust: true } }));

    expect(result.paymentLink).toBe('https://pagos.kasu.com.mx/p/P1');
    expect(kasu.requests.map((r) => r.body.tipo_peticion)).toEqual(['token_full', 'new_service', 'new_service']);
    const [tokenRequest, registerRequest, declined] = kasu.requests as [Captured, Captured, Captured];
    expect(tokenRequest.body).toEqual({
      tipo_peticion: 'token_full',
      nombre_de_usuario: SANDBOX_USER,
      firma_KEY: createHmac('sha256', SANDBOX_PRIVATE_KEY).update(CARLOS).digest('hex'),
      curp_en_uso: CARLOS,
    });
    expect(tokenRequest.headers.authorization).toBeUndefined();
    expect(registerRequest.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'kasu-checkout-test/0.1',
      authorization: 'Bearer stub-token',
    });
    expect(Object.keys(registerRequest.body)).toEqual([
      'tipo_peticion', 'nombre_de_usuario', 'curp_en_uso', 'mail', 'telefono', 'producto', 'numero_pagos',
      'terminos', 'aviso', 'fideicomiso', 'direccion', 'token_data',
    ]);
    expect(registerRequest.body).toMatchObject({
      curp_en_uso: CARLOS,
      telefono: 5512345678,
      numero_pagos: 12,
      terminos: 'ACCEPT',
      aviso: 'ACCEPT',
      fideicomiso: 'ACCEPT',
      direccion: { calle: 'Avenida Insurgentes Sur', numero: '12-B', colonia: 'Crédito Constructor', municipio: 'Benito Juárez', codigo_postal: 6700, estado: 'Ciudad de México' },
      token_data: tokenData,
    });
    expect(declined.body).toMatchObject({ aviso: 'DECLINE', direccion: { numero: 1602 } });
    // The ISO timestamp was understood: the second registration reused the token.
    expect(client.tokenRequests(CARLOS)).toBe(1);
  });

  it('when the phone or postal code is not digits, then it refuses locally without calling KASU', async () => {
    const client = makeClient();
    await expect(client.register(registration(CARLOS, { phone: '55-1234-5678' }))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const error: unknown = await client.register(registration(CARLOS, { address: { ...registration(CARLOS).address, postalCode: '3940' } })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(sandbox.state.calls).toHaveLength(0);
  });

  it('when calls fail or succeed, then neither the private key nor a token appears in errors or log lines', async () => {
    const secret = 'my-very-private-kasu-key-0123456789';
    const logger = createMemoryLogger();
    const errors: ProviderError[] = [];
    errors.push(await failure(makeClient({ privateKey: secret }, logger).verifyCurp(CARLOS)));
    const kasu = await stub((body, res) =>
      body.tipo_peticion === 'token_full' ? json(res, 200, { ...TOKEN_ANSWER, token: 'tok-SECRET-123' }) : json(res, 418, { mensaje: 'expirado' }),
    );
    errors.push(await failure(makeClient({ baseUrl: kasu.url, privateKey: secret }, logger).price(CARLOS, 'Funerario')));
    const good = makeClient({}, logger);
    await good.verifyCurp(CARLOS);
    sandboxNow += 11 * MINUTE;
    await good.register(registration(CARLOS));

    const sandboxToken = /[0-9a-f]{64}/;
    for (const error of errors) {
      const text = `${error.message} ${String(error)} ${error.stack ?? ''} ${JSON.stringify(error.detail)}`;
      expect(text).not.toContain(secret);
      expect(text).not.toContain('tok-SECRET-123');
      expect(error.message).toBe(error.code); // never the provider's words
    }
    const log = logger.lines.join('\n');
    expect(logger.lines.length).toBeGreaterThan(4);
    expect(log).not.toContain(secret);
    expect(log).not.toContain(SANDBOX_PRIVATE_KEY);
    expect(log).not.toContain('tok-SECRET-123');
    expect(log).not.toMatch(sandboxToken);
    expect(log).not.toContain(CARLOS);
  });
});
