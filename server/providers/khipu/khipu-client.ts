/**
 * The Khipu API 2.0 adapter: form-encoded requests, each signed with the receiver's secret over exactly the strings
 * sent, JSON answers parsed with zod, every failure mapped to one of our codes. The secret only feeds the HMAC; it,
 * the Authorization header and notification tokens never reach a log line, an error message or an error's detail.
 */
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ErrorCode } from '../../../shared/errors.js';
import { centavosToDecimal, type Centavos } from '../../../shared/money.js';
import { ProviderError } from '../../errors.js';
import {
  parseProviderAnswer,
  providerAgent,
  providerCall,
  transportDetail,
  type ProviderAnswer,
  type ProviderTimeouts,
} from '../provider-http.js';
import type { Logger } from '../../log.js';
import type {
  CreatedPayment,
  CreatePaymentInput,
  KhipuApi,
  KhipuBankItem,
  KhipuPayment,
  KhipuPaymentMethod,
} from './khipu-api.js';
import {
  BanksResponseSchema,
  PaymentMethodsResponseSchema,
  PaymentsCreateResponseSchema,
  PaymentsResponseSchema,
  ReceiversCreateResponseSchema,
  SuccessResponseSchema,
  ValidationErrorSchema,
  type PaymentsResponse,
} from './khipu-schemas.js';
import { encodeKhipuParams, khipuAuthorization } from './signature.js';

export type KhipuConfig = {
  /** e.g. https://khipu.com/api/2.0, or <BFF>/sandbox/khipu/api/2.0 in sandbox mode. */
  baseUrl: string;
  receiverId: string;
  /** Used only to sign; never logged, never in an error. */
  secret: string;
  /** totalMs: the overall deadline of each call (connect, send, headers, whole body); see ProviderTimeouts. */
  timeouts: ProviderTimeouts;
  userAgent: string;
};

export type KhipuClientOptions = {
  logger?: Logger;
  /** Used instead of the client's own Agent (which is then not created, nor closed by close()). */
  dispatcher?: Dispatcher;
};

type Operation =
  | 'banks'
  | 'createPayment'
  | 'getPaymentByNotificationToken'
  | 'getPayment'
  | 'deletePayment'
  | 'confirmPayment'
  | 'refund'
  | 'paymentMethods'
  | 'createReceiver';

type Method = 'GET' | 'POST' | 'DELETE';
type Params = Array<[string, string]>;
type Answer = ProviderAnswer;

/** Calls that change something at Khipu: after a timeout or a 5xx we cannot know whether they happened. */
const MUTATIONS = new Set<Operation>(['createPayment', 'deletePayment', 'confirmPayment', 'refund', 'createReceiver']);

/** Transport failures that happen before the request leaves: the call certainly did not happen. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * Khipu answers 400 "Datos inválidos" both for a request it refuses and for an id or token it does not know.
 * These calls turn a 400 about their identifier into NOT_FOUND: the caller can then reject a forged notification
 * or report an unknown payment instead of a configuration error.
 */
const IDENTIFIER_FIELDS: Partial<Record<Operation, readonly string[]>> = {
  getPaymentByNotificationToken: ['notification_token'],
  getPayment: ['id', 'payment_id'],
  deletePayment: ['id', 'payment_id'],
  confirmPayment: ['id', 'payment_id'],
  refund: ['id', 'payment_id'],
};

