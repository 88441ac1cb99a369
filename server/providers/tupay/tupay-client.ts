/**
 * The Tupay (D24) reconciliation API adapter: log in with the access and secret keys, keep the BEARER_TOKEN session
 * while Tupay keeps it (15 minutes after its last use), and read deposits and cash-outs page by page over windows of
 * at most 60 days. Every failure maps to one of our codes; Tupay's own `{code, description}` goes to `detail` only.
 * The secret key and the token never reach a log line, an error message or an error's detail.
 */
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ErrorCode } from '../../../shared/errors.js';
import { ProviderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  parseProviderAnswer,
  providerAgent,
  providerCall,
  transportDetail,
  type ProviderAnswer,
  type ProviderTimeouts,
} from '../provider-http.js';
import {
  TupayCashoutSchema,
  TupayDepositSchema,
  TupayErrorSchema,
  pageSchema,
  type TupayCashout,
  type TupayDeposit,
} from './tupay-schemas.js';

export type { TupayCashout, TupayDeposit } from './tupay-schemas.js';

export type TupayConfig = {
  /** e.g. https://merchants-api-stg.tupayonline.com (without /v1). */
  baseUrl: string;
  /** The API user's e-mail. */
  accessKey: string;
  /** The API user's password; sent only in the login body. */
  secretKey: string;
  /** totalMs: the overall deadline of each call, e.g. one page (connect, send, headers, whole body); see ProviderTimeouts. */
  timeouts: ProviderTimeouts;
  userAgent: string;
  /** How the token goes back: `Cookie: BEARER_TOKEN=…` (default) or `Authorization: BEARER_TOKEN=…`; Tupay takes both. */
  sendTokenAs?: 'cookie' | 'authorization';
  /** Query parameter name of the client's document; the document spells it `clienteDocument` (default). */
  clientDocumentParam?: string;
};

export type TupayClientOptions = {
  logger?: Logger;
  /** Used instead of the client's own Agent (which is then not created, nor closed by close()). */
  dispatcher?: Dispatcher;
  /** Milliseconds since the epoch; decides whether the session is still alive. */
  now?: () => number;
};

/** Filters on the creation date; `from` and `to` both inclusive. */
export type TupayFilter = {
  from: Date;
  to: Date;
  /** e.g. XA (every method) or XAQR (QR methods only). */
  paymentMethod?: string;
  /** ISO-3166 alpha-2, e.g. MX. */
  country?: string;
  clientDocument?: string;
  status?: string;
};

type Operation = 'login' | 'logout' | 'deposits' | 'cashouts';

/** After each page: which window (1-based) of how many, and how many records have been read so far. */
export type TupayReadProgress = { window: number; windows: number; page: number; records: number };
export type TupayReadOptions = { onPage?: (progress: TupayReadProgress) => void };

const SESSION_IDLE_MS = 15 * 60_000;
/** Log in again a little before Tupay would forget the session, so a call does not race its expiry. */
const SESSION_MARGIN_MS = 60_000;
export const TUPAY_MAX_WINDOW_SECONDS = 60 * 86_400;
/** Guard against a provider that ignores `page` and answers full pages forever. */
const MAX_PAGES_PER_WINDOW = 10_000;

/** A Date to unix seconds (floored). */
export function unixSeconds(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError('not a date');
  return Math.floor(ms / 1000);
}

/**
 * [from, to] (unix seconds, both inclusive) as consecutive windows of at most 60 days, none overlapping.
 * A reversed period is returned as it is, so Tupay's own answer (412 code 17) decides.
 */
export function tupayWindows(from: number, to: number): Array<{ from: number; to: number }> {
  if (from > to) return [{ from, to }];
  const windows: Array<{ from: number; to: number }> = [];
  let start = from;
  for (;;) {
    const end = Math.min(start + TUPAY_MAX_WINDOW_SECONDS, to);
    windows.push({ from: start, to: end });
    if (end >= to) return windows;
    start = end + 1;
  }
}

export class TupayClient {
  readonly #config: TupayConfig;
  readonly #baseUrl: string;
  readonly #log: Logger | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #now: () => number;
  #session: { token: string; lastUsedAt: number } | null = null;
  #loggingIn: Promise<string> | null = null;

