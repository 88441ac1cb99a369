/**
 * The KASU adapter: token_full (RENAPO check + access token), modify_record (price) and new_service (registration).
 * Every KASU answer is parsed with zod and every failure becomes a ProviderError with one of our codes.
 * The private key only ever feeds the HMAC; neither it nor a token reaches a log line or an error.
 */
import { createHmac } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Product } from '../../../shared/contract.js';
import type { ErrorCode } from '../../../shared/errors.js';
import { pesosToCentavos, type Centavos } from '../../../shared/money.js';
import { AppError, ProviderError } from '../../errors.js';
import {
  parseProviderAnswer,
  providerAgent,
  providerCall,
  transportDetail,
  type ProviderAnswer,
  type ProviderTimeouts,
} from '../provider-http.js';
import type { Logger } from '../../log.js';
import {
  KasuErrorBodySchema,
  ModifyRecordResponseSchema,
  NewServiceResponseSchema,
  TokenFullResponseSchema,
} from './kasu-schemas.js';

export type KasuConfig = {
  /** e.g. http://127.0.0.1:8080/sandbox/kasu or KASU's live URL. */
  baseUrl: string;
  /** nombre_de_usuario */
  user: string;
  /** Used only to compute firma_KEY; never logged, never in an error message. */
  privateKey: string;
  /** Appended to baseUrl; '' = post to baseUrl itself (KASU serves every function on one URL). */
  paths: { tokenFull: string; modifyRecord: string; newService: string };
  /** totalMs: the overall deadline of each call (connect, send, headers, whole body); see ProviderTimeouts. */
  timeouts: ProviderTimeouts;
  /** Reuse a token until this many seconds before it expires (default 30). */
  tokenRefreshSkewSeconds: number;
  /** e.g. "kasu-checkout/0.1"; KASU ties API users to their User-Agent. */
  userAgent: string;
};

export type KasuRegistration = {
  curp: string;
  email: string;
  /** 10 digits. */
  phone: string;
  product: Product;
  instalments: number;
  consents: { terms: boolean; privacy: boolean; trust: boolean };
  address: {
    street: string;
    number: string;
    neighborhood: string;
    municipality: string;
    /** 5 digits. */
    postalCode: string;
    stateName: string;
  };
};

export type KasuPrice = {
  /** KASU's resolved product code (for Funerario the age band, e.g. "30a49"). */
  kasuProduct: string;
  price: Centavos;
  commission: Centavos;
  maxInstalments: number;
  annualRatePercent: number;
};

export type KasuRegistrationResult = {
  policy: string;
  status: string;
  name: string;
  price: Centavos;
  instalments: number;
  paymentLink: string | null;
  /** KASU's own words; for the log, never for a customer. */
  message: string;
};

export type KasuClientOptions = {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  logger?: Logger;
  /** Used instead of the client's own Agent (which is then not created, nor closed by close()). */
  dispatcher?: Dispatcher;
};

type KasuFunction = 'token_full' | 'modify_record' | 'new_service';

type CachedToken = {
  token: string;
  name: string;
  /** Echoed verbatim: KASU's token is an HMAC of exactly this JSON, so a re-typed value would break it (401). */
  tokenData: Record<string, unknown>;
  reuseUntilMs: number;
};

type Answer = ProviderAnswer;

/** What each status means for any function; 409 is decided by register() and 418 by #authorized(). */
const STATUS_CODES: Record<number, { code: ErrorCode; why: string }> = {
  // A 400 means *we* sent something incomplete: our bug or our configuration, and repeating it will not help.
  400: { code: 'PROVIDER_CONFIG_ERROR', why: 'KASU says a required field is missing' },
  401: { code: 'PROVIDER_CONFIG_ERROR', why: 'KASU says the data was altered (signature, token or token data)' },
  403: { code: 'PROVIDER_CONFIG_ERROR', why: 'KASU rejected the API user' },
  404: { code: 'PROVIDER_CONFIG_ERROR', why: 'KASU does not know this function at this URL' },
  405: { code: 'PROVIDER_CONFIG_ERROR', why: 'KASU saw a method other than POST (a redirect or proxy changed it)' },
  406: { code: 'PRODUCT_NOT_ELIGIBLE', why: 'product out of age range or unknown' },
  412: { code: 'ALREADY_REGISTERED', why: 'customer already registered with this product' },
  417: { code: 'CURP_REJECTED', why: 'RENAPO: deceased or non-existent CURP' },
  429: { code: 'RATE_LIMITED', why: 'KASU rate limit' },
};