/** ISO-8601 in UTC without milliseconds, as the document's example: 2017-03-01T13:00:00Z. */
export function khipuDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('not a date');
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class KhipuClient implements KhipuApi {
  readonly #config: KhipuConfig;
  readonly #baseUrl: string;
  readonly #log: Logger | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;

  constructor(config: KhipuConfig, options: KhipuClientOptions = {}) {
    this.#config = config;
    this.#baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.#log = options.logger?.child({ provider: 'khipu' });
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher =
      options.dispatcher ??
      providerAgent(config.timeouts);
  }

  async banks(): Promise<KhipuBankItem[]> {
    const body = await this.#call('banks', 'GET', '/banks', [], BanksResponseSchema);
    return body.banks.map((bank) => ({
      bankId: bank.bank_id,
      name: bank.name,
      message: bank.message,
      minAmount: bank.min_amount,
      type: bank.type,
      parent: bank.parent,
    }));
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatedPayment> {
    const params: Params = [
      ['subject', input.subject],
      ['currency', input.currency],
      ['amount', centavosToDecimal(input.amount)],
      ['transaction_id', input.transactionId],
    ];
    const optional: Array<[string, string | undefined]> = [
      ['custom', input.custom],
      ['body', input.body],
      ['bank_id', input.bankId],
      ['return_url', input.returnUrl],
      ['cancel_url', input.cancelUrl],
      ['notify_url', input.notifyUrl],
      ['notify_api_version', input.notifyApiVersion],
      ['expires_date', input.expiresDate ? khipuDate(input.expiresDate) : undefined],
      ['send_email', input.sendEmail === undefined ? undefined : String(input.sendEmail)],
      ['payer_name', input.payerName],
      ['payer_email', input.payerEmail],
    ];
    for (const [key, value] of optional) if (value !== undefined) params.push([key, value]);
    const body = await this.#call('createPayment', 'POST', '/payments', params, PaymentsCreateResponseSchema);
    return {
      paymentId: body.payment_id,
      paymentUrl: body.payment_url,
      simplifiedTransferUrl: body.simplified_transfer_url,
      transferUrl: body.transfer_url,
      appUrl: body.app_url,
      readyForTerminal: body.ready_for_terminal,
    };
  }

  async getPaymentByNotificationToken(notificationToken: string): Promise<KhipuPayment> {
    const params: Params = [['notification_token', notificationToken]];
    return toPayment(await this.#call('getPaymentByNotificationToken', 'GET', '/payments', params, PaymentsResponseSchema));
  }

  async getPayment(paymentId: string): Promise<KhipuPayment> {
    return toPayment(await this.#call('getPayment', 'GET', paymentPath(paymentId), [], PaymentsResponseSchema));
  }

  async deletePayment(paymentId: string): Promise<void> {
    await this.#call('deletePayment', 'DELETE', paymentPath(paymentId), [], SuccessResponseSchema);
  }

  async confirmPayment(paymentId: string): Promise<void> {
    await this.#call('confirmPayment', 'POST', `${paymentPath(paymentId)}/confirm`, [], SuccessResponseSchema);
  }

  async refund(paymentId: string, amount?: Centavos): Promise<{ message: string }> {
    const params: Params = amount === undefined ? [] : [['amount', centavosToDecimal(amount)]];
    const body = await this.#call('refund', 'POST', `${paymentPath(paymentId)}/refunds`, params, SuccessResponseSchema);
    return { message: body.message };
  }

  async paymentMethods(merchantId: string): Promise<KhipuPaymentMethod[]> {
    const path = `/merchants/${encodeURIComponent(merchantId)}/paymentMethods`;
    const body = await this.#call('paymentMethods', 'GET', path, [], PaymentMethodsResponseSchema);
    return body.paymentMethods.map((method) => ({ id: method.id, name: method.name, logoUrl: method.logo_url }));
  }

  async createReceiver(input: Record<string, string>): Promise<{ receiverId: string; secret: string }> {
    const body = await this.#call('createReceiver', 'POST', '/receivers', Object.entries(input), ReceiversCreateResponseSchema);
    return { receiverId: body.receiver_id, secret: body.secret };
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  // ---------- transport ----------

  /** Sends one signed call and returns its parsed 2xx answer, or throws the mapped ProviderError. */
  async #call<S extends z.ZodType>(operation: Operation, method: Method, path: string, params: Params, schema: S): Promise<z.output<S>> {
    const answer = await this.#send(operation, method, path, params);
    if (answer.status < 200 || answer.status >= 300) throw this.#failure(operation, answer);
    return parseProviderAnswer('khipu', { operation }, answer, schema, MUTATIONS.has(operation));
  }

  async #send(operation: Operation, method: Method, path: string, params: Params): Promise<Answer> {
    // GET and DELETE carry their parameters in the query string, POST in a form body; either way the exact
    // decoded strings that go out are the ones signed.
    const encoded = encodeKhipuParams(params);
    const inQuery = method !== 'POST';
    const url = `${this.#baseUrl}${path}${inQuery && encoded ? `?${encoded}` : ''}`;
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.#config.userAgent,
      authorization: khipuAuthorization({
        receiverId: this.#config.receiverId,
        secret: this.#config.secret,
        method,
        url,
        params: inQuery ? [] : params,
      }),
    };
    if (!inQuery) headers['content-type'] = 'application/x-www-form-urlencoded';
    const started = performance.now();
    try {
      const answer = await providerCall(url, {
        method,
        headers,
        ...(inQuery ? {} : { body: encoded }),
        dispatcher: this.#dispatcher,
        timeouts: this.#config.timeouts,
      });
      const ms = Math.round(performance.now() - started);
      this.#log?.info('khipu call', { operation, method, status: answer.status, ms });
      return answer;
    } catch (error) {
      const transport = transportDetail(error);
      const ms = Math.round(performance.now() - started);
      this.#log?.warn('khipu call failed', { operation, method, ...transport, ms });
      throw new ProviderError('khipu', 'PROVIDER_UNAVAILABLE', {
        detail: { operation, ...transport, ...(MUTATIONS.has(operation) ? { outcomeUnknown: !NOT_SENT.has(transport.reason) } : {}) },
        cause: error,
      });
    }
  }

  /** The ProviderError for a non-2xx answer. Khipu's own words go to `detail` only. */
  #failure(operation: Operation, answer: Answer): ProviderError {
    const { status } = answer;
    const refusal = validationError(answer.text);
    const fields = refusal?.errors.map((error) => error.field) ?? [];
    let code: ErrorCode;
    let why: string;
    if (status === 400) {
      const identifiers = IDENTIFIER_FIELDS[operation];
      // The token lookup sends nothing but the token: a 400 naming no other field is about it.
      const aboutIdentifier =
        identifiers !== undefined &&
        (fields.some((field) => identifiers.includes(field)) ||
          (operation === 'getPaymentByNotificationToken' && fields.length === 0));
      code = aboutIdentifier ? 'NOT_FOUND' : 'PROVIDER_CONFIG_ERROR';
      why = aboutIdentifier ? 'Khipu does not know this payment or notification token' : 'Khipu refused the data we sent';
    } else if (status === 401 || status === 403) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'Khipu refused the signature or the receiver (wrong receiver id or secret)';
    } else if (status === 429) {
      code = 'RATE_LIMITED';
      why = 'Khipu rate limit';
    } else if (status >= 500) {
      code = 'PROVIDER_UNAVAILABLE';
      why = status === 503 ? 'Khipu says the operation failed (ServiceError)' : 'Khipu server error';
    } else {
      // A redirect or another 4xx: the base URL or the path is wrong, and repeating will not help.
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'unexpected status (wrong base URL?)';
    }
    const detail: Record<string, unknown> = { operation, why, providerMessage: providerMessage(answer.text) };
    if (refusal?.errors.length) detail.errors = refusal.errors.slice(0, 10);
    if (status === 429) detail.retryAfter = answer.headers['retry-after'];
    if (MUTATIONS.has(operation) && code === 'PROVIDER_UNAVAILABLE') detail.outcomeUnknown = true;
    this.#log?.warn('khipu refused a call', { operation, status, code, fields });
    return new ProviderError('khipu', code, { upstreamStatus: status, detail });
  }

}

