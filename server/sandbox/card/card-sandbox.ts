/**
 * A simulator of the card gateway (recurring charges on tokens) over real HTTP, faithful to the gateway's document
 * (card-recurring-payment-api.txt) and NOTES.md. Mounted by the BFF at /sandbox/card, or run alone with main.ts:
 *
 *   <mount>/api/v1/create-user                POST  {merchantId, customerId, contractNumber, contactInfo{…}}
 *   <mount>/api/v1/Card/get-cards             GET   ?MerchantId=&CustomerId=
 *   <mount>/api/v1/make-payment-token         POST  the document's body
 *   <mount>/tokenizer?merchantId=&customerId=&origin=   the card form, for an iframe (SANDBOX CONTRACT, see below)
 *
 * Every API call must carry the authentication headers of card-auth.ts (verified with the merchant's key, found by
 * the body's merchantId or the MerchantId query parameter): otherwise 401 in the gateway's error shape
 * `{isSuccess:false, errors:[{key, value:[…]}]}`.
 *
 * Test cards (any name, a future MM/AA expiry, any 3–4 digit CVV; every other Luhn-valid Visa, Mastercard or Amex
 * number approves):
 *
 *   4242 4242 4242 4242   approved, responseCode '00'
 *   5555 5555 5555 4444   approved, responseCode '00' (Mastercard)
 *   4000 0000 0000 9995   rejected, responseCode '51' (insufficient funds)
 *   4000 0000 0000 0002   rejected, responseCode '05' (do not honour)
 *   4000 0000 0000 0119   the gateway fails: HTTP 500, nothing charged
 *   4000 0000 0000 0259   the gateway charges (approved, in the ledger) but does not answer for `hangMs`
 *                         (default 120 s), then answers 504: the "timeout, outcome unknown" case. A retry with the
 *                         same merchantOrderId is then refused as a duplicate, as the real gateway does.
 *
 * Interpretations where the document is silent (ours, not the gateway's):
 * - A decline answers HTTP 200 `{isSuccess:false, payload:{status:'rejected', responseCode, …}}`: the payload has the
 *   document's shape, isSuccess says the sale did not complete.
 * - A repeated merchantOrderId (per merchant, whatever the first outcome) answers 400 with the error key
 *   `DuplicateMerchantOrderId`; the document only says "nuestro sistema regresaría un error".
 * - A token belongs to one merchant and customer; someone else's or an unknown token answers 404
 *   ResourceNotFoundException "Card does not exist". get-cards answers `{payload:[…], isSuccess:true}`.
 * - Only MXN is accepted; amounts are decimal strings with up to 2 decimals, more than zero.
 *
 * TOKENIZER CONTRACT (sandbox only: how a card becomes a token is not public). The card number must only ever reach
 * the gateway, never the merchant's server: that keeps the merchant in PCI DSS SAQ A (card data entered only on
 * the payment provider's page) instead of SAQ D. So:
 * - The widget embeds `<mount>/tokenizer?merchantId=…&customerId=…&origin=<the host page's origin>` in an iframe,
 *   after the BFF has created the customer (create-user). The page has no inline script or style (its JS and CSS are
 *   separate routes), sets its own CSP, and `frame-ancestors` is exactly `origin` (which must be one of
 *   `allowedParentOrigins` when that option is set): no other page can frame it.
 * - On submit the page checks the card (Luhn, expiry MM/AA not past, CVV 3–4 digits, cardholder name) and POSTs
 *   it as JSON to `<mount>/tokenizer/tokens` — to the sandbox, i.e. the gateway. The token created is bound to the
 *   merchant and customer and is listed by get-cards.
 * - Then the page calls `window.parent.postMessage({type:'kasu-card-token', token, last4, brand, expiry:'MM/YY'},
 *   origin)` with the given origin ONLY (never '*'). The message never carries the card number or the CVV. The
 *   parent must check `event.origin` is the tokenizer's origin and `event.source` is the iframe's window.
 * - Errors are shown in the page next to each field (aria-invalid, aria-describedby) and in a role=alert summary.
 * - The tokens route only takes application/json, so a cross-origin page cannot post to it without a CORS
 *   preflight, which it never grants. (A real gateway would also bind the page to a server-issued session.)
 */
