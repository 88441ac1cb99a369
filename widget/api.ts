/**
 * The BFF client. Loaded with a dynamic `import()` the first time the widget needs it, because it pulls zod
 * (through the shared schemas) and the first step must paint without it.
 *
 * Expected failures are values: every call resolves to `{ok: true, data}` or `{ok: false, error}`, where
 * `error.code` is a code of shared/errors.ts. Every answer is parsed with the shared schemas.
 */
// First: configures zod before shared/contract.ts builds its schemas.
import './zod-jitless.js';
import type { z } from 'zod';
import {
  CardSessionResponseSchema,
  CheckoutResponseSchema,
  CreateCheckoutResponseSchema,
  ErrorBodySchema,
  IDEMPOTENCY_KEY_HEADER,
  KhipuBanksResponseSchema,
  QuoteResponseSchema,
  type CardSessionResponse,
  type CheckoutResponse,
  type CreateCheckoutResponse,
  type KhipuBanksResponse,
  type Product,
  type QuoteResponse,
  type SubmitRequest,
  type UpdateCheckoutRequest,
} from '../shared/contract.js';
import { ERRORS, type ErrorCode } from '../shared/errors.js';

export type ApiError = {
  code: ErrorCode;
  retryable: boolean;
  /** Field path ("contact.email") → code ("EMAIL_INVALID") or a short reason. */
  fields?: Record<string, string>;
  /** The BFF's request id, for support. */
  requestId?: string;
};

export type ApiResult<T> = { ok: true; data: T } | { ok: false; error: ApiError };

/** A checkout's credentials, as returned by `createCheckout`. */
export type CheckoutAuth = { id: string; token: string };

export type ApiClient = {
  createCheckout(curp: string, signal?: AbortSignal): Promise<ApiResult<CreateCheckoutResponse>>;
  getCheckout(auth: CheckoutAuth, signal?: AbortSignal): Promise<ApiResult<CheckoutResponse>>;
  quote(auth: CheckoutAuth, product: Product, signal?: AbortSignal): Promise<ApiResult<QuoteResponse>>;
  updateCheckout(
    auth: CheckoutAuth,
    changes: UpdateCheckoutRequest,
    signal?: AbortSignal,
  ): Promise<ApiResult<CheckoutResponse>>;
  submit(
    auth: CheckoutAuth,
    request: SubmitRequest,
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<ApiResult<CheckoutResponse>>;
  khipuBanks(signal?: AbortSignal): Promise<ApiResult<KhipuBanksResponse>>;
  /** The card tokenizer frame for this checkout; `origin` is this page's, the only one the frame will post to. */
  cardSession(auth: CheckoutAuth, origin: string, signal?: AbortSignal): Promise<ApiResult<CardSessionResponse>>;
};

/** How long one request may take before the customer is offered a retry. */
const REQUEST_TIMEOUT_MS = 30_000;

/** `baseUrl`: the BFF origin (and optional path prefix) without a trailing slash; '' = same origin. */
export function createApiClient(baseUrl: string): ApiClient {
  async function request<S extends z.ZodType>(
    schema: S,
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    options: {
      body?: unknown;
      auth?: CheckoutAuth;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
    },
  ): Promise<ApiResult<z.output<S>>> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.auth) headers.authorization = `Bearer ${options.auth.token}`;
    // By hand rather than AbortSignal.any/timeout, which older iPhones still in use in Mexico lack.
    const controller = new AbortController();
    const abort = () => controller.abort();
    const timer = setTimeout(abort, REQUEST_TIMEOUT_MS);
    options.signal?.addEventListener('abort', abort, { once: true });

    let response: Response;
    let text: string;
    try {
      // Looked up on every call (not captured once) so a page or a test can wrap `fetch` after load.
      response = await globalThis.fetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        credentials: 'omit',
        signal: controller.signal,
      });
      text = await response.text();
    } catch {
      return failure('NETWORK_ERROR');
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', abort);
    }
    const requestId = response.headers.get('x-request-id') ?? undefined;
    const json = parseJson(text);

    if (!response.ok) {
      const body = ErrorBodySchema.safeParse(json);
      if (!body.success) return failure('INTERNAL', requestId);
      const { code, retryable, fields, requestId: bodyRequestId } = body.data.error;
      return { ok: false, error: { code, retryable, ...(fields ? { fields } : {}), requestId: bodyRequestId } };
    }
    const data = schema.safeParse(json);
    return data.success ? { ok: true, data: data.data } : failure('INTERNAL', requestId);
  }

  const checkoutPath = (auth: CheckoutAuth) => `/v1/checkouts/${encodeURIComponent(auth.id)}`;

  return {
    createCheckout: (curp, signal) =>
      request(CreateCheckoutResponseSchema, 'POST', '/v1/checkouts', { body: { curp }, signal }),
    getCheckout: (auth, signal) => request(CheckoutResponseSchema, 'GET', checkoutPath(auth), { auth, signal }),
    quote: (auth, product, signal) =>
      request(QuoteResponseSchema, 'POST', `${checkoutPath(auth)}/quote`, { auth, body: { product }, signal }),
    updateCheckout: (auth, changes, signal) =>
      request(CheckoutResponseSchema, 'PATCH', checkoutPath(auth), { auth, body: changes, signal }),
    submit: (auth, body, idempotencyKey, signal) =>
      request(CheckoutResponseSchema, 'POST', `${checkoutPath(auth)}/submit`, {
        auth,
        body,
        headers: { [IDEMPOTENCY_KEY_HEADER]: idempotencyKey },
        signal,
      }),
    khipuBanks: (signal) => request(KhipuBanksResponseSchema, 'GET', '/v1/khipu/banks', { signal }),
    cardSession: (auth, origin, signal) =>
      request(CardSessionResponseSchema, 'POST', `${checkoutPath(auth)}/card-session`, {
        auth,
        body: { origin },
        signal,
      }),
  };
}

function failure(code: 'NETWORK_ERROR' | 'INTERNAL', requestId?: string): { ok: false; error: ApiError } {
  return { ok: false, error: { code, retryable: ERRORS[code].retryable, ...(requestId ? { requestId } : {}) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
