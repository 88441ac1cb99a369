/**
 * A Khipu API 2.0 simulator over real HTTP, faithful to Khipu's document (khipu-api-2.0.txt) and NOTES.md:
 * form-encoded requests, each one's signature checked with the official algorithm over the URL as received, the
 * document's answer models and error shapes, the payer's payment page, and notifications 1.3 retried until a 200.
 * Mounted by the BFF at /sandbox/khipu, or run alone with main.ts:
 *
 *   <mount>/api/2.0/...                 the API (KHIPU_BASE_URL in sandbox mode is <mount>/api/2.0)
 *   <mount>/payment/:id                 the payer's page (payment_url); POST …/pay and …/cancel from its forms
 *   <mount>/_control/...                test knobs, JSON, no signature. SANDBOX ONLY: Khipu has nothing like it.
 *
 * Interpretations of the document, where it is silent:
 * - An unknown payment id or notification token answers 400 "Datos inválidos" with `errors` naming `id` or
 *   `notification_token`: the document lists 400/403/503 for every call and no 404, and Khipu answers an unknown
 *   token that way. State conflicts (delete a paid payment, refund more than is left…) are 400 too, naming the
 *   field at fault (`status`, `amount`).
 * - A payment is visible only to the receiver that created it (another receiver gets the same 400).
 * - Amounts: up to 4 decimals, none for CLP (a currency without centavos), more than zero.
 * - Only notifications 1.3 are simulated: another notify_api_version is a 400; without notify_url (on the payment or
 *   as the receiver's default from POST /receivers) nothing is notified. Only an HTTP 200 stops the retries.
 * - Refunds are allowed until the funds are rendered: a day after POST …/confirm, or confirm_timeout_date.
 * - Paying goes straight from pending to done (simplified transfer, status_detail normal); a full refund leaves
 *   status done with status_detail reversed. Cancelling on the payment page leaves the payment pending.
 */
import { randomBytes, randomInt } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { serveStandalone } from '../standalone.js';
import { createFaults, type FaultController, type FaultRuleInput } from '../faults.js';
import {
  khipuAuthorizationReceiver,
  splitKhipuUrl,
  verifyKhipuAuthorization,
} from '../../providers/khipu/signature.js';

export type KhipuSandboxReceiver = { receiverId: string; secret: string; /** Default notify_url (POST /receivers). */ notifyUrl?: string };

export type KhipuSandboxOptions = {
  /** Receivers whose signatures are accepted; default one: '100000' / 'sandbox-khipu-secret' (the BFF's sandbox values). */
  receivers?: KhipuSandboxReceiver[];
  /** Milliseconds since the epoch; decides creation, expiry, conciliation and rendition times. */
  now?: () => number;
  /**
   * Public base URL of the sandbox as the customer's browser reaches it (e.g. https://shop.example/sandbox/khipu),
   * to build payment_url; default derived from each request (protocol + host + mount path).
   */
  publicUrl?: string;
  /** Wait before each attempt of one notification delivery; its length bounds the attempts. Default about two days. */
  notificationRetryDelaysMs?: number[];
  /** Per attempt; default 10 s. */
  notificationTimeoutMs?: number;
  fetch?: typeof fetch;
  /** Initial fault rules (faults.ts); change them with state.faults or <mount>/_faults. */
  faults?: FaultRuleInput[];
};

export type KhipuSandboxBank = { bank_id: string; name: string; message: string; min_amount: number; type: string; parent: string };

/** A payment as Khipu's PaymentsResponse (snake_case, amounts as Doubles) plus the sandbox's own bookkeeping. */
export type KhipuSandboxPayment = {
  payment_id: string;
  payment_url: string;
  simplified_transfer_url: string;
  transfer_url: string;
  webpay_url: string | null;
  app_url: string;
  ready_for_terminal: boolean;
  notification_token: string;
  /** A Long, as Khipu sends it (a string only for a receiver id that is not numeric). */
  receiver_id: number | string;
  conciliation_date: string | null;
  subject: string;
  amount: number;
  currency: string;
  status: 'pending' | 'verifying' | 'done';
  status_detail: string;
  body: string | null;
  picture_url: string | null;
  receipt_url: string | null;
  return_url: string | null;
  cancel_url: string | null;
  notify_url: string | null;
  notify_api_version: string | null;
  expires_date: string | null;
  attachment_urls: string[];
  bank: string | null;
  bank_id: string | null;
  payer_name: string | null;
  payer_email: string | null;
  personal_identifier: string | null;
  bank_account_number: string | null;
  out_of_date_conciliation: boolean;
  transaction_id: string | null;
  custom: string | null;
  responsible_user_email: string | null;
  send_reminders: boolean;
  send_email: boolean;
  payment_method: string | null;
  funds_source: string | null;
  /** Never part of an API answer. */
  sandbox: {
    receiverId: string;
    createdAt: string;
    /** The form parameters of POST /payments, decoded, in the order received. */
    params: Array<[string, string]>;
    /** Refunded so far, in the payment's currency (a Double like `amount`). */
    refunded: number;
    refunds: Array<{ amount: number; at: string }>;
    confirmedAt: string | null;
    confirmTimeoutDate: string | null;
    /** When set, GET answers this amount instead of `amount` (a tampered payment). */
    reportAmount: number | null;
    /** When set, GET answers this receiver_id instead of the real one. */
    reportReceiverId: string | null;
    /** Base URL of the payer's pages for this payment. */
    publicBase: string;
  };
};