import { randomInt, randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { serveStandalone } from '../standalone.js';
import { createFaults, type FaultController, type FaultRuleInput } from '../faults.js';
import { verifyCardAuth, type CardAuthOptions } from '../../providers/card/card-auth.js';

export type CardSandboxMerchant = { merchantId: string; key: string };

export type CardSandboxOptions = {
  /** Merchants whose signatures are accepted; default SANDBOX_CARD_MERCHANT_ID / SANDBOX_CARD_KEY. */
  merchants?: CardSandboxMerchant[];
  /** Milliseconds since the epoch: the auth date window, expiry checks and ledger times. */
  now?: () => number;
  /** Added before every API answer (change it later with state.latencyMs). */
  latencyMs?: number;
  /** Extra wait before a charge answers, by card number (digits only); the token keeps it (card.latencyMs). */
  cardLatencyMs?: Record<string, number>;
  /** How long the timeout card keeps the request unanswered; default 120 s, at most 10 minutes. */
  hangMs?: number;
  /** Base URL of the sandbox as browsers reach it (e.g. https://shop.example/sandbox/card); default the mount path. */
  publicUrl?: string;
  /** Origins allowed to frame the tokenizer; when absent any http(s) origin given in `origin` is. */
  allowedParentOrigins?: string[];
  /** The unverified header details, as configured in the adapter; default hex and '|'. */
  auth?: CardAuthOptions;
  /** Initial fault rules (faults.ts); change them with state.faults or <mount>/_faults. */
  faults?: FaultRuleInput[];
};

export type CardSandboxCustomer = {
  merchantId: string;
  customerId: string;
  contractNumber: string;
  contactInfo: { email: string; phoneNumber: string; address: string; zipCode: string };
  createdAt: string;
};

export type CardBehaviour = 'approve' | 'insufficient-funds' | 'do-not-honour' | 'gateway-error' | 'timeout';

/** A tokenised card. The full number and the CVV are never kept. */
export type CardSandboxCard = {
  token: string;
  merchantId: string;
  customerId: string;
  bin: string;
  last4: string;
  brand: 'visa' | 'mastercard' | 'amex';
  /** MM/YY */
  expiry: string;
  holderName: string;
  behaviour: CardBehaviour;
  /** Extra wait before this card's charges answer; null = none. */
  latencyMs: number | null;
  isDefault: boolean;
  createdAt: string;
};

/** One charge the gateway accepted (processed), whatever its outcome; a gateway error (500) is not one. */
export type CardLedgerEntry = {
  merchantId: string;
  merchantOrderId: string;
  customerId: string;
  /** As received, e.g. "1234.50". */
  amount: string;
  currency: string;
  token: string;
  outcome: 'approved' | 'rejected';
  responseCode: string;
  orderId: string;
  /** false for the timeout card: charged, but the client never got the answer. */
  answered: boolean;
  at: string;
};

export type CardSandboxRequest = {
  method: string;
  /** Below the mount, without the query. */
  path: string;
  merchantId: string | null;
  /** 'ok' or why the authentication headers were refused. */
  auth: string;
  status: number;
  at: string;
};

export type CardSandboxState = {
  /** By `${merchantId} ${customerId}`. */
  customers: Map<string, CardSandboxCustomer>;
  /** By token. */
  cards: Map<string, CardSandboxCard>;
  ledger: CardLedgerEntry[];
  requests: CardSandboxRequest[];
  /** Global latency before every API answer. */
  latencyMs: number;
  /** Injected failures (faults.ts); paths are below the mount, e.g. /api/v1/make-payment-token. */
  faults: FaultController;
  reset(): void;
};

export const SANDBOX_CARD_MERCHANT_ID = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
export const SANDBOX_CARD_KEY = 'sandbox-card-key';

/** Test card numbers (digits only) and what the sandbox does with them. */
export const SANDBOX_CARD_TEST_CARDS = {
  approved: '4242424242424242',
  approvedMastercard: '5555555555554444',
  insufficientFunds: '4000000000009995',
  doNotHonour: '4000000000000002',
  gatewayError: '4000000000000119',
  timeout: '4000000000000259',
} as const;

const BEHAVIOURS: Record<string, CardBehaviour> = {
  [SANDBOX_CARD_TEST_CARDS.insufficientFunds]: 'insufficient-funds',
  [SANDBOX_CARD_TEST_CARDS.doNotHonour]: 'do-not-honour',
  [SANDBOX_CARD_TEST_CARDS.gatewayError]: 'gateway-error',
  [SANDBOX_CARD_TEST_CARDS.timeout]: 'timeout',
};

const API_BASE = '/api/v1';
const MAX_RECORDS = 5_000;
const MAX_HANG_MS = 600_000;

// ---------- pure card checks (the tokenizer's JS repeats them in the browser) ----------

export function luhnValid(digits: string): boolean {
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = Number(digits[i]);
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

export function cardBrand(digits: string): 'visa' | 'mastercard' | 'amex' | null {
  if (/^4\d{12}(\d{3}){0,2}$/.test(digits)) return 'visa';
  if (/^(5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}$/.test(digits)) return 'mastercard';
  if (/^3[47]\d{13}$/.test(digits)) return 'amex';
  return null;
}

type CardForm = { number: string; expiry: string; cvv: string; name: string };
type CardFormErrors = Partial<Record<keyof CardForm, string>>;

/** The errors of a submitted card form (Spanish, shown next to each field), and the normalised values. */
export function checkCardForm(form: CardForm, nowMs: number): { errors: CardFormErrors; digits: string; expiry: string } {
  const errors: CardFormErrors = {};
  const digits = form.number.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits) || !luhnValid(digits)) errors.number = 'Revisa el número de tarjeta.';
  else if (!cardBrand(digits)) errors.number = 'Aceptamos Visa, Mastercard y American Express.';
  const match = /^\s*(\d{2})\s*\/\s*(\d{2})\s*$/.exec(form.expiry);
  let expiry = '';
  if (!match || Number(match[1]) < 1 || Number(match[1]) > 12) {
    errors.expiry = 'Escribe la fecha de vencimiento como MM/AA.';
  } else {
    const now = new Date(nowMs);
    const year = 2000 + Number(match[2]);
    const month = Number(match[1]);
    if (year < now.getUTCFullYear() || (year === now.getUTCFullYear() && month < now.getUTCMonth() + 1)) {
      errors.expiry = 'La tarjeta está vencida.';
    }
    expiry = `${match[1]}/${match[2]}`;
  }
  if (!/^\d{3,4}$/.test(form.cvv.trim())) errors.cvv = 'El código de seguridad tiene 3 o 4 dígitos.';
  const name = form.name.trim();
  if (name.length < 2 || name.length > 80) errors.name = 'Escribe el nombre como aparece en la tarjeta.';
  return { errors, digits, expiry };
}

