/**
 * TEST DOUBLE of the BFF for the widget's browser tests: a `fetch` replacement installed on `window` that
 * implements API v1 from shared/contract.ts. Requests are parsed with the shared request schemas and every
 * answer is checked against the shared response schemas before it is sent, so the widget is tested against
 * the contract rather than against this file's opinion of it. The real BFF is tested in test/server and
 * test/e2e; nothing here ships.
 */
import {
  CardSessionRequestSchema,
  CardSessionResponseSchema,
  CheckoutResponseSchema,
  CreateCheckoutRequestSchema,
  CreateCheckoutResponseSchema,
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKeySchema,
  KhipuBanksResponseSchema,
  PRODUCTS,
  PRODUCT_AGE_LIMITS,
  QuoteRequestSchema,
  QuoteResponseSchema,
  SubmitRequestSchema,
  UpdateCheckoutRequestSchema,
  type CheckoutView,
  type KhipuBank,
  type PaymentMethod,
  type PaymentStatus,
  type Product,
  type Quote,
} from '../../shared/contract.js';
import { parseCurp } from '../../shared/curp.js';
import { ErrorBodySchema } from '../../shared/contract.js';
import { ERRORS, type ErrorCode } from '../../shared/errors.js';
import { instalmentPlan } from '../../shared/money.js';
import type { z } from 'zod';

export const FAKE_BFF_BASE = 'https://bff.test';

/** A 38-year-old (on the fake's clock): Funerario and Retiro eligible, Universidad TOO_OLD. */
export const ADULT_CURP = 'CAMC880526HMCBNR04';
/** An 11-year-old: Funerario eligible, Universidad TOO_OLD, Retiro TOO_YOUNG. */
export const CHILD_CURP = 'GOMA150312MDFRRNA7';

export type Route = 'create' | 'get' | 'update' | 'quote' | 'submit' | 'banks' | 'card-session';

/**
 * The card gateway's tokenizer page as the fake serves it: a page of this test server (so tests can type into it)
 * that posts the token to the origin it is given, as the gateway's does.
 */
export const FAKE_TOKENIZER_URL = new URL('/test/widget/fake-tokenizer.html', window.location.href).href;

/** The recurring-charge consent the fake's card session answers (the BFF's text, in both languages). */
export const RECURRING_CONSENT = {
  version: 'cargos-recurrentes-2026-01',
  es: 'Autorizo a KASU a cargar a mi tarjeta cada mensualidad de mi plan en su fecha de pago, hasta completarlo.',
  en: 'I authorise KASU to charge each monthly payment of my plan to my card on its due date, until it is complete.',
};

/** Khipu's banks as the fake lists them (GET /v1/khipu/banks). */
export const KHIPU_BANKS: KhipuBank[] = [
  { id: 'Bawdf', name: 'BBVA México', message: '', minAmount: null, type: 'Persona', parent: '' },
  { id: 'Bxmrt', name: 'Banorte', message: 'Usa tu token móvil.', minAmount: null, type: 'Persona', parent: '' },
  { id: 'Bsntd', name: 'Santander México', message: '', minAmount: 1_000, type: 'Persona', parent: '' },
];

/** Where the fake's Khipu payment pages are (never loaded: the widget's navigation is replaced in tests). */
export const KHIPU_PAYMENT_PAGE = 'https://khipu.test/payment/info/';

/**
 * How to fail one request: an error of the catalogue (status and `retryable` from shared/errors.ts), a network
 * failure before the BFF sees the request, a network failure after the BFF processed it (the answer is lost),
 * or an answer that is not the contract.
 */
export type Failure =
  | { code: ErrorCode; fields?: Record<string, string> }
  | 'network'
  | 'network-after-processing'
  | 'garbage';

export type RecordedRequest = {
  route: Route;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
};