/** Transport failures that happen before the request leaves: a registration certainly did not happen. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

const MAX_COUNTED_CURPS = 10_000;

export class KasuClient {
  readonly #config: KasuConfig;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pendingTokens = new Map<string, Promise<CachedToken>>();
  readonly #tokenCounts = new Map<string, number>();

  constructor(config: KasuConfig, options: KasuClientOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger?.child({ provider: 'kasu' });
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher =
      options.dispatcher ??
      providerAgent(config.timeouts);
  }

  /** token_full (cached): proves RENAPO knows the CURP; returns the RENAPO name. 417 -> CURP_REJECTED. */
  async verifyCurp(curp: string): Promise<{ name: string }> {
    const token = await this.#token(normalizeCurp(curp));
    return { name: token.name };
  }

  /** modify_record: price of a product for the CURP. */
  async price(curp: string, product: Product): Promise<KasuPrice> {
    const answer = await this.#authorized('modify_record', normalizeCurp(curp), { producto: product });
    this.#expectSuccess('modify_record', answer);
    const body = parseProviderAnswer('kasu', { function: 'modify_record' }, answer, ModifyRecordResponseSchema, false);
    return {
      kasuProduct: body.producto,
      price: pesosToCentavos(body.costo),
      commission: pesosToCentavos(body.comision),
      maxInstalments: body.forma_pago.meses_max,
      annualRatePercent: body.forma_pago.tasa_anual,
    };
  }

  /** new_service: registration. */
  async register(input: KasuRegistration): Promise<KasuRegistrationResult> {
    if (!/^\d{10}$/.test(input.phone)) throw new AppError('VALIDATION_FAILED', { fields: { 'contact.phone': 'PHONE_INVALID' } });
    if (!/^\d{5}$/.test(input.address.postalCode)) {
      throw new AppError('VALIDATION_FAILED', { fields: { 'address.postalCode': 'POSTAL_CODE_INVALID' } });
    }
    const { consents, address } = input;
    const allAccepted = consents.terms && consents.privacy && consents.trust;
    // Field order and JSON types as in KASU's document: telefono, numero_pagos, numero and codigo_postal unquoted.
    const answer = await this.#authorized('new_service', normalizeCurp(input.curp), {
      mail: input.email,
      telefono: Number(input.phone),
      producto: input.product,
      numero_pagos: input.instalments,
      terminos: consentWord(consents.terms),
      aviso: consentWord(consents.privacy),
      fideicomiso: consentWord(consents.trust),
      direccion: {
        calle: address.street,
        numero: houseNumber(address.number),
        colonia: address.neighborhood,
        municipio: address.municipality,
        // A JSON number as documented; note that this drops the leading zero of CDMX codes (01000 -> 1000).
        codigo_postal: Number(address.postalCode),
        estado: address.stateName,
      },
    });
    // KASU answers 409 both for a consent not accepted and for an email/phone already registered. We know what we
    // sent: with all three accepted (the BFF never registers otherwise) a 409 can only mean the contact is taken.
    this.#expectSuccess('new_service', answer, { 409: allAccepted ? 'CONTACT_ALREADY_REGISTERED' : 'CONSENT_REQUIRED' });
    const body = parseProviderAnswer('kasu', { function: 'new_service' }, answer, NewServiceResponseSchema, true);
    const purchase = body.datos_compra;
    return {
      policy: purchase.poliza,
      status: purchase.status,
      name: purchase.nombre,
      price: pesosToCentavos(purchase.costo),
      instalments: purchase.numero_pagos ?? input.instalments,
      paymentLink: purchase.pago_link ?? null,
      message: body.mensaje ?? '',
    };
  }

  /** How many token_full requests were made for a CURP (tests and benchmarks). */
  tokenRequests(curp: string): number {
    return this.#tokenCounts.get(normalizeCurp(curp)) ?? 0;
  }

  async close(): Promise<void> {
    this.#tokens.clear();
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  // ---------- tokens ----------

  /** One token per CURP, reused while valid; concurrent callers share one in-flight token_full. */
  #token(curp: string): Promise<CachedToken> {
    const cached = this.#tokens.get(curp);
    if (cached && this.#now() < cached.reuseUntilMs) return Promise.resolve(cached);
    let pending = this.#pendingTokens.get(curp);
    if (!pending) {
      pending = this.#requestToken(curp).finally(() => this.#pendingTokens.delete(curp));
      this.#pendingTokens.set(curp, pending);
    }
    return pending;
  }

  async #requestToken(curp: string): Promise<CachedToken> {
    this.#countTokenRequest(curp);
    const sentAt = this.#now();
    const firma = createHmac('sha256', this.#config.privateKey).update(curp).digest('hex');
    const answer = await this.#post('token_full', {
      tipo_peticion: 'token_full',
      nombre_de_usuario: this.#config.user,
      firma_KEY: firma,
      curp_en_uso: curp,
    });
    this.#expectSuccess('token_full', answer);
    const body = parseProviderAnswer('kasu', { function: 'token_full' }, answer, TokenFullResponseSchema, false);
    const lifetimeMs = Number(body.token_data.expires_in) * 1000;
    const issuedAt = timestampMs(body.token_data.timestamp);
    // KASU's clock decides expiry, so its timestamp is the base; but one further from ours than a whole token lifetime
    // (a misread zone, a wrong server clock) would make us refetch on every call, so then count from when we asked.
    const base = issuedAt !== null && Math.abs(issuedAt - sentAt) <= lifetimeMs ? issuedAt : sentAt;
    if (base !== issuedAt) this.#log?.warn('kasu token timestamp ignored', { timestamp: body.token_data.timestamp });
    const token: CachedToken = {
      token: body.token,
      name: body.nombre.trim(),
      tokenData: body.token_data,
      reuseUntilMs: base + lifetimeMs - this.#config.tokenRefreshSkewSeconds * 1000,
    };
    this.#storeToken(curp, token);
    return token;
  }

  #storeToken(curp: string, token: CachedToken): void {
    const now = this.#now();
    for (const [key, value] of this.#tokens) if (value.reuseUntilMs <= now) this.#tokens.delete(key);
    this.#tokens.set(curp, token);
  }

  #countTokenRequest(curp: string): void {
    this.#tokenCounts.set(curp, (this.#tokenCounts.get(curp) ?? 0) + 1);
    // Bounded: the counts exist for tests and benchmarks, not to grow with every customer ever served.
    if (this.#tokenCounts.size > MAX_COUNTED_CURPS) {
      const oldest = this.#tokenCounts.keys().next().value;
      if (oldest !== undefined) this.#tokenCounts.delete(oldest);
    }
  }

  /** A call that needs a token; on 418 (expired) gets a fresh token and repeats the call once. */
  async #authorized(fn: 'modify_record' | 'new_service', curp: string, fields: Record<string, unknown>): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.#token(curp);
      const answer = await this.#post(
        fn,
        { tipo_peticion: fn, nombre_de_usuario: this.#config.user, curp_en_uso: curp, ...fields, token_data: token.tokenData },
        token.token,
      );
      if (answer.status !== 418) return answer;
      // Only drop it if nobody has replaced it meanwhile (a concurrent caller may already hold a fresh one).
      if (this.#tokens.get(curp) === token) this.#tokens.delete(curp);
      if (attempt === 2) {
        throw new ProviderError('kasu', 'PROVIDER_UNAVAILABLE', {
          upstreamStatus: 418,
          detail: { function: fn, reason: 'token expired again right after a refresh (clock skew at KASU?)' },
        });
      }
      this.#log?.info('kasu token expired; refreshing', { function: fn, curp });
    }
  }

  // ---------- transport ----------

  #url(fn: KasuFunction): string {
    const { paths } = this.#config;
    const path = fn === 'token_full' ? paths.tokenFull : fn === 'modify_record' ? paths.modifyRecord : paths.newService;
    const base = this.#config.baseUrl.replace(/\/+$/, '');
    if (!path) return base;
    return path.startsWith('/') ? base + path : `${base}/${path}`;
  }

  async #post(fn: KasuFunction, payload: Record<string, unknown>, bearer?: string): Promise<Answer> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': this.#config.userAgent,
    };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const started = performance.now();
    try {
      const answer = await providerCall(this.#url(fn), {
        method: 'POST',
        headers,
        body: JSON.stringify(payload),
        dispatcher: this.#dispatcher,
        timeouts: this.#config.timeouts,
      });
      const ms = Math.round(performance.now() - started);
      this.#log?.info('kasu call', { function: fn, status: answer.status, ms });
      return answer;
    } catch (error) {
      const transport = transportDetail(error);
      const ms = Math.round(performance.now() - started);
      this.#log?.warn('kasu call failed', { function: fn, ...transport, ms });
      throw new ProviderError('kasu', 'PROVIDER_UNAVAILABLE', {
        detail: { function: fn, ...transport, ...(fn === 'new_service' ? { outcomeUnknown: !NOT_SENT.has(transport.reason) } : {}) },
        cause: error,
      });
    }
  }

  /** Throws the mapped ProviderError unless the answer is a 2xx. */
  #expectSuccess(fn: KasuFunction, answer: Answer, overrides: Partial<Record<number, ErrorCode>> = {}): void {
    const { status } = answer;
    if (status >= 200 && status < 300) return;
    const known = STATUS_CODES[status];
    const code: ErrorCode =
      overrides[status] ??
      known?.code ??
      (status >= 300 && status < 400
        ? 'PROVIDER_CONFIG_ERROR' // a redirect: the base URL is wrong (http instead of https, a moved endpoint)
        : 'PROVIDER_UNAVAILABLE'); // 5xx, a 418 from token_full itself, anything KASU does not document
    const detail: Record<string, unknown> = {
      function: fn,
      why: known?.why ?? 'unexpected status',
      providerMessage: providerMessage(answer.text),
    };
    if (status === 429) detail.retryAfter = answer.headers['retry-after'];
    if (fn === 'new_service' && code === 'PROVIDER_UNAVAILABLE') detail.outcomeUnknown = status >= 500;
    throw new ProviderError('kasu', code, { upstreamStatus: status, detail });
  }

}

