/**
 * A KASU simulator over real HTTP, faithful to KASU's document and to its public PHP implementation:
 * every function is a POST of JSON named by `tipo_peticion`; the access token is, as at KASU, an HMAC of the
 * JSON `{timestamp, expires_in}` keyed with the CURP's signature, so a later call that alters `curp_en_uso` or
 * `token_data` no longer matches its token (401) and an old one is 418. Mounted by the BFF at /sandbox/kasu,
 * or run alone with main.ts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { serveStandalone } from '../standalone.js';
import { createFaults, type FaultController, type FaultRuleInput } from '../faults.js';
import { curpCheckDigit, parseCurp } from '../../../shared/curp.js';

export type KasuSandboxOptions = {
  /** nombre_de_usuario accepted; default the document's 'Api_KASU_Sandbox'. */
  user?: string;
  /** Default the document's sandbox key (a public value, not a secret). */
  privateKey?: string;
  /** Milliseconds since the epoch; decides token expiry and ages. */
  now?: () => number;
  /** Default 600 (10 minutes, as documented). */
  tokenTtlSeconds?: number;
  /** token_full requests per IP per minute; default 30 (KASU's ~5 is too tight for tests). */
  tokenRateLimitPerMinute?: number;
  /** Initial fault rules (faults.ts); change them with state.faults or <mount>/_faults. */
  faults?: FaultRuleInput[];
};

export type SandboxPerson = {
  curp: string;
  /** As RENAPO holds it (KASU answers "NOMBRE PATERNO MATERNO"). */
  name: string;
  /** What the CURP is for, in tests and in the README. */
  note: string;
  deceased?: boolean;
};

export type SandboxRegistration = {
  curp: string;
  name: string;
  /** As requested (Funerario, Universidad, Retiro). */
  product: string;
  /** KASU's resolved code (e.g. 30a49). */
  kasuProduct: string;
  email: string;
  phone: string;
  instalments: number;
  /** Pesos. */
  price: number;
  policy: string;
  status: 'PREVENTA';
  /** `direccion` exactly as received. */
  address: Record<string, unknown>;
  registeredAt: string;
};

export type KasuSandboxState = {
  registrations: SandboxRegistration[];
  /** token_full requests per CURP as sent (every attempt, whatever the answer). */
  tokenRequests: Map<string, number>;
  /** Every request answered: function ('' when unknown), path below the mount point, and status. */
  calls: Array<{ function: string; path: string; status: number }>;
  /** Functions to answer 404 as if not deployed (the live modify_record may not exist yet). */
  disabledFunctions: Set<string>;
  /** KASU updated its price list: product code (e.g. "30a49", "Retiro") → new `costo` in pesos. */
  prices: Map<string, number>;
  /** Injected failures (faults.ts); `match.kasuFunction` names a function. */
  faults: FaultController;
  /** Forget registrations, counters, rate-limit windows and disabled functions; faults back to the configured ones. */
  reset(): void;
};

export const SANDBOX_USER = 'Api_KASU_Sandbox';
export const SANDBOX_PRIVATE_KEY = 'ef235aacf90d9f4aadd8c92e4b2562e1d9eb97f0';

function withCheckDigit(first17: string): string {
  return first17 + curpCheckDigit(first17);
}

/**
 * The simulated RENAPO. The notes hold on the real clock until early 2028 (the child turns 8 in May 2028, the
 * bands 50a54…65a69 move in 2029). Any well-formed CURP not listed here is unknown (417).
 */
export const SANDBOX_CURPS: readonly SandboxPerson[] = [
  // The document's three CURPs, with the names KASU's own sandbox gives them.
  { curp: 'CAMC880526HMCBNR04', name: 'JOSE CARLOS CABRERA MONROY', note: 'from the document; man born 1988: Funerario 30a49, Retiro' },
  { curp: 'CAPC200504HMCBXRA2', name: 'JOSE CARLOS CABRERA PIÑA', note: 'from the document; boy born 2020: Universidad, Funerario 02a29' },
  { curp: 'REAE060617MMCYLVA4', name: 'EVELYN REYES ALVAREZ', note: 'from the document; woman born 2006: Funerario 02a29, Retiro' },
  { curp: withCheckDigit('HELG740315MDFRPD0'), name: 'MARIA GUADALUPE HERNANDEZ LOPEZ', note: 'born 1974: Funerario 50a54, Retiro' },
  { curp: withCheckDigit('MARL690210HJCRMS0'), name: 'JOSE LUIS MARTINEZ RAMIREZ', note: 'born 1969: Funerario 55a59, Retiro' },
  { curp: withCheckDigit('GATR640120MNLRRS0'), name: 'ROSA ELENA GARCIA TORRES', note: 'born 1964: Funerario 60a64, Retiro' },
  { curp: withCheckDigit('SAFA590408HPLNLN0'), name: 'ANTONIO SANCHEZ FLORES', note: 'born 1959: Funerario 65a69; too old for Retiro' },
  { curp: withCheckDigit('RUME500730MVZZRS0'), name: 'ESPERANZA RUIZ MORALES', note: 'born 1950: 70+, no product (406)' },
  { curp: withCheckDigit('TOVA950912XDFRGL0'), name: 'ALEX TORRES VEGA', note: 'non-binary (sex X), born 1995: Funerario 30a49, Retiro' },
  { curp: withCheckDigit('LODS260310MQTPZFA'), name: 'SOFIA LOPEZ DIAZ', note: 'baby born March 2026: Universidad only (the funeral plan starts at age 2)' },
  { curp: withCheckDigit('JICP401102HOCMSD0'), name: 'PEDRO JIMENEZ CASTRO', note: 'deceased: token_full answers 417', deceased: true },
];

