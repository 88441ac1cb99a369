import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';
import type { z } from 'zod';
import { errorMessage, type Locale } from '../../shared/errors.js';
import type { ErrorBody } from '../../shared/contract.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

/** Every request gets an id (the caller's X-Request-Id when it is sane) that errors and log lines carry. */
export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    req.id = given && /^[\w.-]{8,64}$/.test(given) ? given : randomUUID();
    req.log = logger.child({ requestId: req.id });
    res.setHeader('X-Request-Id', req.id);
    next();
  };
}

/** The policy of every JSON answer: it loads nothing and may be framed by nobody. Pages set their own. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Security headers (helmet) by route class:
 * - everything: nosniff, Referrer-Policy no-referrer, no X-Powered-By, COOP same-origin, HSTS in live mode only;
 * - API answers (/v1, /admin, /webhooks, health, OpenAPI, JSON errors): X-Frame-Options DENY and our own
 *   `frame-ancestors 'none'` policy, Cross-Origin-Resource-Policy same-origin (CORS requests are not subject to it);
 * - `/widget/*`: Cross-Origin-Resource-Policy cross-origin, since partner pages load it (also as a classic script);
 * - `/sandbox/card/*`: the tokenizer page is framed by partner pages and sets its own CSP with `frame-ancestors` =
 *   the partner origin, so no X-Frame-Options there, and CORP cross-origin (pages with COEP can still frame it);
 * - the demo page (`/`) keeps the strict CSP it sets itself: helmet's CSP is off everywhere.
 */
export function securityHeaders(mode: 'sandbox' | 'live'): RequestHandler {
  const base: HelmetOptions = {
    contentSecurityPolicy: false,
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: mode === 'live' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    xFrameOptions: { action: 'deny' },
  };
  const api = helmet(base);
  const widget = helmet({ ...base, crossOriginResourcePolicy: { policy: 'cross-origin' } });
  const framed = helmet({ ...base, crossOriginResourcePolicy: { policy: 'cross-origin' }, xFrameOptions: false });
  const underPath = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);
  return (req, res, next) => {
    const path = req.path;
    if (underPath(path, '/widget')) return widget(req, res, next);
    if (underPath(path, '/sandbox/card')) return framed(req, res, next);
    // Pages (the demo page, the other simulators' pages) set their own CSP; every other answer is JSON.
    if (path !== '/' && path !== '/demo.css' && !underPath(path, '/sandbox')) res.setHeader('Content-Security-Policy', API_CSP);
    return api(req, res, next);
  };
}

/**
 * PostgreSQL text and jsonb cannot hold NUL (U+0000), so input carrying one (in the URL, the query or a parsed body)
 * is refused here as invalid instead of failing later in SQL as a 500.
 */
export const rejectNul: RequestHandler = (req, _res, next) => {
  if (/%00|\0/i.test(req.originalUrl)) throw new AppError('VALIDATION_FAILED', { fields: { '(url)': 'INVALID' } });
  if (req.body !== undefined && holdsNul(req.body)) throw new AppError('VALIDATION_FAILED', { fields: { '(body)': 'INVALID' } });
  next();
};

/** A NUL, or half of a surrogate pair (JSON allows "\ud800"; PostgreSQL's text and jsonb refuse both). */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function holdsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length) {
    const item = stack.pop();
    if (typeof item === 'string') {
      if (UNSTORABLE.test(item)) return true;
    } else if (item && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (UNSTORABLE.test(key)) return true;
        stack.push(child);
      }
    }
  }
  return false;
}

/** CORS for the partner sites. An empty list allows every origin (sandbox mode only: live mode requires a list). */
export function cors(allowedOrigins: string[]): RequestHandler {
  const allowAll = allowedOrigins.length === 0;
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && (allowAll || allowedOrigins.includes(origin))) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Idempotent-Replayed, Retry-After');
      res.append('Vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PATCH, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Idempotency-Key, X-Request-Id, Accept-Language');
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
    } else if (req.method === 'OPTIONS') {
      res.status(403).end();
      return;
    }
    next();
  };
}

export function localeOf(req: Request): Locale {
  return /^en\b/i.test(req.get('accept-language') ?? '') ? 'en' : 'es-MX';
}

/** Field errors of a failed zod parse, as `path → code`; our schemas put codes such as EMAIL_INVALID in messages. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) {
    const path = issue.path.map(String).join('.') || '(body)';
    if (fields[path]) continue;
    fields[path] = /^[A-Z][A-Z_]+$/.test(issue.message)
      ? issue.message
      : issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined
        ? 'REQUIRED'
        : 'INVALID';
  }
  return fields;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new AppError('VALIDATION_FAILED', { fields: fieldErrors(result.error) });
  return result.data;
}

export const notFound: RequestHandler = () => {
  throw new AppError('NOT_FOUND');
};

/** The one place where errors become answers. Unknown errors become a generic 500; detail goes to the log only. */
export const errorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  let appError: AppError;
  let status: number | undefined;
  const client = error instanceof AppError ? null : clientError(error);
  if (error instanceof AppError) appError = error;
  else if (client) {
    // Body parser and router refusals (too large, broken JSON, bad encoding, malformed URL): the caller's fault.
    appError = client.status === 404
      ? new AppError('NOT_FOUND')
      : new AppError('VALIDATION_FAILED', { fields: { [client.part]: client.reason }, detail: { type: client.type } });
    status = client.status;
  } else appError = new AppError('INTERNAL', { cause: error });
  status ??= appError.status || 500;

  const log = req.log ?? console;
  const entry = { code: appError.code, status, detail: appError.detail, path: req.path, method: req.method };
  if (status >= 500) log.error('request failed', { ...entry, error: appError.cause ?? appError });
  else log.info('request refused', entry);

  if (res.headersSent) return;
  const body: ErrorBody = {
    error: {
      code: appError.code,
      message: errorMessage(appError.code, localeOf(req)),
      retryable: appError.retryable,
      requestId: req.id ?? 'unknown',
      ...(appError.fields ? { fields: appError.fields } : {}),
    },
  };
  if ((appError.code === 'RATE_LIMITED' || appError.code === 'SUBMIT_IN_PROGRESS') && !res.getHeader('Retry-After')) {
    res.setHeader('Retry-After', '2');
  }
  res.status(status).json(body);
};

/**
 * A 4xx error thrown by Express or its body parsers (http-errors: `status` and `expose`), e.g. `entity.too.large`
 * (413), `entity.parse.failed` (400), `charset.unsupported` / `encoding.unsupported` (415), a malformed
 * percent-encoding in the path (400). Anything else is ours to explain: null.
 */
function clientError(error: unknown): { status: number; part: '(body)' | '(url)'; reason: string; type: string } | null {
  if (typeof error !== 'object' || error === null) return null;
  const { status, statusCode, type, expose } = error as { status?: unknown; statusCode?: unknown; type?: unknown; expose?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' || code < 400 || code > 499 || expose === false) return null;
  const kind = typeof type === 'string' ? type : '';
  const reason = code === 413 ? 'TOO_LARGE'
    : kind === 'entity.parse.failed' ? 'INVALID_JSON'
      : code === 415 ? 'UNSUPPORTED_MEDIA'
        : 'INVALID';
  // Body parser errors carry a type (entity.*, charset.*, encoding.*, request.*, parameters.*); the router's do not.
  return { status: code, part: kind ? '(body)' : '(url)', reason, type: kind };
}