export type KhipuNotificationAttempt = {
  paymentId: string;
  url: string;
  /** The exact form body sent. */
  body: string;
  /** Which delivery of this notification (1…n when a knob asks for several). */
  delivery: number;
  /** Attempt within the delivery, from 1. */
  attempt: number;
  /** The receiver's HTTP status, or null when it could not be reached. */
  status: number | null;
  error: string | null;
  at: string;
};

export type KhipuSandboxRequest = {
  method: string;
  /** Below /api/2.0, without the query, e.g. /payments/abc123def456. */
  path: string;
  /** Query and form parameters, decoded. */
  params: Array<[string, string]>;
  receiverId: string | null;
  signatureValid: boolean;
  /** The status answered (0 until the answer is sent). */
  status: number;
  at: string;
};

export type KhipuSandboxState = {
  /** By payment_id; a deleted payment is removed. */
  payments: Map<string, KhipuSandboxPayment>;
  /** Every notification delivery attempt, in order. */
  notifications: KhipuNotificationAttempt[];
  /** Every API request received (not pages, not the control API). */
  requests: KhipuSandboxRequest[];
  /** By receiver id: the configured ones and those created with POST /receivers. */
  receivers: Map<string, { secret: string; notifyUrl: string | null }>;
  /** Pending forced failures (POST /_control/fail-next). */
  failNext: Array<{ status: number; path: string | null; method: string | null; times: number }>;
  /** Injected failures (faults.ts); paths are below the mount, e.g. /api/2.0/payments. */
  faults: FaultController;
  /** Forget everything and stop pending notifications; receivers and faults go back to the configured ones. */
  reset(): void;
};

export const SANDBOX_KHIPU_RECEIVER_ID = '100000';
export const SANDBOX_KHIPU_SECRET = 'sandbox-khipu-secret';

/** The simulated banks (Bawdf is Khipu's own DemoBank id). Minimum amounts in pesos. */
export const SANDBOX_KHIPU_BANKS: readonly KhipuSandboxBank[] = [
  { bank_id: 'Bawdf', name: 'DemoBank', message: 'Banco de pruebas: ningún pago es real.', min_amount: 10, type: 'Persona', parent: '' },
  { bank_id: 'Bawdg', name: 'DemoBank Empresas', message: 'Banca empresas del banco de pruebas.', min_amount: 10, type: 'Empresa', parent: 'Bawdf' },
  { bank_id: 'Bmxpr', name: 'Banco Ficticio de México', message: '', min_amount: 1, type: 'Persona', parent: '' },
];

export const SANDBOX_KHIPU_PAYMENT_METHODS = [
  { id: 'simplified_transfer', name: 'Transferencia simplificada' },
  { id: 'regular_transfer', name: 'Transferencia normal' },
] as const;

const API_BASE = '/api/2.0';
/** Requests and notification attempts kept in state: a sandbox left running inside the BFF must not grow forever. */
const MAX_RECORDS = 5_000;
const HOUR = 3_600_000;
/** Khipu keeps notifying for up to two days: 0 s, 1 s, 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 6 h, 12 h, 24 h. */
const DEFAULT_RETRY_DELAYS_MS = [0, 1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR];
const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
/** Currencies without minor units: amounts must be whole. */
const WHOLE_CURRENCIES = new Set(['CLP']);
const RECEIVER_REQUIRED_FIELDS = [
  'admin_first_name', 'admin_last_name', 'admin_email', 'country_code', 'business_identifier', 'business_category',
  'business_name', 'business_phone', 'business_address_line_1', 'business_address_line_2', 'business_address_line_3',
  'contact_full_name', 'contact_job_title', 'contact_email', 'contact_phone',
] as const;

/** No inline styles or scripts anywhere: the pages work under this policy. */
const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'";

const PAGE_CSS = `
:root { color-scheme: light; font-family: system-ui, sans-serif; }
body { margin: 0; background: #f3f5f8; color: #1d2430; }
main { max-width: 28rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 0.75rem; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
.badge { margin: 0 0 1rem; padding: 0.4rem 0.6rem; border-radius: 0.4rem; background: #fff4d6; color: #6b4b00; font-size: 0.85rem; }
h1 { font-size: 1.3rem; margin: 0 0 1rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0.3rem 1rem; margin: 0 0 1.5rem; }
dt { color: #5a6474; }
dd { margin: 0; font-weight: 600; }
label { display: block; margin-bottom: 0.3rem; }
select { width: 100%; padding: 0.5rem; margin-bottom: 1rem; font: inherit; }
button { width: 100%; padding: 0.7rem; border: 0; border-radius: 0.5rem; font: inherit; font-weight: 600; cursor: pointer; }
.pay { background: #8347ad; color: #fff; }
.cancel { margin-top: 0.75rem; background: #e4e7ec; color: #1d2430; }
a { color: #6a2f96; }
`;

const LOGO_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40"><rect width="120" height="40" rx="6" fill="#8347ad"/>' +
  '<text x="60" y="26" font-family="sans-serif" font-size="16" fill="#fff" text-anchor="middle">khipu sandbox</text></svg>';

type FieldError = { field: string; message: string };

/** A Khipu error answer, thrown from a handler and sent by the API router's error middleware. */
class KhipuRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: { status: number; message: string; errors?: FieldError[] },
  ) {
    super(body.message);
  }
}