/** Well formed (passes parseCurp) but not in the registry: RENAPO does not know it (417). */
export const SANDBOX_UNKNOWN_CURP = withCheckDigit('GOPM910814HGTNRR0');

type Catalogue = { code: string; minAge: number; maxAge: number; costo: number; comision: number; mesesMax: number; tasaAnual: number };

/** Prices in pesos. Funerario is priced by age band (KASU's ProdFune bands); the others by product. */
const CATALOGUE: Record<string, Catalogue[]> = {
  Funerario: [
    { code: '02a29', minAge: 2, maxAge: 29, costo: 4500, comision: 360, mesesMax: 12, tasaAnual: 0 },
    { code: '30a49', minAge: 30, maxAge: 49, costo: 6200, comision: 496, mesesMax: 12, tasaAnual: 0 },
    { code: '50a54', minAge: 50, maxAge: 54, costo: 8400, comision: 672, mesesMax: 12, tasaAnual: 0 },
    { code: '55a59', minAge: 55, maxAge: 59, costo: 10300, comision: 824, mesesMax: 12, tasaAnual: 0 },
    { code: '60a64', minAge: 60, maxAge: 64, costo: 12400, comision: 992, mesesMax: 12, tasaAnual: 0 },
    { code: '65a69', minAge: 65, maxAge: 69, costo: 14500, comision: 1160, mesesMax: 12, tasaAnual: 0 },
  ],
  // "Inversion Universitaria para niños menores de 8 años"
  Universidad: [{ code: 'Universidad', minAge: 0, maxAge: 7, costo: 32500, comision: 1625, mesesMax: 36, tasaAnual: 8.5 }],
  // "Plan Privado de Retiro para adultos menores de 65 años"
  Retiro: [{ code: 'Retiro', minAge: 18, maxAge: 64, costo: 18900, comision: 945, mesesMax: 60, tasaAnual: 10 }],
};

const FUNCTIONS = ['token_full', 'modify_record', 'new_service'] as const;

// ---------- request schemas (a missing or unusable field is KASU's 400) ----------

const Text = z.string().trim().min(1);
const Digits = z.union([z.number().int().nonnegative(), z.string().trim().regex(/^\d+$/)]).transform(String);

const TokenFullRequest = z.object({ nombre_de_usuario: Text, firma_KEY: Text, curp_en_uso: Text });

const AuthorizedRequest = z.object({
  nombre_de_usuario: Text,
  curp_en_uso: Text,
  token_data: z.object({ timestamp: z.unknown(), expires_in: z.unknown() }),
});

const ModifyRecordRequest = AuthorizedRequest.extend({ producto: Text });

const NewServiceRequest = AuthorizedRequest.extend({
  mail: z.email(),
  telefono: Digits,
  producto: Text,
  numero_pagos: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]),
  terminos: z.string(),
  aviso: z.string(),
  fideicomiso: z.string(),
  direccion: z.object({
    calle: Text,
    numero: z.union([z.number().int().nonnegative(), Text]),
    colonia: Text,
    municipio: Text,
    codigo_postal: Digits,
    estado: Text,
  }),
});

class KasuRefusal extends Error {
  constructor(readonly status: number, mensaje: string) {
    super(mensaje);
  }
}

function refuse(status: number, mensaje: string): never {
  throw new KasuRefusal(status, mensaje);
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const path = parsed.error.issues[0]?.path ?? [];
  let value: unknown = body;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  const field = path.join('.') || 'cuerpo';
  const missing = value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
  refuse(400, missing ? `Falta el dato ${field}` : `Dato no válido: ${field}`);
}