// ---------- pages ----------

const TOKENIZER_CSS = `
:root { color-scheme: light; font-family: system-ui, sans-serif; }
body { margin: 0; color: #1d2430; background: #fff; }
main { padding: 1rem; }
.badge { margin: 0 0 1rem; padding: 0.4rem 0.6rem; border-radius: 0.4rem; background: #fff4d6; color: #6b4b00; font-size: 0.85rem; }
.field { margin-bottom: 0.9rem; }
label { display: block; margin-bottom: 0.25rem; font-weight: 600; }
input { box-sizing: border-box; width: 100%; padding: 0.55rem; border: 1px solid #9aa3b1; border-radius: 0.4rem; font: inherit; }
input[aria-invalid="true"] { border-color: #b3261e; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 0.75rem; }
.error { margin: 0.25rem 0 0; color: #b3261e; font-size: 0.9rem; }
.form-error { margin: 0 0 1rem; padding: 0.5rem; border-radius: 0.4rem; background: #fde8e7; color: #8c1d18; }
.done { margin: 0 0 1rem; color: #1b5e20; }
button { width: 100%; padding: 0.7rem; border: 0; border-radius: 0.5rem; background: #1d4ed8; color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
button[disabled] { opacity: 0.6; cursor: progress; }
[hidden] { display: none !important; }
`;

