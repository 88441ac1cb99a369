/**
 * The card gateway adapter (recurring charges on tokens): JSON requests carrying the authentication headers of
 * card-auth.ts, JSON answers parsed with zod, every failure mapped to one of our codes (table in card-api.ts).
 * Card numbers never reach this server: the customer types them into the gateway's tokenizer, we only see tokens.
 * The key, the Authorization header and card tokens never reach a log line, an error message or an error's detail.
 */
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../../../shared/errors.js';
import { centavosToDecimal, decimalToCentavos } from '../../../shared/money.js';
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
import type { CardApi, CardCharge, CardCustomerInput, CardOnFile, ChargeTokenInput } from './card-api.js';
import { cardAuthHeaders, type CardAuthEncoding } from './card-auth.js';
import {
  CreateUserResponseSchema,
  GatewayErrorSchema,
  GetCardsResponseSchema,
  PaymentTokenResponseSchema,
  type GatewayError,
  type PaymentTokenResponse,
} from './card-schemas.js';

export type CardConfig = {
  /** The environment domain (not public), e.g. https://gateway.example, or <BFF>/sandbox/card in sandbox mode. */
  baseUrl: string;
  merchantId: string;
  /** Used only to sign; never logged, never in an error. */
  key: string;
  /** totalMs: the overall deadline of each call (connect, send, headers, whole body); see ProviderTimeouts. */
  timeouts: ProviderTimeouts;
  userAgent: string;
  /** The unverified details of the authentication headers (see card-auth.ts); default hex and '|'. */
  auth?: { encoding?: CardAuthEncoding; separator?: string; authorizationPrefix?: string };
  /** Error keys that mean "merchantOrderId already used"; default ['DuplicateMerchantOrderId'] (our assumption). */
  duplicateOrderErrorKeys?: string[];
};

export type CardClientOptions = {
  logger?: Logger;
  /** Used instead of the client's own Agent (which is then not created, nor closed by close()). */
  dispatcher?: Dispatcher;
  /** Unix seconds for x-scrty-date; default the clock. */
  nowSeconds?: () => number;
};

type Operation = 'createUser' | 'getCards' | 'makePaymentToken';
type Method = 'GET' | 'POST';

const PROVIDER = 'card';
/** Calls that change something at the gateway: after a timeout or a 5xx we cannot know whether they happened. */
const MUTATIONS = new Set<Operation>(['createUser', 'makePaymentToken']);
/** Transport failures that happen before the request leaves: the call certainly did not happen. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const JSON_TYPE = 'application/json';
const DEFAULT_DUPLICATE_KEYS = ['DuplicateMerchantOrderId'];
/** A message that names the merchant order id and says it was used: the gateway's wording is not public. */
const DUPLICATE_MESSAGE = /merchant\s*order\s*id.*(duplicat|exist|already|used|unique)|(duplicat|already|unique).*merchant\s*order\s*id/i;

export class CardClient implements CardApi {
  readonly #config: CardConfig;
  readonly #baseUrl: string;
  readonly #log: Logger | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #nowSeconds: () => number;
  readonly #duplicateKeys: Set<string>;

  constructor(config: CardConfig, options: CardClientOptions = {}) {
    this.#config = config;
    this.#baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.#log = options.logger?.child({ provider: PROVIDER });
    this.#nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.#duplicateKeys = new Set((config.duplicateOrderErrorKeys ?? DEFAULT_DUPLICATE_KEYS).map((key) => key.toLowerCase()));
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher =
      options.dispatcher ??
      providerAgent(config.timeouts);
  }

  async ensureCustomer(input: CardCustomerInput): Promise<{ created: boolean }> {
    const body = {
      merchantId: this.#config.merchantId,
      customerId: input.customerId,
      contractNumber: input.contractNumber,
      contactInfo: { email: input.email, phoneNumber: input.phoneNumber, address: input.address, zipCode: input.zipCode },
    };
    const answer = await this.#send('createUser', 'POST', '/api/v1/create-user', body);
    if (answer.status >= 200 && answer.status < 300) {
      parseProviderAnswer(PROVIDER, { operation: 'createUser' }, answer, CreateUserResponseSchema, true);
      return { created: true };
    }
    const refusal = gatewayError(answer.text);
    if (answer.status === 400 && refusal?.errors.some(isUserAlreadyExists)) return { created: false };
    throw this.#failure('createUser', answer, refusal);
  }