function paymentPath(paymentId: string): string {
  return `/payments/${encodeURIComponent(paymentId)}`;
}

function toPayment(body: PaymentsResponse): KhipuPayment {
  return {
    paymentId: body.payment_id,
    paymentUrl: body.payment_url,
    simplifiedTransferUrl: body.simplified_transfer_url,
    transferUrl: body.transfer_url,
    appUrl: body.app_url,
    readyForTerminal: body.ready_for_terminal,
    notificationToken: body.notification_token,
    receiverId: body.receiver_id,
    conciliationDate: body.conciliation_date,
    subject: body.subject,
    amount: body.amount,
    currency: body.currency,
    status: body.status,
    statusDetail: body.status_detail,
    body: body.body,
    receiptUrl: body.receipt_url,
    returnUrl: body.return_url,
    cancelUrl: body.cancel_url,
    notifyUrl: body.notify_url,
    notifyApiVersion: body.notify_api_version,
    expiresDate: body.expires_date,
    bank: body.bank,
    bankId: body.bank_id,
    payerName: body.payer_name,
    payerEmail: body.payer_email,
    transactionId: body.transaction_id,
    custom: body.custom,
    paymentMethod: body.payment_method,
    fundsSource: body.funds_source,
    outOfDateConciliation: body.out_of_date_conciliation,
  };
}

function validationError(text: string): z.output<typeof ValidationErrorSchema> | null {
  try {
    const parsed = ValidationErrorSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Khipu's own words from an error body, shortened, for the log only. */
function providerMessage(text: string): string | undefined {
  if (!text) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { message?: unknown }).message === 'string') {
      return (parsed as { message: string }).message.slice(0, 200);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 200);
}