/** The tokenizer's browser code, served as a separate file (no inline script: strict CSP). */
const TOKENIZER_JS = `
const form = document.getElementById('card-form');
const button = form.querySelector('button[type="submit"]');
const summary = document.getElementById('form-error');
const done = document.getElementById('form-done');
const FIELDS = ['number', 'expiry', 'cvv', 'name'];

function luhn(digits) {
  if (!/^\\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = Number(digits[i]);
    if (double) { digit *= 2; if (digit > 9) digit -= 9; }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

function check(values) {
  const errors = {};
  const digits = values.number.replace(/[\\s-]/g, '');
  if (!luhn(digits)) errors.number = 'Revisa el número de tarjeta.';
  const match = /^\\s*(\\d{2})\\s*\\/\\s*(\\d{2})\\s*$/.exec(values.expiry);
  if (!match || Number(match[1]) < 1 || Number(match[1]) > 12) {
    errors.expiry = 'Escribe la fecha de vencimiento como MM/AA.';
  } else {
    const now = new Date();
    const year = 2000 + Number(match[2]);
    const month = Number(match[1]);
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) errors.expiry = 'La tarjeta está vencida.';
  }
  if (!/^\\d{3,4}$/.test(values.cvv.trim())) errors.cvv = 'El código de seguridad tiene 3 o 4 dígitos.';
  const name = values.name.trim();
  if (name.length < 2 || name.length > 80) errors.name = 'Escribe el nombre como aparece en la tarjeta.';
  return errors;
}

function show(errors, message) {
  let first = null;
  for (const field of FIELDS) {
    const input = document.getElementById(field);
    const slot = document.getElementById(field + '-error');
    const text = errors[field];
    input.setAttribute('aria-invalid', text ? 'true' : 'false');
    slot.textContent = text || '';
    slot.hidden = !text;
    if (text && !first) first = input;
  }
  summary.textContent = message || '';
  summary.hidden = !message;
  if (first) first.focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  done.hidden = true;
  const values = {};
  for (const field of FIELDS) values[field] = document.getElementById(field).value;
  const errors = check(values);
  if (Object.keys(errors).length > 0) {
    show(errors, 'Revisa los datos marcados.');
    return;
  }
  show({}, '');
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: 'omit',
      body: JSON.stringify({ merchantId: form.dataset.merchantId, customerId: form.dataset.customerId, ...values }),
    });
    const body = await response.json();
    if (!response.ok) {
      show(body.errors || {}, body.message || 'No pudimos guardar la tarjeta.');
      return;
    }
    form.reset();
    done.hidden = false;
    window.parent.postMessage(
      { type: 'kasu-card-token', token: body.token, last4: body.last4, brand: body.brand, expiry: body.expiry },
      form.dataset.origin,
    );
  } catch {
    show({}, 'No pudimos guardar la tarjeta. Revisa tu conexión e intenta de nuevo.');
  } finally {
    button.disabled = false;
  }
});
`;

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** A serialised http(s) origin ("https://shop.example"), or null. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.origin === value ? value : null;
  } catch {
    return null;
  }
}

function pageCsp(frameAncestors: string): string {
  return (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    `form-action 'self'; base-uri 'none'; frame-ancestors ${frameAncestors}`
  );
}

function field(id: string, label: string, attributes: string): string {
  return (
    `<div class="field"><label for="${id}">${label}</label>` +
    `<input id="${id}" name="${id}" ${attributes} required aria-invalid="false" aria-describedby="${id}-error">` +
    `<p id="${id}-error" class="error" hidden></p></div>`
  );
}

// ---------- the gateway's answers ----------

type ErrorBody = { isSuccess: false; errors: Array<{ key: string; value: string[] }> };

class GatewayRefusal extends Error {
  constructor(
    readonly status: number,
    key: string,
    message: string,
  ) {
    super(message);
    this.body = { isSuccess: false, errors: [{ key, value: [message] }] };
  }
  readonly body: ErrorBody;
}

