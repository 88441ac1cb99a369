import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
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

/** CORS for the partner sites. An empty list allows every origin (sandbox mode only: live mode requires a list). */
export function cors(allowedOrigins: string[]): RequestHandler {
  const allowAll = allowedOrigins.length === 0;
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && (allowAll || allowedOrigins.includes(origin))) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Idempotent-Replayed');
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
  if (error instanceof AppError) appError = error;
  else if (isBodyParserError(error)) appError = new AppError('VALIDATION_FAILED', { fields: { '(body)': error.type === 'entity.too.large' ? 'TOO_LARGE' : 'INVALID_JSON' } });
  else appError = new AppError('INTERNAL', { cause: error });

  const log = req.log ?? console;
  const entry = { code: appError.code, status: appError.status, detail: appError.detail, path: req.path, method: req.method };
  if (appError.status >= 500) log.error('request failed', { ...entry, error: appError.cause ?? appError });
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
  if (appError.code === 'RATE_LIMITED' || appError.code === 'SUBMIT_IN_PROGRESS') res.setHeader('Retry-After', '2');
  res.status(appError.status || 500).json(body);
};

function isBodyParserError(error: unknown): error is { type: string } {
  return typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string'
    && String((error as { type: string }).type).startsWith('entity.');
}