function invalid(errors: FieldError[]): never {
  throw new KhipuRefusal(400, { status: 400, message: 'Datos inválidos', errors });
}

function randomText(length: number, alphabet: string): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** ISO-8601 UTC without milliseconds, as Khipu writes dates. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A decimal amount in ten-thousandths (Khipu allows up to 4 decimals), or null. */
function amountUnits(text: string): number | null {
  const match = /^(\d{1,12})(?:\.(\d{1,4}))?$/.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * 10_000 + Number((match[2] ?? '').padEnd(4, '0'));
}

function toUnits(amount: number): number {
  return Math.round(amount * 10_000);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function keepLast<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > MAX_RECORDS) list.splice(0, list.length - MAX_RECORDS);
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function formatAmount(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat('es-MX', { style: 'currency', currency, currencyDisplay: 'narrowSymbol' }).format(amount);
  } catch {
    return String(amount);
  }
}

function formPairs(body: unknown): Array<[string, string]> {
  if (typeof body === 'string') return [...new URLSearchParams(body)];
  // Parsed already by the host app: best effort (repeated keys arrive as arrays).
  if (typeof body === 'object' && body !== null) {
    return Object.entries(body).flatMap(([key, value]) =>
      (Array.isArray(value) ? value : [value]).map((item): [string, string] => [key, String(item)]),
    );
  }
  return [];
}

const ControlPaySchema = z.object({
  bankId: z.string().min(1).optional(),
  deliveries: z.number().int().min(0).max(50).default(1),
  delayMs: z.number().int().min(0).max(HOUR).optional(),
  notify: z.boolean().default(true),
  reportAmount: z.union([z.string(), z.number().nonnegative()]).optional(),
  /** GET then answers this receiver_id (a payment that claims another receiver). */
  reportReceiverId: z.string().min(1).optional(),
});
const ControlNotifySchema = ControlPaySchema.pick({ deliveries: true, delayMs: true });
const ControlFailSchema = z.object({
  status: z.number().int().min(400).max(599),
  path: z.string().min(1).optional(),
  method: z.string().min(1).optional(),
  times: z.number().int().min(1).max(100).default(1),
});