function zodRefusal(error: z.ZodError): GatewayRefusal {
  const message = error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
  return new GatewayRefusal(400, 'ValidationException', message);
}

const CreateUserSchema = z.object({
  merchantId: z.string().min(1),
  customerId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'alphanumeric, at most 100 characters'),
  contractNumber: z.string().min(1).max(20),
  contactInfo: z.object({
    email: z.string().min(3).max(200),
    phoneNumber: z.string().min(1).max(30),
    address: z.string().min(1).max(300),
    zipCode: z.string().min(1).max(10),
  }),
});

const PaymentTokenSchema = z.object({
  transactionType: z.literal('sale'),
  merchantId: z.string().min(1),
  customerId: z.string().min(1).max(100),
  order: z.object({
    merchantOrderId: z.string().min(1).max(100),
    amount: z.string().regex(/^\d{1,10}(\.\d{1,2})?$/, 'a decimal string with up to 2 decimals').refine((value) => Number(value) > 0, 'more than zero'),
    currency: z.literal('MXN'),
  }),
  card: z.object({ token: z.string().min(1) }),
});

const TokenizeSchema = z.object({
  merchantId: z.string().min(1),
  customerId: z.string().min(1),
  number: z.string().max(40),
  expiry: z.string().max(10),
  cvv: z.string().max(10),
  name: z.string().max(200),
});

const RESPONSES: Record<'approve' | 'insufficient-funds' | 'do-not-honour', { code: string; description: string }> = {
  approve: { code: '00', description: 'Aprobada' },
  'insufficient-funds': { code: '51', description: 'Fondos insuficientes' },
  'do-not-honour': { code: '05', description: 'No honrar' },
};