  constructor(config: TupayConfig, options: TupayClientOptions = {}) {
    this.#config = config;
    this.#baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.#log = options.logger?.child({ provider: 'tupay' });
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher = options.dispatcher ?? providerAgent(config.timeouts);
    this.#now = options.now ?? Date.now;
  }

  /** Every deposit created in [from, to] matching the filters, window by window and page by page. */
  deposits(filter: TupayFilter, options: TupayReadOptions = {}): AsyncGenerator<TupayDeposit> {
    return this.#list('deposits', '/v1/deposits', filter, TupayDepositSchema, options);
  }

  /** Every cash-out created in [from, to] matching the filters. */
  cashouts(filter: TupayFilter, options: TupayReadOptions = {}): AsyncGenerator<TupayCashout> {
    return this.#list('cashouts', '/v1/cashouts', filter, TupayCashoutSchema, options);
  }

  /** Ends the session at Tupay (if there is one). A session Tupay already forgot is not an error. */
  async logout(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (!session) return;
    const answer = await this.#send('logout', 'DELETE', '/v1/auth/session/destroy', session.token);
    if (answer.status === 401 || (answer.status >= 200 && answer.status < 300)) return;
    throw this.#failure('logout', answer);
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  // ---------- reading ----------

  async *#list<S extends z.ZodType>(
    operation: 'deposits' | 'cashouts',
    path: string,
    filter: TupayFilter,
    schema: S,
    options: TupayReadOptions,
  ): AsyncGenerator<z.output<S>> {
    const page = pageSchema(schema);
    const windows = tupayWindows(unixSeconds(filter.from), unixSeconds(filter.to));
    let records = 0;
    for (const [windowIndex, window] of windows.entries()) {
      for (let index = 0; ; index++) {
        if (index >= MAX_PAGES_PER_WINDOW) {
          throw new ProviderError('tupay', 'PROVIDER_UNAVAILABLE', {
            detail: { operation, why: 'too many pages in one window (page parameter ignored?)' },
          });
        }
        const query = this.#query(filter, window, index);
        const answer = await this.#authorized(operation, `${path}?${query}`);
        const body = parseProviderAnswer('tupay', { operation }, answer, page, false) as {
          maxRows?: number;
          data: Array<z.output<S>>;
        };
        records += body.data.length;
        options.onPage?.({ window: windowIndex + 1, windows: windows.length, page: index, records });
        yield* body.data;
        // A full page means there may be more; `rows` is never a total.
        if (body.data.length === 0 || body.data.length < (body.maxRows ?? 50)) break;
      }
    }
  }

  #query(filter: TupayFilter, window: { from: number; to: number }, page: number): string {
    const params = new URLSearchParams({ from: String(window.from), to: String(window.to), page: String(page) });
    if (filter.paymentMethod !== undefined) params.set('paymentMethod', filter.paymentMethod);
    if (filter.country !== undefined) params.set('country', filter.country);
    if (filter.clientDocument !== undefined) {
      params.set(this.#config.clientDocumentParam ?? 'clienteDocument', filter.clientDocument);
    }
    if (filter.status !== undefined) params.set('status', filter.status);
    return params.toString();
  }

  // ---------- session ----------