export type FakeBffOptions = {
  base?: string;
  /** The fake's clock (ages, quotes, expiry): fixed so ages do not change with the calendar. */
  today?: Date;
  /** Delay before every answer, to observe pending states. */
  delayMs?: number;
  /** CURPs that RENAPO does not recognise (answered with CURP_REJECTED). */
  rejectedCurps?: string[];
  /** Whether the deployment has Khipu (default true). */
  khipu?: boolean;
  /** Origins a Khipu `returnUrl` may have (the BFF's RETURN_URL_ORIGINS); default: this page's origin. */
  returnUrlOrigins?: string[];
  /** Whether the deployment has card payments (default true). */
  card?: boolean;
  /**
   * The `tokenizerOrigin` the card session answers; default the origin of FAKE_TOKENIZER_URL (the truth). Another
   * value plays a tokenizer whose messages come from somewhere else than the BFF said.
   */
  tokenizerOrigin?: string;
};

/** A Khipu payment as the fake created it, for tests that play the customer's way back. */
export type FakeKhipuPayment = {
  paymentId: string;
  redirectUrl: string;
  bankId: string | null;
  returnUrl: string;
  /** Where Khipu sends a customer who cancels on its page: `returnUrl` plus `kasu_payment=cancelled`. */
  cancelUrl: string;
};

export type FakeBff = {
  readonly requests: RecordedRequest[];
  requestsTo(route: Route): RecordedRequest[];
  /** The next request to `route` fails this way (queued: call twice to fail twice). */
  failNext(route: Route, failure: Failure): void;
  /** The Khipu payment created for a checkout, if any. */
  khipuPayment(checkoutId: string): FakeKhipuPayment | null;
  /** What Khipu's notification (or the BFF's poller) would do: the payment becomes `status`. */
  setPaymentStatus(checkoutId: string, status: PaymentStatus): void;
  /** The bank declines the next card charged (the next card submit answers CARD_DECLINED). */
  declineNextCard(): void;
  delayMs: number;
  restore(): void;
};

/** Base prices in centavos and yearly rates of the fake catalogue. */
const PRICES: Record<Product, { price: number; annualRatePercent: number; counts: number[] }> = {
  Funerario: { price: 590_000, annualRatePercent: 12, counts: [1, 3, 6, 12] },
  Universidad: { price: 2_450_000, annualRatePercent: 9, counts: [1, 12, 24, 36] },
  Retiro: { price: 1_800_000, annualRatePercent: 6, counts: [1, 12, 24] },
};

type Stored = { view: CheckoutView; token: string };
type Answer = { status: number; body: unknown };