function normalizeCurp(curp: string): string {
  return curp.trim().toUpperCase();
}

/** The document's word for acceptance is "ACCEPT"; anything else is a refusal to KASU. */
function consentWord(accepted: boolean): 'ACCEPT' | 'DECLINE' {
  return accepted ? 'ACCEPT' : 'DECLINE';
}

/** The document sends the house number unquoted; "12-B", "S/N" or "012" can only go as strings. */
function houseNumber(value: string): number | string {
  const trimmed = value.trim();
  return /^(0|[1-9]\d{0,8})$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/**
 * KASU's `timestamp` in milliseconds. KASU sends unix seconds (PHP `time()`); defensively we also accept
 * milliseconds (a number above 1e11, i.e. after 1973 in ms) and digit strings of either, and ISO 8601 strings.
 * Returns null for anything else.
 */
function timestampMs(value: number | string): number | null {
  if (typeof value === 'string' && !/^\d+(\.\d+)?$/.test(value.trim())) {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
  }
  const numeric = Number(value);
  if (!Number.isFinite(numeric) || numeric <= 0) return null;
  return numeric > 1e11 ? numeric : numeric * 1000;
}

/** KASU's own words from an error body, shortened, for the log only. Error bodies are often empty. */
function providerMessage(text: string): string | undefined {
  if (!text) return undefined;
  try {
    const parsed = KasuErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) return (parsed.data.mensaje ?? parsed.data.message)?.slice(0, 200);
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 200);
}
