import { ERRORS, type ErrorCode } from '../shared/errors.js';

/**
 * The one typed error of the server. Throw it anywhere; the error middleware turns it into the envelope
 * `{error:{code, message, retryable, requestId, fields?}}`. `detail` is for the log only, never for the client.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly fields: Record<string, string> | undefined;
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    options: { fields?: Record<string, string>; detail?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryable = options.retryable ?? ERRORS[code].retryable;
    this.fields = options.fields;
    this.detail = options.detail;
  }
}

/** A failure talking to a provider, already mapped to one of our codes. */
export class ProviderError extends AppError {
  readonly provider: string;
  readonly upstreamStatus: number | undefined;

  constructor(
    provider: string,
    code: ErrorCode,
    options: { upstreamStatus?: number; detail?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, { ...options, detail: { provider, upstreamStatus: options.upstreamStatus, ...options.detail } });
    this.name = 'ProviderError';
    this.provider = provider;
    this.upstreamStatus = options.upstreamStatus;
  }
}