  async listCards(customerId: string): Promise<CardOnFile[]> {
    const query = new URLSearchParams({ MerchantId: this.#config.merchantId, CustomerId: customerId });
    const answer = await this.#send('getCards', 'GET', `/api/v1/Card/get-cards?${query}`, undefined);
    if (answer.status < 200 || answer.status >= 300) throw this.#failure('getCards', answer, gatewayError(answer.text));
    const cards = parseProviderAnswer(PROVIDER, { operation: 'getCards' }, answer, GetCardsResponseSchema, false);
    return cards.map((card) => ({
      token: card.token,
      bin: card.cardInfo.bin,
      last4: card.cardInfo.last4Numbers,
      brand: card.cardInfo.cardBrand,
      isDefault: card.isDefault,
    }));
  }

  async chargeToken(input: ChargeTokenInput): Promise<CardCharge> {
    const amount = centavosToDecimal(input.amount);
    const body = {
      transactionType: 'sale',
      merchantId: this.#config.merchantId,
      customerId: input.customerId,
      order: { merchantOrderId: input.merchantOrderId, amount, currency: input.currency },
      card: { token: input.token },
    };
    const operation = 'makePaymentToken';
    const answer = await this.#send(operation, 'POST', '/api/v1/make-payment-token', body);
    const context = { operation, merchantOrderId: input.merchantOrderId };
    // A decline may come with a 4xx and the payment payload; a body without a payload is an error answer.
    if (answer.status < 500 && hasPayload(answer.text)) {
      const parsed = parseProviderAnswer(PROVIDER, context, answer, PaymentTokenResponseSchema, true);
      return this.#outcome(parsed, answer.status, input, amount);
    }
    if (answer.status >= 200 && answer.status < 300) {
      // 2xx without a payload: parseProviderAnswer reports the broken shape, outcome unknown.
      parseProviderAnswer(PROVIDER, context, answer, PaymentTokenResponseSchema, true);
    }
    throw this.#failure(operation, answer, gatewayError(answer.text), { merchantOrderId: input.merchantOrderId });
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  // ---------- outcome ----------

  /**
   * The outcome from isSuccess, status and responseCode together: all three must agree. Anything else (isSuccess
   * true with status rejected, '00' with rejected, approved with another code, an echoed amount that is not ours,
   * an approval without an order id) is not guessed: PROVIDER_UNAVAILABLE with outcomeUnknown.
   */
  #outcome(body: PaymentTokenResponse, httpStatus: number, input: ChargeTokenInput, amount: string): CardCharge {
    const { payload } = body;
    const approved = body.isSuccess && payload.status === 'approved' && payload.responseCode === '00' && httpStatus < 300;
    const rejected = !body.isSuccess && payload.status === 'rejected' && payload.responseCode !== '00';
    const problems: string[] = [];
    if (!approved && !rejected) problems.push('isSuccess, status and responseCode disagree');
    if (approved && !payload.order?.id) problems.push('approval without order id');
    const echoed = payload.order?.amount;
    if (echoed !== undefined && echoed !== null && centavosOrNull(String(echoed)) !== input.amount) problems.push('order amount differs');
    const currency = payload.order?.currency;
    if (currency && currency.toUpperCase() !== input.currency.toUpperCase()) problems.push('order currency differs');
    if (problems.length > 0) {
      this.#log?.error('card gateway answered an inconsistent charge outcome', {
        operation: 'makePaymentToken', merchantOrderId: input.merchantOrderId, problems,
        isSuccess: body.isSuccess, status: payload.status, responseCode: payload.responseCode, httpStatus,
      });
      throw new ProviderError(PROVIDER, 'PROVIDER_UNAVAILABLE', {
        upstreamStatus: httpStatus,
        detail: {
          operation: 'makePaymentToken',
          why: 'inconsistent charge outcome',
          problems,
          merchantOrderId: input.merchantOrderId,
          isSuccess: body.isSuccess,
          status: payload.status,
          responseCode: payload.responseCode,
          sentAmount: amount,
          echoedAmount: echoed ?? null,
          orderId: payload.order?.id ?? null,
          outcomeUnknown: true,
        },
      });
    }
    const outcome = approved ? 'approved' : 'rejected';
    this.#log?.info('card charge', { merchantOrderId: input.merchantOrderId, outcome, responseCode: payload.responseCode });
    return {
      outcome,
      responseCode: payload.responseCode,
      responseDescription: payload.responseDescription,
      authorizationNumber: payload.authorizationNumber,
      referenceNumber: payload.referenceNumber,
      orderId: payload.order?.id ?? null,
    };
  }

  // ---------- transport ----------