export function createKhipuSandbox(options: KhipuSandboxOptions = {}): {
  router: Router;
  state: KhipuSandboxState;
  close(): Promise<void>;
} {
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const retryDelays = options.notificationRetryDelaysMs?.length ? options.notificationRetryDelaysMs : DEFAULT_RETRY_DELAYS_MS;
  const attemptTimeoutMs = options.notificationTimeoutMs ?? 10_000;
  const configuredReceivers = options.receivers?.length
    ? options.receivers
    : [{ receiverId: SANDBOX_KHIPU_RECEIVER_ID, secret: SANDBOX_KHIPU_SECRET }];
  const banks = new Map(SANDBOX_KHIPU_BANKS.map((bank) => [bank.bank_id, bank]));

  let lifecycle = new AbortController();
  const deliveries = new Set<Promise<void>>();
  const faults = createFaults({
    rules: options.faults ?? [],
    errorBody: (status) => ({ status, message: status === 503 ? 'Servicio no disponible temporalmente' : 'Error simulado' }),
  });

  const state: KhipuSandboxState = {
    payments: new Map(),
    notifications: [],
    requests: [],
    receivers: new Map(),
    failNext: [],
    faults: faults.controller,
    reset() {
      faults.controller.reset();
      lifecycle.abort();
      lifecycle = new AbortController();
      state.payments.clear();
      state.notifications.length = 0;
      state.requests.length = 0;
      state.failNext.length = 0;
      loadReceivers();
    },
  };
  function loadReceivers(): void {
    state.receivers.clear();
    for (const receiver of configuredReceivers) {
      state.receivers.set(receiver.receiverId, { secret: receiver.secret, notifyUrl: receiver.notifyUrl ?? null });
    }
  }
  loadReceivers();

  /** The sandbox's public base: options.publicUrl, or the request's own origin and mount path. */
  function publicBase(req: Request): string {
    if (options.publicUrl) return options.publicUrl.replace(/\/+$/, '');
    const mount = req.baseUrl.endsWith(API_BASE) ? req.baseUrl.slice(0, -API_BASE.length) : req.baseUrl;
    return `${req.protocol}://${req.host}${mount}`;
  }

  /** What GET answers: the document's fields only, with a tampered amount when a knob asked for one. */
  function answerOf(payment: KhipuSandboxPayment): Omit<KhipuSandboxPayment, 'sandbox'> {
    const { sandbox, ...fields } = payment;
    return {
      ...fields,
      amount: sandbox.reportAmount ?? payment.amount,
      ...(sandbox.reportReceiverId ? { receiver_id: sandbox.reportReceiverId } : {}),
    };
  }

  function isExpired(payment: KhipuSandboxPayment): boolean {
    return payment.expires_date !== null && now() > Date.parse(payment.expires_date);
  }

  // ---------- notifications ----------

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      timer.unref?.();
      signal.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }

  /** One delivery: POST the 1.3 form, retrying on the schedule until the merchant answers 200. */
  async function deliver(payment: KhipuSandboxPayment, url: string, delivery: number, firstDelayMs: number | undefined, signal: AbortSignal) {
    const body = new URLSearchParams({ api_version: '1.3', notification_token: payment.notification_token }).toString();
    for (const [index, delay] of retryDelays.entries()) {
      await sleep(index === 0 && firstDelayMs !== undefined ? firstDelayMs : delay, signal);
      if (signal.aborted) return;
      const attempt: KhipuNotificationAttempt = {
        paymentId: payment.payment_id, url, body, delivery, attempt: index + 1, status: null, error: null, at: new Date(now()).toISOString(),
      };
      try {
        const response = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'khipu-sandbox/2.0' },
          body,
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(attemptTimeoutMs)]),
        });
        await response.arrayBuffer().catch(() => undefined);
        attempt.status = response.status;
      } catch (error) {
        attempt.error = (error as Error).name === 'TimeoutError' ? 'timeout' : String((error as Error).message);
      }
      if (signal.aborted) return;
      keepLast(state.notifications, attempt);
      if (attempt.status === 200) return;
    }
  }

  /** `count` deliveries one after the other (each retried until 200), the first one `delayMs` late. */
  function notify(payment: KhipuSandboxPayment, count: number, delayMs?: number): boolean {
    const url = payment.notify_url ?? state.receivers.get(payment.sandbox.receiverId)?.notifyUrl ?? null;
    if (!url || count < 1) return false;
    const signal = lifecycle.signal;
    const run = (async () => {
      for (let delivery = 1; delivery <= count && !signal.aborted; delivery++) {
        await deliver(payment, url, delivery, delivery === 1 ? delayMs : undefined, signal);
      }
    })();
    deliveries.add(run);
    void run.finally(() => deliveries.delete(run));
    return true;
  }

  function markPaid(payment: KhipuSandboxPayment, bankId: string | undefined): void {
    const bank = banks.get(bankId ?? payment.bank_id ?? '') ?? SANDBOX_KHIPU_BANKS[0]!;
    payment.status = 'done';
    payment.status_detail = 'normal';
    payment.payment_method = 'simplified_transfer';
    payment.funds_source = '';
    payment.bank = bank.name;
    payment.bank_id = bank.bank_id;
    payment.conciliation_date = isoSeconds(now());
    payment.out_of_date_conciliation = false;
    payment.receipt_url = `${payment.sandbox.publicBase}/payment/${payment.payment_id}/receipt`;
  }

  // ---------- the API ----------

  const api = express.Router();
  // Read the raw form so that repeated and bracketed keys reach the signature check exactly as sent
  // (express.urlencoded's qs would nest `a[b]` and merge repeats).
  api.use(express.text({ type: 'application/x-www-form-urlencoded', limit: '64kb' }));

  api.use((req: Request, res: Response, next: NextFunction) => {
    const form = formPairs(req.body);
    const { base, query } = splitKhipuUrl(req.originalUrl);
    const header = req.get('authorization');
    const receiverId = khipuAuthorizationReceiver(header);
    const receiver = receiverId ? state.receivers.get(receiverId) : undefined;
    // The URL the client signed: the one it sent, as this server received it.
    const url = `${req.protocol}://${req.host}${req.originalUrl}`;
    const signatureValid =
      receiverId !== null &&
      receiver !== undefined &&
      verifyKhipuAuthorization(header, { receiverId, secret: receiver.secret, method: req.method, url, params: form });
    const path = base.slice(req.baseUrl.length) || '/';
    const record: KhipuSandboxRequest = {
      method: req.method, path, params: [...query, ...form], receiverId, signatureValid, status: 0, at: new Date(now()).toISOString(),
    };
    keepLast(state.requests, record);
    res.on('finish', () => (record.status = res.statusCode));

    if (!header) throw new KhipuRefusal(403, { status: 403, message: 'Falta el encabezado Authorization' });
    if (!receiver) throw new KhipuRefusal(403, { status: 403, message: 'Cobrador desconocido' });
    if (!signatureValid) throw new KhipuRefusal(403, { status: 403, message: 'Firma inválida' });

    const forced = state.failNext.findIndex(
      (rule) =>
        (rule.method === null || rule.method.toUpperCase() === req.method) &&
        (rule.path === null || path === rule.path || path.startsWith(`${rule.path}/`)),
    );
    if (forced !== -1) {
      const rule = state.failNext[forced]!;
      if (--rule.times <= 0) state.failNext.splice(forced, 1);
      const message =
        rule.status === 503 ? 'Servicio no disponible temporalmente' : rule.status === 400 ? 'Datos inválidos' : 'Error simulado';
      throw new KhipuRefusal(rule.status, { status: rule.status, message, ...(rule.status === 400 ? { errors: [] } : {}) });
    }
    res.locals.receiverId = receiverId;
    // The first value of a repeated key wins.
    res.locals.form = new Map([...form].reverse());
    res.locals.query = new Map([...query].reverse());
    next();
  });

  /** One parameter, from the form (POST) or the query (GET, DELETE); '' counts as absent. */
  function param(res: Response, name: string): string | undefined {
    const value = (res.locals.form as Map<string, string>).get(name) ?? (res.locals.query as Map<string, string>).get(name);
    return value === undefined || value === '' ? undefined : value;
  }

  function ownPayment(req: Request, res: Response): KhipuSandboxPayment {
    const payment = state.payments.get(String(req.params.id));
    if (!payment || payment.sandbox.receiverId !== res.locals.receiverId) invalid([{ field: 'id', message: 'El pago no existe' }]);
    return payment;
  }

  api.get('/banks', (_req, res) => {
    res.json({ banks: SANDBOX_KHIPU_BANKS });
  });

  api.get('/payments', (_req, res) => {
    const token = param(res, 'notification_token');
    if (!token) invalid([{ field: 'notification_token', message: 'El campo es obligatorio' }]);
    const payment = [...state.payments.values()].find(
      (p) => p.notification_token === token && p.sandbox.receiverId === res.locals.receiverId,
    );
    if (!payment) invalid([{ field: 'notification_token', message: 'No existe un pago con este token de notificación' }]);
    res.json(answerOf(payment));
  });

  api.post('/payments', (req, res) => {
    const errors: FieldError[] = [];
    const get = (name: string) => param(res, name);
    const required = (name: string) => {
      const value = get(name)?.trim();
      if (!value) errors.push({ field: name, message: 'El campo es obligatorio' });
      return value;
    };
    const subject = required('subject');
    const currency = required('currency');
    const amountText = required('amount');
    if (currency && !/^[A-Z]{3}$/.test(currency)) errors.push({ field: 'currency', message: 'Debe ser un código de moneda ISO-4217' });
    let units: number | null = null;
    if (amountText) {
      units = amountUnits(amountText);
      if (units === null) {
        errors.push({
          field: 'amount',
          message: /^\d+\.\d{5,}$/.test(amountText) ? 'Hasta 4 lugares decimales' : 'Debe ser un número, con "." como separador decimal',
        });
      } else if (units <= 0) errors.push({ field: 'amount', message: 'Debe ser mayor que cero' });
      else if (currency && WHOLE_CURRENCIES.has(currency) && units % 10_000 !== 0) {
        errors.push({ field: 'amount', message: `${currency} no admite decimales` });
      }
    }
    for (const name of ['return_url', 'cancel_url', 'notify_url', 'picture_url', 'contract_url']) {
      const value = get(name);
      if (value !== undefined && !isHttpUrl(value)) errors.push({ field: name, message: 'Debe ser una URL http(s)' });
    }
    const dates: Record<string, number | undefined> = {};
    for (const name of ['expires_date', 'confirm_timeout_date']) {
      const value = get(name);
      if (value === undefined) continue;
      const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
      if (Number.isNaN(ms)) errors.push({ field: name, message: 'Formato ISO-8601, ej. 2017-03-01T13:00:00Z' });
      else if (ms <= now()) errors.push({ field: name, message: 'La fecha ya pasó' });
      else dates[name] = ms;
    }
    const flags: Record<string, boolean> = {};
    for (const name of ['send_email', 'send_reminders']) {
      const value = get(name);
      if (value !== undefined && value !== 'true' && value !== 'false') errors.push({ field: name, message: "Debe ser 'true' o 'false'" });
      flags[name] = value === 'true';
    }
    const payerEmail = get('payer_email');
    if (payerEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(payerEmail)) {
      errors.push({ field: 'payer_email', message: 'Correo no válido' });
    }
    if (flags.send_email) {
      if (!get('payer_name')) errors.push({ field: 'payer_name', message: "Obligatorio cuando send_email es 'true'" });
      if (!payerEmail) errors.push({ field: 'payer_email', message: "Obligatorio cuando send_email es 'true'" });
    }
    const bankId = get('bank_id');
    if (bankId !== undefined && !banks.has(bankId)) errors.push({ field: 'bank_id', message: 'Banco desconocido' });
    const notifyApiVersion = get('notify_api_version');
    if (notifyApiVersion !== undefined && notifyApiVersion !== '1.3') {
      errors.push({ field: 'notify_api_version', message: 'El simulador solo implementa notificaciones 1.3' });
    }
    if ((get('custom')?.length ?? 0) > 4096) errors.push({ field: 'custom', message: 'Máximo 4096 caracteres' });
    if (get('contract_url') && !get('fixed_payer_personal_identifier')) {
      errors.push({ field: 'fixed_payer_personal_identifier', message: 'Obligatorio con contract_url' });
    }
    const mandatory = get('mandatory_payment_method');
    if (mandatory !== undefined && !SANDBOX_KHIPU_PAYMENT_METHODS.some((method) => method.id === mandatory)) {
      errors.push({ field: 'mandatory_payment_method', message: 'Medio de pago desconocido' });
    }
    if (errors.length || !subject || !currency || units === null) invalid(errors);

    let paymentId: string;
    do paymentId = randomText(12, ALPHANUMERIC);
    while (state.payments.has(paymentId));
    const receiverId = res.locals.receiverId as string;
    const base = publicBase(req);
    const pageUrl = `${base}/payment/${paymentId}`;
    const payment: KhipuSandboxPayment = {
      payment_id: paymentId,
      payment_url: pageUrl,
      simplified_transfer_url: `${pageUrl}?via=simplified`,
      transfer_url: `${pageUrl}?via=manual`,
      webpay_url: null,
      app_url: `khipu:///pos/${paymentId}`,
      // The document: true when the payment has everything needed to open Khipu's app directly, i.e. a bank.
      ready_for_terminal: bankId !== undefined,
      notification_token: randomText(64, TOKEN_ALPHABET),
      receiver_id: /^\d{1,15}$/.test(receiverId) ? Number(receiverId) : receiverId,
      conciliation_date: null,
      subject,
      amount: units / 10_000,
      currency,
      status: 'pending',
      status_detail: 'pending',
      body: get('body') ?? null,
      picture_url: get('picture_url') ?? null,
      receipt_url: null,
      return_url: get('return_url') ?? null,
      cancel_url: get('cancel_url') ?? null,
      notify_url: get('notify_url') ?? null,
      notify_api_version: notifyApiVersion ?? null,
      expires_date: dates.expires_date === undefined ? null : isoSeconds(dates.expires_date),
      attachment_urls: [],
      bank: bankId ? banks.get(bankId)!.name : null,
      bank_id: bankId ?? null,
      payer_name: get('payer_name') ?? null,
      payer_email: payerEmail ?? null,
      personal_identifier: get('fixed_payer_personal_identifier') ?? null,
      bank_account_number: null,
      out_of_date_conciliation: false,
      transaction_id: get('transaction_id') ?? null,
      custom: get('custom') ?? null,
      responsible_user_email: get('responsible_user_email') ?? null,
      send_reminders: flags.send_reminders ?? false,
      send_email: flags.send_email ?? false,
      payment_method: null,
      funds_source: null,
      sandbox: {
        receiverId,
        createdAt: new Date(now()).toISOString(),
        params: formPairs(req.body),
        refunded: 0,
        refunds: [],
        confirmedAt: null,
        confirmTimeoutDate: dates.confirm_timeout_date === undefined ? null : isoSeconds(dates.confirm_timeout_date),
        reportAmount: null,
        reportReceiverId: null,
        publicBase: base,
      },
    };
    state.payments.set(paymentId, payment);
    res.json({
      payment_id: payment.payment_id,
      payment_url: payment.payment_url,
      simplified_transfer_url: payment.simplified_transfer_url,
      transfer_url: payment.transfer_url,
      webpay_url: payment.webpay_url,
      app_url: payment.app_url,
      ready_for_terminal: payment.ready_for_terminal,
    });
  });

  api.get('/payments/:id', (req, res) => {
    res.json(answerOf(ownPayment(req, res)));
  });

  api.delete('/payments/:id', (req, res) => {
    const payment = ownPayment(req, res);
    if (payment.status !== 'pending') invalid([{ field: 'status', message: 'Solo se pueden borrar pagos pendientes' }]);
    state.payments.delete(payment.payment_id);
    res.json({ message: 'Pago borrado' });
  });

  api.post('/payments/:id/confirm', (req, res) => {
    const payment = ownPayment(req, res);
    if (payment.status !== 'done') invalid([{ field: 'status', message: 'Solo se pueden confirmar pagos realizados' }]);
    payment.sandbox.confirmedAt ??= new Date(now()).toISOString();
    res.json({ message: 'Pago confirmado; será rendido al día siguiente' });
  });

  api.post('/payments/:id/refunds', (req, res) => {
    const payment = ownPayment(req, res);
    if (payment.status !== 'done') invalid([{ field: 'status', message: 'Solo se pueden reembolsar pagos realizados' }]);
    const { confirmedAt, confirmTimeoutDate } = payment.sandbox;
    const renditions = [confirmedAt ? Date.parse(confirmedAt) + 24 * HOUR : Infinity, confirmTimeoutDate ? Date.parse(confirmTimeoutDate) : Infinity];
    if (now() >= Math.min(...renditions)) invalid([{ field: 'status', message: 'El pago ya fue rendido; no se puede reembolsar' }]);
    const left = toUnits(payment.amount) - toUnits(payment.sandbox.refunded);
    const amountText = param(res, 'amount');
    let units = left;
    if (amountText !== undefined) {
      const parsed = amountUnits(amountText);
      if (parsed === null || parsed <= 0) invalid([{ field: 'amount', message: 'Monto no válido (hasta 4 lugares decimales)' }]);
      units = parsed;
    }
    if (left <= 0) invalid([{ field: 'amount', message: 'El pago ya fue reembolsado por completo' }]);
    if (units > left) invalid([{ field: 'amount', message: 'El monto excede lo que queda por reembolsar' }]);
    payment.sandbox.refunded = (toUnits(payment.sandbox.refunded) + units) / 10_000;
    payment.sandbox.refunds.push({ amount: units / 10_000, at: new Date(now()).toISOString() });
    if (units === left) payment.status_detail = 'reversed';
    res.json({ message: units === left ? 'Pago reembolsado por completo' : 'Reembolso parcial realizado' });
  });

  api.post('/receivers', (_req, res) => {
    const errors: FieldError[] = RECEIVER_REQUIRED_FIELDS.filter((name) => !param(res, name)?.trim()).map((field) => ({
      field,
      message: 'El campo es obligatorio',
    }));
    const countryCode = param(res, 'country_code');
    if (countryCode && !/^[A-Z]{2}$/.test(countryCode)) errors.push({ field: 'country_code', message: 'Código ISO 3166-1 de dos letras' });
    for (const name of ['notify_url', 'rendition_url']) {
      const value = param(res, name);
      if (value !== undefined && !isHttpUrl(value)) errors.push({ field: name, message: 'Debe ser una URL http(s)' });
    }
    if (errors.length) invalid(errors);
    let receiverId: string;
    do receiverId = String(randomInt(200_000, 999_999));
    while (state.receivers.has(receiverId));
    const secret = randomBytes(20).toString('hex');
    state.receivers.set(receiverId, { secret, notifyUrl: param(res, 'notify_url') ?? null });
    res.json({ receiver_id: receiverId, secret });
  });

  api.get('/merchants/:id/paymentMethods', (req, res) => {
    if (!state.receivers.has(String(req.params.id))) invalid([{ field: 'id', message: 'Cuenta de cobro desconocida' }]);
    const base = publicBase(req);
    res.json({
      paymentMethods: SANDBOX_KHIPU_PAYMENT_METHODS.map((method) => ({ ...method, logo_url: `${base}/assets/khipu-sandbox-logo.svg` })),
    });
  });

  api.use((_req: Request, res: Response) => {
    res.status(404).json({ status: 404, message: 'Recurso desconocido' });
  });

  api.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error instanceof KhipuRefusal) {
      res.status(error.status).json(error.body);
      return;
    }
    const status = (error as { status?: number }).status;
    if (status === 400 || status === 413 || status === 415) {
      res.status(400).json({ status: 400, message: 'Datos inválidos', errors: [{ field: 'body', message: 'Cuerpo no legible' }] });
      return;
    }
    next(error);
  });

  // ---------- the payer's pages ----------

  function page(res: Response, status: number, title: string, content: string, base: string): void {
    res
      .status(status)
      .set({
        'Content-Security-Policy': PAGE_CSP,
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
      })
      .type('html')
      .send(
        `<!doctype html><html lang="es"><head><meta charset="utf-8">` +
          `<meta name="viewport" content="width=device-width, initial-scale=1">` +
          `<title>${escapeHtml(title)} · Khipu (simulador)</title>` +
          `<link rel="stylesheet" href="${escapeHtml(base)}/assets/khipu-sandbox.css"></head><body><main>` +
          `<p class="badge">Simulador de Khipu: ningún pago es real.</p>${content}</main></body></html>`,
      );
  }

  function summary(payment: KhipuSandboxPayment): string {
    return (
      `<h1>${escapeHtml(payment.subject)}</h1><dl>` +
      `<dt>Monto</dt><dd>${escapeHtml(formatAmount(payment.amount, payment.currency))}</dd>` +
      `<dt>Moneda</dt><dd>${escapeHtml(payment.currency)}</dd>` +
      (payment.body ? `<dt>Detalle</dt><dd>${escapeHtml(payment.body)}</dd>` : '') +
      `</dl>`
    );
  }

  /** The payment a page is about, or a 404 page (null). */
  function pagePayment(req: Request, res: Response): KhipuSandboxPayment | null {
    const payment = state.payments.get(String(req.params.id));
    if (!payment) page(res, 404, 'Cobro no encontrado', '<h1>Cobro no encontrado</h1><p>Este cobro no existe o fue borrado.</p>', req.baseUrl);
    return payment ?? null;
  }

  const router = express.Router();
  router.use(faults.router);
  router.use(API_BASE, api);

  router.get('/assets/khipu-sandbox.css', (_req, res) => {
    res.type('css').set('Cache-Control', 'public, max-age=300').send(PAGE_CSS);
  });
  router.get('/assets/khipu-sandbox-logo.svg', (_req, res) => {
    res.type('image/svg+xml').set('Cache-Control', 'public, max-age=300').send(LOGO_SVG);
  });

  router.get('/payment/:id', (req, res) => {
    const payment = pagePayment(req, res);
    if (!payment) return;
    const self = `${req.baseUrl}/payment/${encodeURIComponent(payment.payment_id)}`;
    if (payment.status === 'done') {
      const back = payment.return_url ? `<p><a href="${escapeHtml(payment.return_url)}">Volver al comercio</a></p>` : '';
      page(res, 200, 'Pago realizado', `${summary(payment)}<p>Este pago ya fue realizado.</p>${back}`, req.baseUrl);
      return;
    }
    if (isExpired(payment)) {
      page(res, 410, 'Cobro expirado', `${summary(payment)}<p>Este cobro expiró y ya no se puede pagar.</p>`, req.baseUrl);
      return;
    }
    const options = SANDBOX_KHIPU_BANKS.map(
      (bank) =>
        `<option value="${escapeHtml(bank.bank_id)}"${bank.bank_id === payment.bank_id ? ' selected' : ''}>${escapeHtml(bank.name)}</option>`,
    ).join('');
    page(
      res,
      200,
      'Pagar',
      summary(payment) +
        `<form method="post" action="${escapeHtml(self)}/pay">` +
        `<label for="bank">Banco</label><select id="bank" name="bank_id">${options}</select>` +
        `<button type="submit" class="pay">Pagar</button></form>` +
        `<form method="post" action="${escapeHtml(self)}/cancel"><button type="submit" class="cancel">Cancelar</button></form>`,
      req.baseUrl,
    );
  });

  router.post('/payment/:id/pay', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const payment = pagePayment(req, res);
    if (!payment) return;
    const receipt = `${req.baseUrl}/payment/${encodeURIComponent(payment.payment_id)}/receipt`;
    if (payment.status === 'done') {
      // A second submit of the same form: already paid, nothing happens twice.
      res.redirect(303, payment.return_url ?? receipt);
      return;
    }
    if (isExpired(payment)) {
      page(res, 410, 'Cobro expirado', `${summary(payment)}<p>Este cobro expiró y ya no se puede pagar.</p>`, req.baseUrl);
      return;
    }
    const bankId = typeof req.body?.bank_id === 'string' && req.body.bank_id ? (req.body.bank_id as string) : undefined;
    if (bankId !== undefined && !banks.has(bankId)) {
      page(res, 400, 'Banco desconocido', '<h1>Banco desconocido</h1><p>Vuelve atrás y elige un banco de la lista.</p>', req.baseUrl);
      return;
    }
    markPaid(payment, bankId);
    notify(payment, 1);
    res.redirect(303, payment.return_url ?? receipt);
  });

  router.post('/payment/:id/cancel', (req, res) => {
    const payment = pagePayment(req, res);
    if (!payment) return;
    // As at Khipu, giving up on the page does not cancel the payment: it stays pending until it expires or is deleted.
    res.redirect(303, payment.cancel_url ?? `${req.baseUrl}/payment/${encodeURIComponent(payment.payment_id)}/cancelled`);
  });

  router.get('/payment/:id/receipt', (req, res) => {
    const payment = pagePayment(req, res);
    if (!payment) return;
    if (payment.status !== 'done') {
      page(res, 409, 'Pago pendiente', `${summary(payment)}<p>Este pago aún no se realiza.</p>`, req.baseUrl);
      return;
    }
    page(
      res,
      200,
      'Pago realizado',
      `${summary(payment)}<p>Pago realizado con ${escapeHtml(payment.bank ?? 'transferencia')} el ${escapeHtml(payment.conciliation_date ?? '')}.</p>`,
      req.baseUrl,
    );
  });

  router.get('/payment/:id/cancelled', (req, res) => {
    const payment = pagePayment(req, res);
    if (!payment) return;
    page(res, 200, 'Pago no realizado', `${summary(payment)}<p>Decidiste no pagar. Puedes cerrar esta página.</p>`, req.baseUrl);
  });

  // ---------- test knobs (sandbox only, no signature) ----------

  const control = express.Router();
  control.use(express.json({ limit: '16kb' }));

  function controlPayment(req: Request, res: Response): KhipuSandboxPayment | null {
    const payment = state.payments.get(String(req.params.id));
    if (!payment) res.status(404).json({ error: { code: 'NOT_FOUND', message: 'unknown payment' } });
    return payment ?? null;
  }

  function controlBody<S extends z.ZodType>(schema: S, req: Request, res: Response): z.output<S> | null {
    const parsed = schema.safeParse(req.body ?? {});
    if (parsed.success) return parsed.data;
    res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: z.prettifyError(parsed.error) } });
    return null;
  }

  /** Pays without the browser: {bankId?, deliveries = 1, delayMs?, notify = true, reportAmount?, reportReceiverId?}. */
  control.post('/payments/:id/pay', (req, res) => {
    const payment = controlPayment(req, res);
    if (!payment) return;
    const body = controlBody(ControlPaySchema, req, res);
    if (!body) return;
    if (payment.status !== 'pending') {
      res.status(409).json({ error: { code: 'NOT_PENDING', message: `payment is ${payment.status}` } });
      return;
    }
    if (isExpired(payment)) {
      res.status(409).json({ error: { code: 'EXPIRED', message: 'payment expired' } });
      return;
    }
    if (body.bankId !== undefined && !banks.has(body.bankId)) {
      res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: 'unknown bankId' } });
      return;
    }
    let reportAmount: number | null = null;
    if (body.reportAmount !== undefined) {
      const units = amountUnits(String(body.reportAmount));
      if (units === null) {
        res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: 'reportAmount: a decimal with up to 4 places' } });
        return;
      }
      reportAmount = units / 10_000;
    }
    markPaid(payment, body.bankId);
    payment.sandbox.reportAmount = reportAmount;
    payment.sandbox.reportReceiverId = body.reportReceiverId ?? null;
    const notified = body.notify ? notify(payment, body.deliveries, body.delayMs) : false;
    res.json({ payment: answerOf(payment), notified });
  });

  /** Delivers the payment's notification again, whatever its status: {deliveries = 1, delayMs?}. */
  control.post('/payments/:id/notify', (req, res) => {
    const payment = controlPayment(req, res);
    if (!payment) return;
    const body = controlBody(ControlNotifySchema, req, res);
    if (!body) return;
    res.json({ notified: notify(payment, body.deliveries, body.delayMs) });
  });

  /** The next API call (matching path below /api/2.0 and method, when given) answers `status`: {status, path?, method?, times = 1}. */
  control.post('/fail-next', (req, res) => {
    const body = controlBody(ControlFailSchema, req, res);
    if (!body) return;
    const path = body.path === undefined ? null : body.path.startsWith(API_BASE) ? body.path.slice(API_BASE.length) : body.path;
    state.failNext.push({ status: body.status, path, method: body.method ?? null, times: body.times });
    res.json({ failNext: state.failNext });
  });

  control.post('/reset', (_req, res) => {
    state.reset();
    res.json({ reset: true });
  });

  control.get('/state', (_req, res) => {
    res.json({
      payments: [...state.payments.values()],
      notifications: state.notifications,
      requests: state.requests,
      failNext: state.failNext,
    });
  });

  router.use('/_control', control);

  return {
    router,
    state,
    async close() {
      faults.close();
      lifecycle.abort();
      await Promise.allSettled([...deliveries]);
    },
  };
}

/** Runs the simulator on its own HTTP server (port 0 = any free port); the API is at `${url}/api/2.0`. */
export async function startKhipuSandbox(
  options: KhipuSandboxOptions & { port?: number; host?: string } = {},
): Promise<{ url: string; state: KhipuSandboxState; close(): Promise<void> }> {
  return serveStandalone(createKhipuSandbox(options), { status: 404, message: 'Recurso desconocido' }, options);
}