  /** A GET with the session's token; on 401 logs in again once and repeats it. */
  async #authorized(operation: Operation, pathAndQuery: string): Promise<ProviderAnswer> {
    let answer = await this.#send(operation, 'GET', pathAndQuery, await this.#token());
    if (answer.status === 401) {
      this.#log?.info('tupay session expired, logging in again', { operation });
      this.#session = null;
      answer = await this.#send(operation, 'GET', pathAndQuery, await this.#token());
    }
    if (answer.status < 200 || answer.status >= 300) {
      if (answer.status === 401) this.#session = null;
      throw this.#failure(operation, answer);
    }
    return answer;
  }

  async #token(): Promise<string> {
    const session = this.#session;
    if (session && this.#now() - session.lastUsedAt < SESSION_IDLE_MS - SESSION_MARGIN_MS) {
      session.lastUsedAt = this.#now();
      return session.token;
    }
    this.#session = null;
    // One login at a time, shared by concurrent readers.
    this.#loggingIn ??= this.#login().finally(() => {
      this.#loggingIn = null;
    });
    return this.#loggingIn;
  }

  async #login(): Promise<string> {
    const body = JSON.stringify({ accessKey: this.#config.accessKey, secretKey: this.#config.secretKey });
    const answer = await this.#send('login', 'POST', '/v1/auth/login', null, body);
    if (answer.status < 200 || answer.status >= 300) throw this.#failure('login', answer);
    const token = bearerToken(answer.headers['set-cookie']);
    if (!token) {
      throw new ProviderError('tupay', 'PROVIDER_UNAVAILABLE', {
        upstreamStatus: answer.status,
        detail: { operation: 'login', why: 'no BEARER_TOKEN cookie in the login answer' },
      });
    }
    this.#session = { token, lastUsedAt: this.#now() };
    return token;
  }

  // ---------- transport ----------

  async #send(operation: Operation, method: 'GET' | 'POST' | 'DELETE', pathAndQuery: string, token: string | null, body?: string): Promise<ProviderAnswer> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#config.userAgent };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== null) {
      if (this.#config.sendTokenAs === 'authorization') headers.authorization = `BEARER_TOKEN=${token}`;
      else headers.cookie = `BEARER_TOKEN=${token}`;
    }
    const started = performance.now();
    try {
      const answer = await providerCall(`${this.#baseUrl}${pathAndQuery}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        dispatcher: this.#dispatcher,
        timeouts: this.#config.timeouts,
      });
      this.#log?.info('tupay call', { operation, method, status: answer.status, ms: Math.round(performance.now() - started) });
      return answer;
    } catch (error) {
      const transport = transportDetail(error);
      this.#log?.warn('tupay call failed', { operation, method, ...transport, ms: Math.round(performance.now() - started) });
      throw new ProviderError('tupay', 'PROVIDER_UNAVAILABLE', { detail: { operation, ...transport }, cause: error });
    }
  }

  /** The ProviderError for a non-2xx answer. */
  #failure(operation: Operation, answer: ProviderAnswer): ProviderError {
    const { status } = answer;
    const refusal = tupayError(answer.text);
    const providerCode = refusal?.code === undefined ? undefined : Number(refusal.code);
    let code: ErrorCode;
    let why: string;
    if (status === 412 && (operation === 'login' || providerCode === 11)) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'Tupay refused the access or secret key';
    } else if (status === 412) {
      code = 'VALIDATION_FAILED';
      why =
        providerCode === 17
          ? '`from` is after `to`'
          : providerCode === 19
            ? 'Tupay does not know this country'
            : 'Tupay refused a parameter';
    } else if (status === 403) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = providerCode === 83 ? 'this IP is not on Tupay’s allow-list' : 'Tupay forbids this call';
    } else if (status === 401) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'Tupay refused a fresh session token';
    } else if (status === 429) {
      code = 'RATE_LIMITED';
      why = 'Tupay rate limit';
    } else if (status >= 500) {
      code = 'PROVIDER_UNAVAILABLE';
      why = 'Tupay server error';
    } else {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'unexpected status (wrong base URL?)';
    }
    const detail: Record<string, unknown> = { operation, why };
    if (refusal) {
      detail.providerCode = refusal.code;
      detail.providerDescription = refusal.description?.slice(0, 200);
    }
    this.#log?.warn('tupay refused a call', { operation, status, code, providerCode });
    return new ProviderError('tupay', code, { upstreamStatus: status, detail });
  }
}

/** The BEARER_TOKEN value from Set-Cookie header(s). */
export function bearerToken(setCookie: string | string[] | undefined): string | null {
  for (const cookie of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
    const match = /(?:^|[;,]\s*)BEARER_TOKEN=([^;,\s]+)/.exec(cookie);
    if (match?.[1]) return match[1];
  }
  return null;
}

function tupayError(text: string): z.output<typeof TupayErrorSchema> | null {
  try {
    const parsed = TupayErrorSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
