import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCurp } from '../../shared/curp.js';
import {
  createKasuSandbox,
  SANDBOX_CURPS,
  SANDBOX_PRIVATE_KEY,
  SANDBOX_UNKNOWN_CURP,
  SANDBOX_USER,
  startKasuSandbox,
} from '../../server/sandbox/kasu/kasu-sandbox.js';

const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const CARLOS = 'CAMC880526HMCBNR04';
const OTHER = 'REAE060617MMCYLVA4';

function curpNoted(text: string): string {
  const person = SANDBOX_CURPS.find((p) => p.note.includes(text));
  if (!person) throw new Error(`no sandbox CURP noted "${text}"`);
  return person.curp;
}

let sandbox: Awaited<ReturnType<typeof startKasuSandbox>>;
let now = BASE_NOW;

beforeAll(async () => {
  sandbox = await startKasuSandbox({ now: () => now });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  now = BASE_NOW;
  sandbox.state.reset();
});

type Reply = { status: number; body: Record<string, unknown> };

async function post(body: unknown, options: { token?: string; path?: string; raw?: string; url?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${options.url ?? sandbox.url}${options.path ?? '/'}`, {
    method: 'POST',
    headers,
    body: options.raw ?? JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function firma(curp: string, key = SANDBOX_PRIVATE_KEY): string {
  return createHmac('sha256', key).update(curp).digest('hex');
}

function tokenFull(curp: string, overrides: Record<string, unknown> = {}, url?: string): Promise<Reply> {
  return post({ tipo_peticion: 'token_full', nombre_de_usuario: SANDBOX_USER, firma_KEY: firma(curp), curp_en_uso: curp, ...overrides }, { url });
}

type Session = { curp: string; token: string; tokenData: unknown };

async function session(curp: string): Promise<Session> {
  const reply = await tokenFull(curp);
  expect(reply.status).toBe(200);
  return { curp, token: reply.body.token as string, tokenData: reply.body.token_data };
}

function modifyRecord(s: Session, producto: string, overrides: Record<string, unknown> = {}): Promise<Reply> {
  return post(
    { tipo_peticion: 'modify_record', nombre_de_usuario: SANDBOX_USER, curp_en_uso: s.curp, producto, token_data: s.tokenData, ...overrides },
    { token: s.token },
  );
}

function newServiceBody(s: Session, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tipo_peticion: 'new_service',
    nombre_de_usuario: SANDBOX_USER,
    curp_en_uso: s.curp,
    mail: `${s.curp.toLowerCase()}@example.com`,
    telefono: 5512345678,
    producto: 'Funerario',
    numero_pagos: 12,
    terminos: 'ACCEPT',
    aviso: 'ACCEPT',
    fideicomiso: 'ACCEPT',
    direccion: { calle: 'Madero', numero: 12, colonia: 'Centro', municipio: 'Cuauhtémoc', codigo_postal: 6000, estado: 'Ciudad de México' },
    token_data: s.tokenData,
    ...overrides,
  };
}

function newService(s: Session, overrides: Record<string, unknown> = {}): Promise<Reply> {
  return post(newServiceBody(s, overrides), { token: s.token });
}

describe('KASU sandbox: requests', () => {
  it('when the method is not POST, then 405 with Allow: POST', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const response = await fetch(`${sandbox.url}/`, { method });
      await response.text();
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
    }
  });

  it('when tipo_peticion names no KASU function, then 404', async () => {
    const reply = await post({ tipo_peticion: 'registro_servicio' });
    expect(reply).toEqual({ status: 404, body: { ok: false, mensaje: expect.stringContaining('Petición desconocida') } });
  });

  it('when the body is not JSON, lacks tipo_peticion or lacks a field, then 400 naming what is missing', async () => {
    expect((await post(null, { raw: '{"tipo_peticion": ' })).status).toBe(400);
    expect(await post({ nombre_de_usuario: SANDBOX_USER })).toMatchObject({ status: 400, body: { mensaje: 'Falta el dato tipo_peticion' } });
    expect(await tokenFull(CARLOS, { firma_KEY: undefined })).toMatchObject({ status: 400, body: { ok: false, mensaje: 'Falta el dato firma_KEY' } });
    const s = await session(CARLOS);
    expect(await modifyRecord(s, '')).toMatchObject({ status: 400, body: { mensaje: 'Falta el dato producto' } });
    const withoutAddress = newServiceBody(s);
    delete withoutAddress.direccion;
    expect(await post(withoutAddress, { token: s.token })).toMatchObject({ status: 400, body: { mensaje: 'Falta el dato direccion' } });
    expect(await newService(s, { telefono: 12345 })).toMatchObject({ status: 400, body: { mensaje: 'Dato no válido: telefono' } });
  });

  it('when a function is posted to a single path segment, then it is served; deeper paths are 404', async () => {
    const reply = await post(
      { tipo_peticion: 'token_full', nombre_de_usuario: SANDBOX_USER, firma_KEY: firma(CARLOS), curp_en_uso: CARLOS },
      { path: '/token_full' },
    );
    expect(reply.status).toBe(200);
    expect((await post({ tipo_peticion: 'token_full' }, { path: '/a/b' })).status).toBe(404);
  });

  it('when mounted inside another app at /sandbox/kasu, then it parses its own JSON body', async () => {
    const { router } = createKasuSandbox({ now: () => now });
    const app = express();
    app.use('/sandbox/kasu', router);
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sandbox/kasu`;
      expect((await tokenFull(CARLOS, {}, url)).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('KASU sandbox: token_full', () => {
  it('when user, signature and CURP are right, then 200 with the RENAPO name and token_data in unix seconds', async () => {
    const reply = await tokenFull(CARLOS);
    expect(reply).toEqual({
      status: 200,
      body: {
        ok: true,
        token: expect.stringMatching(/^[0-9a-f]{64}$/),
        nombre: 'JOSE CARLOS CABRERA MONROY',
        token_data: { timestamp: BASE_NOW / 1000, expires_in: 600 },
      },
    });
    expect(sandbox.state.tokenRequests.get(CARLOS)).toBe(1);
  });

  it('when the user is wrong, then 403; when the signature is wrong, then 401', async () => {
    expect((await tokenFull(CARLOS, { nombre_de_usuario: 'Api_Otro' })).status).toBe(403);
    expect((await tokenFull(CARLOS, { firma_KEY: firma(CARLOS, 'other-key') })).status).toBe(401);
    expect((await tokenFull(CARLOS, { firma_KEY: firma(OTHER) })).status).toBe(401);
  });

  it('when the CURP is badly formed, unknown to RENAPO or of a deceased person, then 417', async () => {
    const badCheckDigit = `${CARLOS.slice(0, 17)}9`;
    for (const curp of [badCheckDigit, 'NOT-A-CURP', SANDBOX_UNKNOWN_CURP, curpNoted('deceased')]) {
      expect((await tokenFull(curp)).status, curp).toBe(417);
    }
  });

  it('when more token_full requests than the limit come from one IP within a minute, then 429 until the minute passes', async () => {
    const strict = await startKasuSandbox({ now: () => now, tokenRateLimitPerMinute: 3 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await tokenFull(CARLOS, {}, strict.url)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      now += 61_000;
      expect((await tokenFull(CARLOS, {}, strict.url)).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('KASU sandbox: calls with a token', () => {
  it('when the bearer is missing or unknown, then 401', async () => {
    const s = await session(CARLOS);
    expect((await modifyRecord({ ...s, token: '' }, 'Funerario')).status).toBe(401);
    expect((await modifyRecord({ ...s, token: 'f'.repeat(64) }, 'Funerario')).status).toBe(401);
  });

  it('when curp_en_uso or token_data differ from what made the token, then 401 (data altered in transit)', async () => {
    const s = await session(CARLOS);
    const data = s.tokenData as { timestamp: number; expires_in: number };
    expect((await modifyRecord(s, 'Funerario', { curp_en_uso: OTHER })).status).toBe(401);
    expect((await modifyRecord(s, 'Funerario', { token_data: { ...data, expires_in: 6000 } })).status).toBe(401);
    expect((await modifyRecord(s, 'Funerario', { token_data: { ...data, timestamp: String(data.timestamp) } })).status).toBe(401);
  });

  it('when the token is older than 10 minutes, then 418', async () => {
    const s = await session(CARLOS);
    now += 600_000;
    expect((await modifyRecord(s, 'Funerario')).status).toBe(202);
    now += 1_000;
    expect(await modifyRecord(s, 'Funerario')).toMatchObject({ status: 418, body: { ok: false } });
  });
});

describe('KASU sandbox: modify_record', () => {
  it('when Funerario is priced, then the price follows the age band', async () => {
    const bands: Array<[string, string, number]> = [
      [OTHER, '02a29', 4500],
      [CARLOS, '30a49', 6200],
      [curpNoted('Funerario 50a54'), '50a54', 8400],
      [curpNoted('Funerario 55a59'), '55a59', 10300],
      [curpNoted('Funerario 60a64'), '60a64', 12400],
      [curpNoted('Funerario 65a69'), '65a69', 14500],
    ];
    for (const [curp, producto, costo] of bands) {
      const reply = await modifyRecord(await session(curp), 'Funerario');
      expect(reply).toEqual({
        status: 202,
        body: { ok: true, producto, costo, comision: expect.any(Number), forma_pago: { meses_max: 12, tasa_anual: 0 } },
      });
    }
  });

  it('when Universidad or Retiro fit the age, then 202 with their credit terms', async () => {
    const child = await modifyRecord(await session('CAPC200504HMCBXRA2'), 'Universidad');
    expect(child).toMatchObject({ status: 202, body: { producto: 'Universidad', forma_pago: { meses_max: 36, tasa_anual: 8.5 } } });
    const adult = await modifyRecord(await session(CARLOS), 'Retiro');
    expect(adult).toMatchObject({ status: 202, body: { producto: 'Retiro', forma_pago: { meses_max: 60, tasa_anual: 10 } } });
  });

  it('when the product is outside the age range or unknown, then 406', async () => {
    const cases: Array<[string, string]> = [
      [CARLOS, 'Universidad'], // adult
      [curpNoted('Funerario 65a69'), 'Retiro'], // 67
      [curpNoted('70+'), 'Funerario'],
      [curpNoted('baby'), 'Funerario'], // under 2
      [CARLOS, 'Vida'],
    ];
    for (const [curp, producto] of cases) {
      expect((await modifyRecord(await session(curp), producto)).status, `${curp} ${producto}`).toBe(406);
    }
  });
});

describe('KASU sandbox: new_service', () => {
  it('when everything is in order, then 201 PREVENTA with a unique policy and the registration is kept', async () => {
    const first = await newService(await session(CARLOS), { telefono: '525512345678', numero_pagos: 0 });
    const second = await newService(await session(OTHER), { telefono: 5587654321, direccion: { ...newServiceBody(await session(OTHER)).direccion as object, numero: '12-B' } });
    expect(first).toEqual({
      status: 201,
      body: {
        ok: true,
        mensaje: 'Registro exitoso del servicio Funerario',
        datos_compra: {
          nombre: 'JOSE CARLOS CABRERA MONROY',
          CURP: CARLOS,
          mail: 'camc880526hmcbnr04@example.com',
          producto: '30a49',
          poliza: expect.stringMatching(/^[0-9A-F]{20}$/),
          status: 'PREVENTA',
          costo: 6200,
          numero_pagos: 1,
          pago_link: null,
        },
      },
    });
    expect(second.status).toBe(201);
    const [a, b] = sandbox.state.registrations;
    expect(a).toMatchObject({ curp: CARLOS, phone: '5512345678', instalments: 1, kasuProduct: '30a49' });
    expect(b?.address).toMatchObject({ numero: '12-B' });
    expect(a?.policy).not.toBe(b?.policy);
  });

  it('when terms, privacy notice or trust is anything but ACCEPT, then 409', async () => {
    const s = await session(CARLOS);
    for (const refused of [{ terminos: 'acepto' }, { aviso: 'DECLINE' }, { fideicomiso: '' }]) {
      expect((await newService(s, refused)).status, JSON.stringify(refused)).toBe(409);
    }
    expect(sandbox.state.registrations).toHaveLength(0);
  });

  it('when the email or phone is registered under another CURP, then 409; the same CURP may reuse them', async () => {
    const carlos = await session(CARLOS);
    expect((await newService(carlos, { mail: 'familia@example.com', telefono: 5511112222 })).status).toBe(201);
    expect((await newService(carlos, { producto: 'Retiro', numero_pagos: 24, mail: 'familia@example.com', telefono: 5511112222 })).status).toBe(201);
    const other = await session(OTHER);
    expect((await newService(other, { mail: 'FAMILIA@example.com' })).status).toBe(409);
    expect((await newService(other, { telefono: 5511112222 })).status).toBe(409);
  });

  it('when the same CURP registers the same product again, then 412', async () => {
    const s = await session(CARLOS);
    expect((await newService(s)).status).toBe(201);
    expect(await newService(s)).toMatchObject({ status: 412, body: { ok: false } });
  });

  it('when the product does not fit the age, then 406; when numero_pagos exceeds the product\'s credit, then 400', async () => {
    expect((await newService(await session(curpNoted('70+')))).status).toBe(406);
    expect((await newService(await session(CARLOS), { numero_pagos: 13 })).status).toBe(400);
  });
});

describe('KASU sandbox: registry', () => {
  it('when the registry is checked, then every CURP is well formed and unique, and every case is covered', () => {
    const today = new Date(BASE_NOW);
    const ages = SANDBOX_CURPS.map((person) => {
      const parsed = parseCurp(person.curp, today);
      expect(parsed.ok, person.curp).toBe(true);
      return parsed.ok ? { ...person, age: parsed.age, sex: parsed.sex } : null;
    });
    expect(new Set(SANDBOX_CURPS.map((p) => p.curp)).size).toBe(SANDBOX_CURPS.length);
    for (const curp of ['CAMC880526HMCBNR04', 'CAPC200504HMCBXRA2', 'REAE060617MMCYLVA4']) {
      expect(SANDBOX_CURPS.some((p) => p.curp === curp)).toBe(true);
    }
    const living = ages.filter((p) => p && !p.deceased);
    for (const [min, max] of [[2, 29], [30, 49], [50, 54], [55, 59], [60, 64], [65, 69]] as const) {
      expect(living.some((p) => p && p.age >= min && p.age <= max), `${min}-${max}`).toBe(true);
    }
    expect(living.some((p) => p && p.age >= 70)).toBe(true);
    expect(living.some((p) => p && p.age < 2)).toBe(true);
    expect(living.some((p) => p && p.sex === 'X')).toBe(true);
    expect(SANDBOX_CURPS.some((p) => p.deceased)).toBe(true);
    expect(parseCurp(SANDBOX_UNKNOWN_CURP, today).ok).toBe(true);
    expect(SANDBOX_CURPS.some((p) => p.curp === SANDBOX_UNKNOWN_CURP)).toBe(false);
  });
});