export function installFakeBff(options: FakeBffOptions = {}): FakeBff {
  const base = options.base ?? FAKE_BFF_BASE;
  const today = options.today ?? new Date('2026-11-23T15:00:00.000Z');
  const rejected = new Set(options.rejectedCurps ?? []);
  const khipuAvailable = options.khipu ?? true;
  const returnUrlOrigins = options.returnUrlOrigins ?? [window.location.origin];
  const cardAvailable = options.card ?? true;
  const tokenizerOrigin = options.tokenizerOrigin ?? new URL(FAKE_TOKENIZER_URL).origin;
  let declineNextCard = false;
  const realFetch = window.fetch;
  const checkouts = new Map<string, Stored>();
  const submits = new Map<string, { body: string; answer: Answer }>();
  const khipuPayments = new Map<string, FakeKhipuPayment>();
  const failures: Record<Route, Failure[]> = {
    create: [],
    get: [],
    update: [],
    quote: [],
    submit: [],
    banks: [],
    'card-session': [],
  };
  const requests: RecordedRequest[] = [];
  let sequence = 0;
  let requestSequence = 0;

  const fake: FakeBff = {
    requests,
    requestsTo: (route) => requests.filter((request) => request.route === route),
    failNext: (route, failure) => void failures[route].push(failure),
    khipuPayment: (checkoutId) => khipuPayments.get(checkoutId) ?? null,
    setPaymentStatus: (checkoutId, status) => {
      const stored = checkouts.get(checkoutId);
      const payment = stored?.view.payment;
      if (!stored || !payment) throw new Error(`checkout ${checkoutId} has no payment`);
      const paidAt = status === 'paid' ? today.toISOString() : null;
      // As the BFF: the payment page is offered only while the payment can still be paid.
      const redirectUrl = status === 'pending' ? (khipuPayments.get(checkoutId)?.redirectUrl ?? null) : null;
      stored.view = { ...stored.view, payment: { ...payment, status, paidAt, redirectUrl } };
    },
    declineNextCard: () => {
      declineNextCard = true;
    },
    delayMs: options.delayMs ?? 0,
    restore: () => {
      window.fetch = realFetch;
    },
  };

  function error(code: ErrorCode, fields?: Record<string, string>): Answer {
    const entry = ERRORS[code];
    const body = ErrorBodySchema.parse({
      error: {
        code,
        message: entry.es,
        retryable: entry.retryable,
        requestId: `req-${++requestSequence}`,
        ...(fields ? { fields } : {}),
      },
    });
    return { status: entry.status, body };
  }

  function ok<S extends z.ZodType>(schema: S, body: z.input<S>, status = 200): Answer {
    // Throws (and fails the test) if the fake ever drifts from the contract.
    return { status, body: schema.parse(body) };
  }

  function validationFailed(issues: z.core.$ZodIssue[]): Answer {
    const fields = Object.fromEntries(issues.map((issue) => [issue.path.join('.'), issue.message]));
    return error('VALIDATION_FAILED', fields);
  }

  function authorised(headers: Headers, id: string): Stored | Answer {
    const stored = checkouts.get(id);
    if (!stored) return error('NOT_FOUND');
    if (headers.get('authorization') !== `Bearer ${stored.token}`) return error('UNAUTHORIZED');
    return stored;
  }

  function quoteFor(view: CheckoutView, product: Product): Quote {
    const { price, annualRatePercent, counts } = PRICES[product];
    const age = view.customer.age;
    const band = age < 30 ? '18a29' : age < 50 ? '30a49' : age < 60 ? '50a59' : '60a69';
    return {
      product,
      kasuProduct: product === 'Funerario' ? band : product.toUpperCase(),
      currency: 'MXN',
      price,
      annualRatePercent,
      plans: counts.map((count) => instalmentPlan(price, count, annualRatePercent)),
      quotedAt: today.toISOString(),
    };
  }

  function create(body: unknown): Answer {
    const request = CreateCheckoutRequestSchema.safeParse(body);
    if (!request.success) return validationFailed(request.error.issues);
    const parsed = parseCurp(request.data.curp, today);
    if (!parsed.ok) return error(parsed.code, { curp: parsed.code });
    if (rejected.has(parsed.curp)) return error('CURP_REJECTED', { curp: 'CURP_REJECTED' });
    const id = `chk_${String(++sequence).padStart(6, '0')}`;
    const view: CheckoutView = {
      id,
      status: 'open',
      customer: { curp: parsed.curp, birthDate: parsed.birthDate, age: parsed.age, sex: parsed.sex },
      products: PRODUCTS.map((product) => {
        const { minAge, maxAge } = PRODUCT_AGE_LIMITS[product];
        const reason = parsed.age < minAge ? 'TOO_YOUNG' : parsed.age > maxAge ? 'TOO_OLD' : undefined;
        return { product, eligible: reason === undefined, ...(reason ? { reason } : {}), minAge, maxAge };
      }),
      product: null,
      quote: null,
      planCount: null,
      contact: null,
      address: null,
      consents: { terms: false, privacy: false, trust: false },
      documents: [
        { id: 'terms', version: '2026-01', url: 'https://legal.kasu.example/terminos-y-condiciones-2026-01.pdf' },
        { id: 'privacy', version: '2025-07', url: 'https://legal.kasu.example/aviso-de-privacidad-2025-07.pdf' },
        { id: 'trust', version: 'F0003-v4', url: 'https://legal.kasu.example/fideicomiso-F0003-v4.pdf' },
      ],
      paymentMethods: [
        { method: 'email', available: true },
        { method: 'khipu', available: khipuAvailable },
        { method: 'card', available: cardAvailable },
      ],
      order: null,
      payment: null,
      subscription: null,
      expiresAt: new Date(today.getTime() + 24 * 60 * 60 * 1000).toISOString(),
    };
    const token = `tok_${id}_${Math.random().toString(36).slice(2)}`;
    checkouts.set(id, { view, token });
    return ok(CreateCheckoutResponseSchema, { checkout: view, token }, 201);
  }

  function quote(stored: Stored, body: unknown): Answer {
    const request = QuoteRequestSchema.safeParse(body);
    if (!request.success) return validationFailed(request.error.issues);
    const product = request.data.product;
    const eligible = stored.view.products.find((option) => option.product === product)?.eligible;
    if (!eligible) return error('PRODUCT_NOT_ELIGIBLE');
    const fresh = quoteFor(stored.view, product);
    const planCount = stored.view.product === product ? stored.view.planCount : null;
    stored.view = { ...stored.view, product, quote: fresh, planCount };
    return ok(QuoteResponseSchema, { quote: fresh, checkout: stored.view });
  }

  function update(stored: Stored, body: unknown): Answer {
    if (stored.view.status !== 'open') return error('CHECKOUT_CLOSED');
    const request = UpdateCheckoutRequestSchema.safeParse(body);
    if (!request.success) return validationFailed(request.error.issues);
    const changes = request.data;
    let view = stored.view;
    if (changes.product !== undefined) {
      if (!view.products.find((option) => option.product === changes.product)?.eligible) {
        return error('PRODUCT_NOT_ELIGIBLE');
      }
      const sameProduct = view.product === changes.product && view.quote !== null;
      view = { ...view, product: changes.product, quote: sameProduct ? view.quote : quoteFor(view, changes.product) };
    }
    if (changes.planCount !== undefined) {
      if (!view.quote?.plans.some((plan) => plan.count === changes.planCount)) {
        return error('VALIDATION_FAILED', { planCount: 'PLAN_NOT_OFFERED' });
      }
      view = { ...view, planCount: changes.planCount };
    }
    if (changes.contact) view = { ...view, contact: changes.contact };
    if (changes.address) view = { ...view, address: changes.address };
    if (changes.consents) view = { ...view, consents: { ...view.consents, ...changes.consents } };
    stored.view = view;
    return ok(CheckoutResponseSchema, { checkout: view });
  }

  function submit(stored: Stored, headers: Headers, body: unknown): Answer {
    const key = IdempotencyKeySchema.safeParse(headers.get(IDEMPOTENCY_KEY_HEADER));
    if (!key.success) return error('IDEMPOTENCY_KEY_REQUIRED');
    const bodyText = JSON.stringify(body);
    const previous = submits.get(`${stored.view.id}:${key.data}`);
    if (previous && previous.body !== bodyText) return error('IDEMPOTENCY_KEY_REUSED');
    // As the BFF: the same key and body answer the same error, or the checkout as it is now.
    if (previous?.answer.status === 200) return ok(CheckoutResponseSchema, { checkout: stored.view });
    if (previous) return previous.answer;
    const answer = register(stored, body);
    submits.set(`${stored.view.id}:${key.data}`, { body: bodyText, answer });
    return answer;
  }

  function register(stored: Stored, body: unknown): Answer {
    const request = SubmitRequestSchema.safeParse(body);
    if (!request.success) return validationFailed(request.error.issues);
    const view = stored.view;
    // As the BFF: registration happens once; a submit of a registered checkout answers it as it is, except a card
    // purchase whose card was declined, which takes another card.
    if (view.status === 'registered' && view.subscription?.status === 'pending_card') return enroll(stored, body);
    if (view.status === 'registered') return ok(CheckoutResponseSchema, { checkout: view });
    const method: PaymentMethod = request.data.paymentMethod;
    if (!view.paymentMethods.some((option) => option.method === method && option.available)) {
      return error('PAYMENT_METHOD_UNAVAILABLE');
    }
    const plan = view.quote?.plans.find((candidate) => candidate.count === view.planCount);
    if (!view.product || !view.quote || !plan || !view.contact || !view.address) return error('CHECKOUT_INCOMPLETE');
    if (!(view.consents.terms && view.consents.privacy && view.consents.trust)) return error('CONSENT_REQUIRED');
    const { returnUrl, khipuBankId } = request.data;
    if (method === 'khipu' && returnUrl && !returnUrlOrigins.includes(new URL(returnUrl).origin)) {
      return error('VALIDATION_FAILED', { returnUrl: 'ORIGIN_NOT_ALLOWED' });
    }
    // As the BFF: a card purchase is not registered with KASU before there is a card and the recurring consent.
    if (method === 'card') {
      const missing = cardFieldsMissing(request.data);
      if (missing) return error('VALIDATION_FAILED', missing);
    }
    const reference = `KC-${view.id.slice(4)}-${method.toUpperCase()}`;
    const paymentId = `pay_${view.id.slice(4)}`;
    let redirectUrl: string | null = null;
    if (method === 'khipu') {
      // Khipu creates the payment page; it sends the customer back to returnUrl, or to cancelUrl on "cancel".
      const back = returnUrl ?? 'https://partner.example/checkout';
      const cancelUrl = new URL(back);
      cancelUrl.searchParams.set('kasu_payment', 'cancelled');
      redirectUrl = `${KHIPU_PAYMENT_PAGE}${paymentId}`;
      khipuPayments.set(view.id, {
        paymentId,
        redirectUrl,
        bankId: khipuBankId ?? null,
        returnUrl: back,
        cancelUrl: cancelUrl.href,
      });
    } else if (method === 'email') {
      // Pay later: KASU's payment link, which KASU emails; the widget does not open it.
      redirectUrl = `https://pagos.kasu.example/liga/${reference}`;
    }
    stored.view = {
      ...view,
      status: 'registered',
      order: {
        reference,
        // Like KASU's: 20 characters with nowhere to break a line.
        policy: `${view.product.slice(0, 3).toUpperCase()}${String(480 + sequence).padStart(17, '0')}`,
        kasuStatus: 'ACTIVO',
        paymentMethod: method,
        currency: 'MXN',
        price: plan.total,
        instalments: plan.count,
        instalmentAmount: plan.instalment,
        registeredAt: today.toISOString(),
      },
      payment: {
        id: paymentId,
        method,
        status: 'pending',
        currency: 'MXN',
        amount: plan.instalment,
        instalment: 1,
        redirectUrl,
        paidAt: null,
      },
    };
    if (method === 'card') return enroll(stored, body);
    return ok(CheckoutResponseSchema, { checkout: stored.view });
  }

  function cardFieldsMissing(request: z.output<typeof SubmitRequestSchema>): Record<string, string> | null {
    const fields: Record<string, string> = {};
    if (!request.card) fields.card = 'REQUIRED';
    if (request.recurringConsent !== true) fields.recurringConsent = 'REQUIRED';
    return Object.keys(fields).length > 0 ? fields : null;
  }

  /**
   * As the BFF after registering a card purchase: the card is enrolled, the schedule made (monthly from today) and
   * the first instalment charged at once. A decline leaves the purchase registered, waiting for another card.
   */
  function enroll(stored: Stored, body: unknown): Answer {
    const request = SubmitRequestSchema.parse(body);
    const missing = cardFieldsMissing(request);
    if (missing) return error('VALIDATION_FAILED', missing);
    const view = stored.view;
    const order = view.order;
    if (!order || !view.payment || !request.card) throw new Error('enroll before registration');
    const declined = declineNextCard;
    declineNextCard = false;
    const { brand, last4 } = request.card;
    const card = { brand, last4 };
    const instalments = Array.from({ length: order.instalments }, (_, index) => {
      const due = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + index, today.getUTCDate()));
      const paid = index === 0 && !declined;
      return {
        number: index + 1,
        dueDate: due.toISOString().slice(0, 10),
        amount: order.instalmentAmount,
        status: paid ? ('paid' as const) : ('scheduled' as const),
      };
    });
    stored.view = {
      ...view,
      subscription: { status: declined ? 'pending_card' : 'active', card, instalments },
      payment: {
        ...view.payment,
        status: declined ? 'pending' : 'paid',
        paidAt: declined ? null : today.toISOString(),
      },
    };
    if (declined) return error('CARD_DECLINED');
    return ok(CheckoutResponseSchema, { checkout: stored.view });
  }

  function cardSession(stored: Stored, body: unknown): Answer {
    const request = CardSessionRequestSchema.safeParse(body);
    if (!request.success) return validationFailed(request.error.issues);
    if (!cardAvailable) return error('PAYMENT_METHOD_UNAVAILABLE');
    const view = stored.view;
    // Open, or registered and waiting for another card after a decline.
    if (view.status !== 'open' && view.subscription?.status !== 'pending_card') return error('CHECKOUT_CLOSED');
    if (!view.contact || !view.address) return error('CHECKOUT_INCOMPLETE', { contact: 'REQUIRED' });
    const url = new URL(FAKE_TOKENIZER_URL);
    url.searchParams.set('customerId', `kc-${view.customer.curp.toLowerCase()}`);
    url.searchParams.set('origin', new URL(request.data.origin).origin);
    return ok(CardSessionResponseSchema, {
      tokenizerUrl: url.href,
      tokenizerOrigin,
      recurringConsent: RECURRING_CONSENT,
    });
  }

  function banks(): Answer {
    if (!khipuAvailable) return error('PAYMENT_METHOD_UNAVAILABLE');
    return ok(KhipuBanksResponseSchema, { banks: KHIPU_BANKS });
  }

  function route(method: string, path: string): { route: Route; id?: string } | null {
    if (method === 'POST' && path === '/v1/checkouts') return { route: 'create' };
    if (method === 'GET' && path === '/v1/khipu/banks') return { route: 'banks' };
    const match = /^\/v1\/checkouts\/([^/]+)(\/quote|\/submit|\/card-session)?$/.exec(path);
    if (!match) return null;
    const id = decodeURIComponent(match[1] ?? '');
    if (method === 'GET' && !match[2]) return { route: 'get', id };
    if (method === 'PATCH' && !match[2]) return { route: 'update', id };
    if (method === 'POST' && match[2] === '/quote') return { route: 'quote', id };
    if (method === 'POST' && match[2] === '/submit') return { route: 'submit', id };
    if (method === 'POST' && match[2] === '/card-session') return { route: 'card-session', id };
    return null;
  }

  function answer(target: { route: Route; id?: string }, headers: Headers, body: unknown): Answer {
    if (target.route === 'create') return create(body);
    if (target.route === 'banks') return banks();
    const stored = authorised(headers, target.id ?? '');
    if (!('view' in stored)) return stored;
    switch (target.route) {
      case 'get':
        return ok(CheckoutResponseSchema, { checkout: stored.view });
      case 'quote':
        return quote(stored, body);
      case 'update':
        return update(stored, body);
      case 'submit':
        return submit(stored, headers, body);
      case 'card-session':
        return cardSession(stored, body);
    }
  }

  window.fetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input), window.location.href);
    if (`${url.origin}` !== new URL(base).origin) return realFetch(input, init);
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    const body: unknown = typeof init.body === 'string' ? JSON.parse(init.body) : undefined;
    const target = route(method, url.pathname);
    if (target) {
      requests.push({ route: target.route, method, path: url.pathname, headers: Object.fromEntries(headers), body });
    }
    if (fake.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.delayMs));
    if (init.signal?.aborted) throw new DOMException('The operation was aborted.', 'AbortError');

    const failure = target ? failures[target.route].shift() : undefined;
    if (failure === 'network') throw new TypeError('Failed to fetch');
    let result: Answer;
    if (failure === 'garbage') result = { status: 200, body: '<html>Bad gateway</html>' };
    else if (failure && failure !== 'network-after-processing') result = error(failure.code, failure.fields);
    else result = target ? answer(target, headers, body) : error('NOT_FOUND');
    if (failure === 'network-after-processing') throw new TypeError('Failed to fetch');

    const text = typeof result.body === 'string' ? result.body : JSON.stringify(result.body);
    return new Response(text, {
      status: result.status,
      headers: { 'content-type': 'application/json', 'x-request-id': `req-${++requestSequence}` },
    });
  };

  return fake;
}