export function createCardSandbox(options: CardSandboxOptions = {}): {
  router: Router;
  state: CardSandboxState;
  close(): Promise<void>;
} {
  const now = options.now ?? Date.now;
  const hangMs = Math.min(options.hangMs ?? 120_000, MAX_HANG_MS);
  const merchants = new Map(
    (options.merchants?.length ? options.merchants : [{ merchantId: SANDBOX_CARD_MERCHANT_ID, key: SANDBOX_CARD_KEY }]).map((merchant) => [
      merchant.merchantId,
      merchant.key,
    ]),
  );
  const allowedOrigins = options.allowedParentOrigins ? new Set(options.allowedParentOrigins) : null;
  const cardLatency = new Map(Object.entries(options.cardLatencyMs ?? {}));

  /** Pending waits (latency, hanging answers): close() releases them. */
  const waits = new Set<() => void>();
  let closed = false;
  const faults = createFaults({
    rules: options.faults ?? [],
    errorBody: (status) => ({
      isSuccess: false,
      errors: [{ key: status === 504 ? 'GatewayTimeoutException' : status >= 500 ? 'InternalServerError' : 'SandboxFault', value: [`HTTP ${status}`] }],
    }),
  });

  const state: CardSandboxState = {
    customers: new Map(),
    cards: new Map(),
    ledger: [],
    requests: [],
    latencyMs: options.latencyMs ?? 0,
    faults: faults.controller,
    reset() {
      faults.controller.reset();
      state.customers.clear();
      state.cards.clear();
      state.ledger.length = 0;
      state.requests.length = 0;
      state.latencyMs = options.latencyMs ?? 0;
    },
  };

  function wait(ms: number): Promise<void> {
    if (ms <= 0 || closed) return Promise.resolve();
    return new Promise((resolve) => {
      const release = (): void => {
        clearTimeout(timer);
        waits.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      waits.add(release);
    });
  }

  const at = (): string => new Date(now()).toISOString();
  const customerKey = (merchantId: string, customerId: string): string => `${merchantId} ${customerId}`;

  function requireCustomer(merchantId: string, customerId: string): CardSandboxCustomer {
    const customer = state.customers.get(customerKey(merchantId, customerId));
    if (!customer) throw new GatewayRefusal(404, 'ResourceNotFoundException', `User does not exist: ${merchantId} ${customerId}`);
    return customer;
  }

  // ---------- API ----------

  const api = express.Router();
  api.use(express.raw({ type: () => true, limit: '64kb' }));

  /** Records the request, parses the JSON body, checks the authentication headers with the merchant's key. */
  api.use((req: Request, res: Response, next: NextFunction) => {
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const record: CardSandboxRequest = { method: req.method, path: req.path, merchantId: null, auth: 'missing-headers', status: 0, at: at() };
    state.requests.push(record);
    if (state.requests.length > MAX_RECORDS) state.requests.splice(0, state.requests.length - MAX_RECORDS);
    res.on('finish', () => (record.status = res.statusCode));
    let json: unknown = undefined;
    if (raw.length > 0) {
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        next(new GatewayRefusal(400, 'ValidationException', 'The body is not valid JSON'));
        return;
      }
    }
    res.locals.json = json;
    const fromBody = typeof json === 'object' && json !== null ? (json as { merchantId?: unknown }).merchantId : undefined;
    const merchantId = typeof fromBody === 'string' ? fromBody : typeof req.query.MerchantId === 'string' ? req.query.MerchantId : null;
    record.merchantId = merchantId;
    const key = merchantId === null ? undefined : merchants.get(merchantId);
    if (key === undefined) {
      record.auth = 'unknown-merchant';
      next(new GatewayRefusal(401, 'UnauthorizedAccessException', 'Unknown merchant'));
      return;
    }
    const verdict = verifyCardAuth(
      key,
      { method: req.method, contentType: req.get('content-type') ?? '', body: raw, headers: req.headers },
      { ...options.auth, nowSeconds: Math.floor(now() / 1000) },
    );
    record.auth = verdict.ok ? 'ok' : verdict.reason;
    if (!verdict.ok) {
      next(new GatewayRefusal(401, 'UnauthorizedAccessException', `Authentication failed: ${verdict.reason}`));
      return;
    }
    wait(state.latencyMs).then(() => next(), next);
  });

  api.post('/create-user', (_req, res) => {
    const parsed = CreateUserSchema.safeParse(res.locals.json);
    if (!parsed.success) throw zodRefusal(parsed.error);
    const body = parsed.data;
    const key = customerKey(body.merchantId, body.customerId);
    if (state.customers.has(key)) throw new GatewayRefusal(400, 'InvalidOperationException', 'User already exists');
    state.customers.set(key, { ...body, createdAt: at() });
    res.json({ isSuccess: true });
  });

  api.get('/Card/get-cards', (req, res) => {
    const merchantId = String(req.query.MerchantId ?? '');
    const customerId = typeof req.query.CustomerId === 'string' ? req.query.CustomerId : '';
    if (!customerId) throw new GatewayRefusal(400, 'ValidationException', 'CustomerId: required');
    requireCustomer(merchantId, customerId);
    const payload = [...state.cards.values()]
      .filter((card) => card.merchantId === merchantId && card.customerId === customerId)
      .map((card) => ({ token: card.token, cardInfo: { bin: card.bin, last4Numbers: card.last4, cardBrand: card.brand }, isDefault: card.isDefault }));
    res.json({ payload, isSuccess: true });
  });

  api.post('/make-payment-token', async (_req, res) => {
    const parsed = PaymentTokenSchema.safeParse(res.locals.json);
    if (!parsed.success) throw zodRefusal(parsed.error);
    const { merchantId, customerId, order, card: cardRef } = parsed.data;
    requireCustomer(merchantId, customerId);
    if (state.ledger.some((entry) => entry.merchantId === merchantId && entry.merchantOrderId === order.merchantOrderId)) {
      // Our assumption: the document only says a repeated merchantOrderId "regresaría un error".
      throw new GatewayRefusal(400, 'DuplicateMerchantOrderId', `merchantOrderId already exists: ${order.merchantOrderId}`);
    }
    const card = state.cards.get(cardRef.token);
    if (!card || card.merchantId !== merchantId || card.customerId !== customerId) {
      throw new GatewayRefusal(404, 'ResourceNotFoundException', 'Card does not exist');
    }
    await wait(card.latencyMs ?? 0);
    if (card.behaviour === 'gateway-error') throw new GatewayRefusal(500, 'InternalServerError', 'The processor did not answer');
    const response = RESPONSES[card.behaviour === 'timeout' ? 'approve' : card.behaviour];
    const approved = response.code === '00';
    const orderId = randomUUID();
    const entry: CardLedgerEntry = {
      merchantId, merchantOrderId: order.merchantOrderId, customerId, amount: order.amount, currency: order.currency,
      token: card.token, outcome: approved ? 'approved' : 'rejected', responseCode: response.code, orderId,
      answered: card.behaviour !== 'timeout', at: at(),
    };
    state.ledger.push(entry);
    if (card.behaviour === 'timeout') {
      await wait(hangMs);
      throw new GatewayRefusal(504, 'GatewayTimeoutException', 'The processor did not answer in time');
    }
    res.json({
      payload: {
        responseCode: response.code,
        responseDescription: response.description,
        authorizationNumber: approved ? String(randomInt(100_000, 1_000_000)) : '',
        referenceNumber: randomUUID(),
        status: approved ? 'approved' : 'rejected',
        order: { id: orderId, amount: order.amount, currency: order.currency },
      },
      isSuccess: approved,
    });
  });

  api.use((_req: Request, _res: Response) => {
    throw new GatewayRefusal(404, 'ResourceNotFoundException', 'Unknown resource');
  });

  api.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof GatewayRefusal) {
      res.status(error.status).json(error.body);
      return;
    }
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ isSuccess: false, errors: [{ key: 'ValidationException', value: ['Bad request'] }] });
      return;
    }
    res.status(500).json({ isSuccess: false, errors: [{ key: 'InternalServerError', value: ['Unexpected error'] }] });
  });

  // ---------- tokenizer ----------

  const router = express.Router();
  router.use(faults.router);
  router.use(API_BASE, api);

  function base(req: Request): string {
    return (options.publicUrl ?? req.baseUrl).replace(/\/+$/, '');
  }

  function tokenizerError(res: Response, status: number, message: string, frameAncestors: string, cssHref: string): void {
    res
      .status(status)
      .set('Content-Security-Policy', pageCsp(frameAncestors))
      .set('X-Content-Type-Options', 'nosniff')
      .set('Referrer-Policy', 'no-referrer')
      .type('html')
      .send(
        `<!doctype html><html lang="es-MX"><head><meta charset="utf-8"><title>Tarjeta no disponible</title>` +
          `<link rel="stylesheet" href="${escapeHtml(cssHref)}"></head><body><main><p role="alert" class="form-error">${escapeHtml(message)}</p></main></body></html>`,
      );
  }

  router.get('/tokenizer', (req, res) => {
    const root = base(req);
    const css = `${root}/tokenizer/tokenizer.css`;
    const merchantId = typeof req.query.merchantId === 'string' ? req.query.merchantId : '';
    const customerId = typeof req.query.customerId === 'string' ? req.query.customerId : '';
    const origin = originOf(typeof req.query.origin === 'string' ? req.query.origin : '');
    if (!origin || (allowedOrigins && !allowedOrigins.has(origin))) {
      tokenizerError(res, 400, 'Esta página no puede mostrarse aquí.', "'none'", css);
      return;
    }
    if (!merchants.has(merchantId) || !state.customers.has(customerKey(merchantId, customerId))) {
      tokenizerError(res, 404, 'No encontramos al comercio o al cliente. Vuelve a empezar.', origin, css);
      return;
    }
    res
      .status(200)
      .set('Content-Security-Policy', pageCsp(origin))
      .set('X-Content-Type-Options', 'nosniff')
      .set('Referrer-Policy', 'no-referrer')
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(
        `<!doctype html><html lang="es-MX"><head><meta charset="utf-8">` +
          `<meta name="viewport" content="width=device-width, initial-scale=1"><title>Datos de tu tarjeta</title>` +
          `<link rel="stylesheet" href="${escapeHtml(css)}">` +
          `<script type="module" src="${escapeHtml(`${root}/tokenizer/tokenizer.js`)}"></script></head><body><main>` +
          `<p class="badge">Sandbox: usa una tarjeta de prueba, ninguna es real.</p>` +
          `<form id="card-form" novalidate method="post" action="${escapeHtml(`${root}/tokenizer/tokens`)}" ` +
          `data-merchant-id="${escapeHtml(merchantId)}" data-customer-id="${escapeHtml(customerId)}" data-origin="${escapeHtml(origin)}">` +
          `<p id="form-error" class="form-error" role="alert" hidden></p>` +
          `<p id="form-done" class="done" role="status" hidden>Tarjeta guardada.</p>` +
          field('number', 'Número de tarjeta', 'inputmode="numeric" autocomplete="cc-number" maxlength="23"') +
          `<div class="row">` +
          field('expiry', 'Vencimiento (MM/AA)', 'inputmode="numeric" autocomplete="cc-exp" placeholder="MM/AA" maxlength="7"') +
          field('cvv', 'Código de seguridad (CVV)', 'inputmode="numeric" autocomplete="cc-csc" maxlength="4"') +
          `</div>` +
          field('name', 'Nombre como aparece en la tarjeta', 'autocomplete="cc-name" maxlength="80"') +
          `<button type="submit">Guardar tarjeta</button></form></main></body></html>`,
      );
  });

  router.get('/tokenizer/tokenizer.js', (_req, res) => {
    res.type('text/javascript').set('X-Content-Type-Options', 'nosniff').set('Cache-Control', 'public, max-age=300').send(TOKENIZER_JS);
  });
  router.get('/tokenizer/tokenizer.css', (_req, res) => {
    res.type('css').set('X-Content-Type-Options', 'nosniff').set('Cache-Control', 'public, max-age=300').send(TOKENIZER_CSS);
  });

  // Only application/json: a cross-origin page would need a CORS preflight, which this route never grants.
  router.post('/tokenizer/tokens', express.json({ limit: '4kb' }), (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!req.is('application/json')) {
      res.status(415).json({ message: 'Envía los datos como JSON.', errors: {} });
      return;
    }
    const parsed = TokenizeSchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ message: 'Faltan datos de la tarjeta.', errors: {} });
      return;
    }
    const body = parsed.data;
    if (!merchants.has(body.merchantId) || !state.customers.has(customerKey(body.merchantId, body.customerId))) {
      res.status(404).json({ message: 'No encontramos al comercio o al cliente. Vuelve a empezar.', errors: {} });
      return;
    }
    const { errors, digits, expiry } = checkCardForm(body, now());
    if (Object.keys(errors).length > 0) {
      res.status(400).json({ message: 'Revisa los datos marcados.', errors });
      return;
    }
    const brand = cardBrand(digits) ?? 'visa';
    const hasCards = [...state.cards.values()].some((card) => card.merchantId === body.merchantId && card.customerId === body.customerId);
    const card: CardSandboxCard = {
      token: randomUUID(),
      merchantId: body.merchantId,
      customerId: body.customerId,
      bin: digits.slice(0, 6),
      last4: digits.slice(-4),
      brand,
      expiry,
      holderName: body.name.trim(),
      behaviour: BEHAVIOURS[digits] ?? 'approve',
      latencyMs: cardLatency.get(digits) ?? null,
      isDefault: !hasCards,
      createdAt: at(),
    };
    state.cards.set(card.token, card);
    res.status(201).json({ token: card.token, last4: card.last4, brand: card.brand, expiry: card.expiry });
  });

  return {
    router,
    state,
    async close() {
      closed = true;
      faults.close();
      for (const release of [...waits]) release();
    },
  };
}

/** Runs the simulator on its own HTTP server (port 0 = any free port); the API is at `${url}/api/v1`. */
export async function startCardSandbox(
  options: CardSandboxOptions & { port?: number; host?: string } = {},
): Promise<{ url: string; state: CardSandboxState; close(): Promise<void> }> {
  return serveStandalone(
    createCardSandbox(options),
    { isSuccess: false, errors: [{ key: 'ResourceNotFoundException', value: ['Unknown resource'] }] },
    options,
  );
}