  async #send(operation: Operation, method: Method, pathAndQuery: string, json: unknown): Promise<ProviderAnswer> {
    const url = `${this.#baseUrl}${pathAndQuery}`;
    const body = json === undefined ? '' : JSON.stringify(json);
    const contentType = json === undefined ? '' : JSON_TYPE;
    const headers: Record<string, string> = {
      accept: JSON_TYPE,
      'user-agent': this.#config.userAgent,
      ...cardAuthHeaders(this.#config.key, { method, contentType, body }, this.#config.auth ?? {}, this.#nowSeconds()),
    };
    if (contentType) headers['content-type'] = contentType;
    const started = performance.now();
    try {
      const answer = await providerCall(url, {
        method,
        headers,
        ...(json === undefined ? {} : { body }),
        dispatcher: this.#dispatcher,
        timeouts: this.#config.timeouts,
      });
      this.#log?.info('card call', { operation, method, status: answer.status, ms: Math.round(performance.now() - started) });
      return answer;
    } catch (error) {
      const transport = transportDetail(error);
      this.#log?.warn('card call failed', { operation, method, ...transport, ms: Math.round(performance.now() - started) });
      throw new ProviderError(PROVIDER, 'PROVIDER_UNAVAILABLE', {
        detail: { operation, ...transport, ...(MUTATIONS.has(operation) ? { outcomeUnknown: !NOT_SENT.has(transport.reason) } : {}) },
        cause: error,
      });
    }
  }

  /** The ProviderError for an error answer. The gateway's own words go to `detail` only. */
  #failure(operation: Operation, answer: ProviderAnswer, refusal: GatewayError | null, extra: Record<string, unknown> = {}): ProviderError {
    const { status } = answer;
    const keys = refusal?.errors.map((error) => error.key) ?? [];
    let code: ErrorCode;
    let why: string;
    let duplicate = false;
    if (status === 404 && keys.includes('ResourceNotFoundException')) {
      code = 'NOT_FOUND';
      why = 'the gateway does not know this customer (or card)';
    } else if (status >= 400 && status < 500 && operation === 'makePaymentToken' && refusal?.errors.some((error) => this.#isDuplicateOrder(error))) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'merchantOrderId already used at the gateway';
      duplicate = true;
    } else if (status === 401 || status === 403) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'the gateway refused the authentication (merchant id, key or header format)';
    } else if (status === 429) {
      code = 'RATE_LIMITED';
      why = 'gateway rate limit';
    } else if (status >= 500) {
      code = 'PROVIDER_UNAVAILABLE';
      why = 'gateway server error';
    } else if (status === 400) {
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'the gateway refused the data we sent';
    } else {
      // A redirect, a 404 without the gateway's error, another 4xx: the base URL or the path is wrong.
      code = 'PROVIDER_CONFIG_ERROR';
      why = 'unexpected status (wrong base URL?)';
    }
    const detail: Record<string, unknown> = { operation, why, ...extra };
    if (refusal) detail.errors = refusal.errors.slice(0, 10).map((error) => ({ key: error.key, value: error.value.slice(0, 3).map((text) => text.slice(0, 200)) }));
    else if (answer.text) detail.providerMessage = answer.text.slice(0, 200);
    if (duplicate) detail.duplicateMerchantOrderId = true;
    if (status === 429) detail.retryAfter = answer.headers['retry-after'];
    if (MUTATIONS.has(operation) && code === 'PROVIDER_UNAVAILABLE') detail.outcomeUnknown = true;
    this.#log?.warn('card gateway refused a call', { operation, status, code, errorKeys: keys });
    return new ProviderError(PROVIDER, code, { upstreamStatus: status, detail });
  }

  #isDuplicateOrder(error: { key: string; value: string[] }): boolean {
    return this.#duplicateKeys.has(error.key.toLowerCase()) || error.value.some((text) => DUPLICATE_MESSAGE.test(text));
  }
}

function isUserAlreadyExists(error: { key: string; value: string[] }): boolean {
  return error.key === 'InvalidOperationException' && error.value.some((text) => /user already exists/i.test(text));
}

function gatewayError(text: string): GatewayError | null {
  try {
    const parsed = GatewayErrorSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function hasPayload(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && typeof (parsed as { payload?: unknown }).payload === 'object' && (parsed as { payload?: unknown }).payload !== null;
  } catch {
    return false;
  }
}

function centavosOrNull(value: string): number | null {
  try {
    return decimalToCentavos(value);
  } catch {
    return null;
  }
}