function hmacHex(key: string, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function createKasuSandbox(options: KasuSandboxOptions = {}): { router: Router; state: KasuSandboxState; close(): Promise<void> } {
  const user = options.user ?? SANDBOX_USER;
  const privateKey = options.privateKey ?? SANDBOX_PRIVATE_KEY;
  const now = options.now ?? Date.now;
  const ttl = options.tokenTtlSeconds ?? 600;
  const rateLimit = options.tokenRateLimitPerMinute ?? 30;
  const people = new Map(SANDBOX_CURPS.map((person) => [person.curp, person]));
  const tokenTimesByIp = new Map<string, number[]>();
  const json = express.json({ limit: '64kb' });
  const faults = createFaults({
    rules: options.faults ?? [],
    jsonBody: json,
    errorBody: (status) => ({ ok: false, mensaje: status === 503 ? 'Servicio no disponible' : 'Error interno del servidor' }),
  });

  const state: KasuSandboxState = {
    registrations: [],
    tokenRequests: new Map(),
    calls: [],
    disabledFunctions: new Set(),
    prices: new Map(),
    faults: faults.controller,
    reset() {
      faults.controller.reset();
      state.prices.clear();
      state.registrations.length = 0;
      state.tokenRequests.clear();
      state.calls.length = 0;
      state.disabledFunctions.clear();
      tokenTimesByIp.clear();
    },
  };

  /** The living person behind a CURP, or 417 (badly formed, unknown to RENAPO, or deceased). */
  function person(curp: string): SandboxPerson & { age: number } {
    const parsed = parseCurp(curp, new Date(now()));
    const found = people.get(curp);
    if (!parsed.ok || !found || found.deceased) {
      refuse(417, 'La clave CURP que intentas registrar es de una persona fallecida o no existe');
    }
    return { ...found, age: parsed.age };
  }

  /** KASU's product row for a person, or 406. */
  function catalogue(producto: string, age: number): Catalogue {
    const rows = CATALOGUE[producto];
    if (!rows) refuse(406, 'El producto que ingresaste no existe');
    const row = rows.find((r) => age >= r.minAge && age <= r.maxAge);
    if (!row) refuse(406, 'El producto excede los limites de edad para el producto seleccionado');
    return row;
  }

  function tokenFull(req: Request): Record<string, unknown> {
    const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const minuteAgo = now() - 60_000;
    const recent = (tokenTimesByIp.get(ip) ?? []).filter((t) => t > minuteAgo);
    recent.push(now());
    tokenTimesByIp.set(ip, recent);
    const curpSent: unknown = (req.body as Record<string, unknown>).curp_en_uso;
    if (typeof curpSent === 'string') state.tokenRequests.set(curpSent, (state.tokenRequests.get(curpSent) ?? 0) + 1);
    if (recent.length > rateLimit) refuse(429, 'Has excedido el numero de solicitudes de token; espera un minuto');

    const body = parseBody(TokenFullRequest, req.body);
    if (body.nombre_de_usuario !== user) refuse(403, 'Credenciales no validas');
    // As KASU does: RENAPO first, then the signature.
    const found = person(body.curp_en_uso);
    const firma = hmacHex(privateKey, body.curp_en_uso);
    if (!sameText(body.firma_KEY, firma)) refuse(401, 'La comunicacion fue corrupta, los datos fueron modificados');
    const tokenData = { timestamp: Math.floor(now() / 1000), expires_in: ttl };
    return { ok: true, token: hmacHex(firma, JSON.stringify(tokenData)), nombre: found.name, token_data: tokenData };
  }

  /** The checks every call after token_full makes; returns the person the token was made for. */
  function authorize(req: Request, body: z.output<typeof AuthorizedRequest>): SandboxPerson & { age: number } {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (!bearer) refuse(401, 'Falta el TOKEN de acceso');
    if (body.nombre_de_usuario !== user) refuse(403, 'Credenciales no validas');
    // The token is only valid for the very CURP and token_data it was made from (re-serialised as KASU does).
    const { timestamp, expires_in } = body.token_data;
    const expected = hmacHex(hmacHex(privateKey, body.curp_en_uso), JSON.stringify({ timestamp, expires_in }));
    if (!sameText(bearer, expected)) refuse(401, 'La comunicacion fue corrupta, los datos fueron modificados');
    if (now() / 1000 > Number(timestamp) + Number(expires_in)) refuse(418, 'Has excedido el tiempo de operacion para este TOKEN');
    return person(body.curp_en_uso);
  }

  function modifyRecord(req: Request): Record<string, unknown> {
    const body = parseBody(ModifyRecordRequest, req.body);
    const found = authorize(req, body);
    const row = catalogue(body.producto, found.age);
    return {
      ok: true,
      producto: row.code,
      costo: (state.prices.get(row.code) ?? row.costo),
      comision: row.comision,
      forma_pago: { meses_max: row.mesesMax, tasa_anual: row.tasaAnual },
    };
  }

  function newService(req: Request): Record<string, unknown> {
    const body = parseBody(NewServiceRequest, req.body);
    const found = authorize(req, body);
    // KASU strips a leading country code 52.
    const phone = body.telefono.length === 12 && body.telefono.startsWith('52') ? body.telefono.slice(2) : body.telefono;
    if (phone.length !== 10) refuse(400, 'Dato no válido: telefono');
    if (body.direccion.codigo_postal.length > 5) refuse(400, 'Dato no válido: direccion.codigo_postal');
    if ([body.terminos, body.aviso, body.fideicomiso].some((value) => value !== 'ACCEPT')) {
      refuse(409, 'El cliente no acepto el fideicomiso, Aviso de privacidad o los Terminos y condiciones');
    }
    const row = catalogue(body.producto, found.age);
    // As in KASU's PHP: 0 payments means cash, i.e. one.
    const instalments = Math.max(1, body.numero_pagos);
    if (instalments > row.mesesMax) refuse(400, 'Dato no válido: numero_pagos excede el credito maximo');
    const email = body.mail.toLowerCase();
    if (state.registrations.some((r) => r.curp === found.curp && r.product === body.producto)) {
      refuse(412, 'El cliente ya se encuentra registrado con el producto seleccionado');
    }
    if (state.registrations.some((r) => r.curp !== found.curp && (r.email === email || r.phone === phone))) {
      refuse(409, 'El correo o telefono ya se encuentra registrado');
    }
    let policy: string;
    do policy = randomBytes(10).toString('hex').toUpperCase();
    while (state.registrations.some((r) => r.policy === policy));
    state.registrations.push({
      curp: found.curp,
      name: found.name,
      product: body.producto,
      kasuProduct: row.code,
      email,
      phone,
      instalments,
      price: (state.prices.get(row.code) ?? row.costo),
      policy,
      status: 'PREVENTA',
      address: (req.body as { direccion: Record<string, unknown> }).direccion,
      registeredAt: new Date(now()).toISOString(),
    });
    return {
      ok: true,
      mensaje: `Registro exitoso del servicio ${body.producto}`,
      datos_compra: {
        nombre: found.name,
        CURP: found.curp,
        mail: email,
        producto: row.code,
        poliza: policy,
        status: 'PREVENTA',
        costo: (state.prices.get(row.code) ?? row.costo),
        numero_pagos: instalments,
        // This partner has no API_COBROS access: KASU emails the customer how to pay.
        pago_link: null,
      },
    };
  }

  function answer(req: Request, res: Response, fn: string, status: number, body: Record<string, unknown>): void {
    state.calls.push({ function: fn, path: req.path, status });
    res.status(status).json(body);
  }

  const router = express.Router();
  router.use(faults.router);
  router.use(json);

  // POST on the base path or on any single segment, so per-function paths can be configured.
  router.all(['/', '/:segment'], (req: Request, res: Response) => {
    if (req.method !== 'POST') {
      res.set('Allow', 'POST');
      answer(req, res, '', 405, { ok: false, mensaje: 'El método HTTP utilizado en la solicitud es distinto a POST' });
      return;
    }
    const body: unknown = req.body;
    const fn = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).tipo_peticion : undefined;
    try {
      if (typeof fn !== 'string' || !fn) refuse(400, 'Falta el dato tipo_peticion');
      if (!(FUNCTIONS as readonly string[]).includes(fn) || state.disabledFunctions.has(fn)) {
        refuse(404, 'Petición desconocida, Solo se admiten las claves de funciones de la Documentation');
      }
      if (fn === 'token_full') answer(req, res, fn, 200, tokenFull(req));
      else if (fn === 'modify_record') answer(req, res, fn, 202, modifyRecord(req));
      else answer(req, res, fn, 201, newService(req));
    } catch (error) {
      if (!(error instanceof KasuRefusal)) throw error;
      answer(req, res, typeof fn === 'string' ? fn : '', error.status, { ok: false, mensaje: error.message });
    }
  });

  // Malformed JSON (or a body too large) is a request KASU cannot read: 400, in KASU's shape.
  router.use((error: { status?: number; type?: string }, req: Request, res: Response, next: NextFunction) => {
    if (error.type === 'entity.parse.failed' || error.status === 400 || error.status === 413) {
      answer(req, res, '', 400, { ok: false, mensaje: 'El cuerpo de la solicitud no es JSON válido' });
      return;
    }
    next(error);
  });

  return { router, state, close: () => Promise.resolve(faults.close()) };
}

/** Runs the simulator on its own HTTP server (port 0 = any free port). */
export async function startKasuSandbox(
  options: KasuSandboxOptions & { port?: number; host?: string } = {},
): Promise<{ url: string; state: KasuSandboxState; close(): Promise<void> }> {
  return serveStandalone(createKasuSandbox(options), { ok: false, mensaje: 'Petición desconocida' }, options);
}
