/**
 * A Tupay (D24) reconciliation API simulator over real HTTP, following tupay-reconciliation-api.txt and NOTES.md:
 * login answering a BEARER_TOKEN cookie, sessions that expire 15 minutes after their last use, logout, an IP
 * allow-list, deposits and cash-outs filtered on the creation date in 50-row pages `{page, rows, maxRows, data}`.
 * Run alone with main.ts (the API is at `${url}/v1/...`).
 *
 * Statuses change over time: `state.addDeposit`/`state.addCashout` may give a record a hidden timeline of
 * `{atMs, status}` steps (simulator-clock times). Every list request (and every `setStatus`) first settles: each
 * step whose time has come is applied once, setting `status` and stamping `lastChangeDate` with the step's own time.
 * Timelines live in a map beside the records, never in them, so they never reach an answer.
 *
 * - `customerPays` simulates a customer paying one of our orders (the BFF's "pay later" orders in sandbox mode),
 *   chosen by a hash of the reference (sha256, first 32 bits): 70 % `on_time` PENDING → COMPLETED after 2 minutes;
 *   20 % `late` PENDING → EXPIRED after 2 minutes → COMPLETED after 10 (the EXPIRED → COMPLETED case reconciliation
 *   must surface); 10 % `short` COMPLETED after 2 minutes but 100.00 pesos below the price (never below 1.00).
 *   Calling it again for a reference already paid returns the existing deposit.
 * - `seedSandboxActivity` adds other sales channels' records (externalId `TIENDA-<seed>-…`, never one of our `KC-…`
 *   references), the same for the same seed: 24 deposits over the 90 days before now (3 of them PENDING → EXPIRED
 *   after an hour → COMPLETED hours later) and 8 cash-outs (refunds; one COMPLETED turning REJECTED 3 days after its
 *   creation, which falls in the hours after seeding; one PENDING turning DELIVERED a day after its creation).
 *
 * Interpretations, where the document is silent (error codes marked "chosen" are the sandbox's own):
 * - The token is accepted as `Cookie: BEARER_TOKEN=…` or `Authorization: BEARER_TOKEN=…` (also `Bearer …` or bare).
 * - 401 `{code: 401, description}` (code chosen) for a missing, unknown, logged-out or expired token.
 * - 412 code 11 wrong credentials (also missing ones), 17 `from` after `to`, 19 unknown country,
 *   18 (chosen) `to` more than 60 days after `from`, 16 (chosen) a missing or malformed `from`, `to` or `page`.
 * - 403 code 83 for an IP outside `allowedIps` (every endpoint, login included).
 * - `from` and `to` are both inclusive; records are ordered by creation date, then id.
 * - The client document filter is accepted as `clienteDocument` (the document) or `clientDocument`.
 * - Dates are "YYYY-MM-DD HH:mm:ss" in UTC, as D24 shows them; amounts are JSON numbers in pesos.
 * - Added records are Mexican (MX, MXN, method XA); a deposit's fee is 3 % of its amount, a cash-out's 0 unless given.
 */
import { createHash, randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { serveStandalone } from '../standalone.js';
import { createFaults, type FaultController, type FaultRuleInput } from '../faults.js';

export const SANDBOX_TUPAY_ACCESS_KEY = 'sandbox@kasu.example';
export const SANDBOX_TUPAY_SECRET_KEY = 'sandbox-tupay-secret';
export const TUPAY_SANDBOX_PAGE_SIZE = 50;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const SESSION_IDLE_MS = 15 * MINUTE_MS;
const MAX_RANGE_SECONDS = 60 * 86_400;
/** Countries D24 operates in (ISO-3166 alpha-2). */
const COUNTRIES = new Set(['AR', 'BO', 'BR', 'CL', 'CO', 'CR', 'EC', 'GT', 'MX', 'PA', 'PE', 'PY', 'SV', 'UY']);

export type TupaySandboxDeposit = {
  idDeposit: number;
  externalId: string;
  /** "YYYY-MM-DD HH:mm:ss", UTC. */
  creationDate: string;
  country: string;
  paymentMethodCode: string;
  requestedPaymentMethod: string;
  clientDocument: string;
  amount: number;
  currency: string;
  localAmount: number;
  localCurrency: string;
  fee: number;
  lastChangeDate: string;
  status: string;
  [extra: string]: unknown;
};

export type TupaySandboxCashout = {
  idCashout: number;
  externalId: string;
  creationDate: string;
  country: string;
  currency: string;
  amount: number;
  fee: number;
  lastChangeDate: string;
  status: string;
  clientDocument: string;
  reason: string | null;
  [extra: string]: unknown;
};

export type TupaySandboxRequest = {
  method: string;
  path: string;
  query: Record<string, string>;
  /** How the token came, if it did. */
  tokenVia: 'cookie' | 'authorization' | null;
  status: number;
};

/** A hidden status change: at `atMs` (simulator clock, ms since the epoch) the record takes `status`. */
export type TupayStatusStep = { atMs: number; status: string };

export type TupaySandboxDepositInput = {
  /** The merchant's reference. */
  externalId: string;
  /** Whole centavos, written in pesos (123456 → 1234.56). */
  amountCentavos: number;
  clientDocument: string;
  /** The status until the first timeline step. */
  status: string;
  /** Default: the simulator's now. */
  createdAtMs?: number;
  /** Default XA. */
  paymentMethodCode?: string;
  timeline?: TupayStatusStep[];
};

export type TupaySandboxCashoutInput = {
  externalId: string;
  /** Whole centavos, written in pesos. */
  amountCentavos: number;
  clientDocument: string;
  status: string;
  reason?: string | null;
  /** Default 0. */
  feeCentavos?: number;
  createdAtMs?: number;
  timeline?: TupayStatusStep[];
};

export type TupaySandboxState = {
  deposits: TupaySandboxDeposit[];
  cashouts: TupaySandboxCashout[];
  /** token → last use (ms). */
  sessions: Map<string, { lastUsedAt: number }>;
  requests: TupaySandboxRequest[];
  logins: number;
  /** Changes a deposit's status (or, failing that, a cash-out's by id) and stamps lastChangeDate; false if unknown. */
  setStatus(id: number, status: string): boolean;
  /** Adds a deposit (id = largest + 1, or 300000001), MX/MXN/XA, fee 3 %; its timeline stays hidden. */
  addDeposit(input: TupaySandboxDepositInput): TupaySandboxDeposit;
  /** Adds a cash-out (id = largest + 1, or 400000001), MX/MXN; its timeline stays hidden. */
  addCashout(input: TupaySandboxCashoutInput): TupaySandboxCashout;
  /** Applies every timeline step due by `nowMs` (default: the simulator's now); list requests do it first. */
  settle(nowMs?: number): void;
  /** Injected failures (faults.ts); paths are below the mount, e.g. /v1/deposits. */
  faults: FaultController;
};

export type TupaySandboxOptions = {
  accessKey?: string;
  secretKey?: string;
  /** Milliseconds since the epoch; decides session expiry and lastChangeDate. */
  now?: () => number;
  /** When set, only these client IPs (as the socket reports them, IPv4-mapped prefix removed) may call. */
  allowedIps?: string[];
  deposits?: TupaySandboxDeposit[];
  cashouts?: TupaySandboxCashout[];
  /** Adds other sales channels' activity (seedSandboxActivity) at creation. */
  seedActivity?: { seed: number };
  /** Initial fault rules (faults.ts); change them with state.faults or <mount>/_faults. */
  faults?: FaultRuleInput[];
};

/** "YYYY-MM-DD HH:mm:ss" in UTC. */
export function tupayDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function parseTupayDate(value: string): number {
  return Date.parse(`${value.replace(' ', 'T')}Z`);
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const DEPOSIT_STATUSES = ['COMPLETED', 'COMPLETED', 'COMPLETED', 'PENDING', 'EXPIRED', 'CANCELLED', 'FOR_REVIEW'];

/**
 * `count` deposits, the same for the same seed: one every `stepMs` from `startMs`, Mexican pesos, amounts
 * between 100.00 and 5,000.00 with centavos.
 */
export function generateDeposits(
  count: number,
  seed: number,
  options: { startMs?: number; stepMs?: number; firstId?: number } = {},
): TupaySandboxDeposit[] {
  const random = prng(seed);
  const start = options.startMs ?? Date.UTC(2026, 0, 1);
  const step = options.stepMs ?? 3_600_000;
  const firstId = options.firstId ?? 300_000_001;
  return Array.from({ length: count }, (_, index) => {
    const amount = Math.round((100 + random() * 4_900) * 100) / 100;
    const created = tupayDate(start + index * step);
    return {
      idDeposit: firstId + index,
      externalId: `KSU-${String(seed).padStart(4, '0')}-${String(index + 1).padStart(6, '0')}`,
      creationDate: created,
      country: 'MX',
      paymentMethodCode: random() < 0.5 ? 'XA' : 'XAQR',
      requestedPaymentMethod: 'XA',
      clientDocument: `CURP${String(Math.floor(random() * 1e8)).padStart(8, '0')}`,
      amount,
      currency: 'MXN',
      localAmount: amount,
      localCurrency: 'MXN',
      fee: Math.round(amount * 3) / 100,
      lastChangeDate: created,
      status: DEPOSIT_STATUSES[Math.floor(random() * DEPOSIT_STATUSES.length)] ?? 'COMPLETED',
    };
  });
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly description: string,
  ) {
    super(description);
  }
}

export function createTupaySandbox(options: TupaySandboxOptions = {}): {
  router: Router;
  state: TupaySandboxState;
  close(): Promise<void>;
} {
  const now = options.now ?? Date.now;
  const accessKey = options.accessKey ?? SANDBOX_TUPAY_ACCESS_KEY;
  const secretKey = options.secretKey ?? SANDBOX_TUPAY_SECRET_KEY;
  const allowed = options.allowedIps ? new Set(options.allowedIps) : null;
  const faults = createFaults({
    rules: options.faults ?? [],
    errorBody: (status) => ({ code: status, description: status === 503 ? 'Service unavailable' : 'Internal server error' }),
  });

  /** Records with steps still to come → those steps, ascending. Kept out of the records so answers never show them. */
  const timelines = new Map<TupaySandboxDeposit | TupaySandboxCashout, TupayStatusStep[]>();
  function follow(record: TupaySandboxDeposit | TupaySandboxCashout, timeline: TupayStatusStep[] | undefined): void {
    if (!timeline?.length) return;
    if (!timeline.every((step) => Number.isFinite(step.atMs))) throw new RangeError('Timeline steps need a finite atMs');
    timelines.set(record, [...timeline].sort((a, b) => a.atMs - b.atMs));
  }

  const state: TupaySandboxState = {
    deposits: [...(options.deposits ?? [])],
    cashouts: [...(options.cashouts ?? [])],
    sessions: new Map(),
    requests: [],
    logins: 0,
    faults: faults.controller,
    setStatus(id, status) {
      state.settle();
      const record = state.deposits.find((deposit) => deposit.idDeposit === id) ?? state.cashouts.find((cashout) => cashout.idCashout === id);
      if (!record) return false;
      record.status = status;
      record.lastChangeDate = tupayDate(now());
      return true;
    },
    addDeposit(input) {
      const created = tupayDate(input.createdAtMs ?? now());
      const amount = pesos(input.amountCentavos);
      const deposit: TupaySandboxDeposit = {
        idDeposit: nextId(state.deposits, (record) => record.idDeposit, 300_000_001),
        externalId: input.externalId,
        creationDate: created,
        country: 'MX',
        paymentMethodCode: input.paymentMethodCode ?? 'XA',
        requestedPaymentMethod: 'XA',
        clientDocument: input.clientDocument,
        amount,
        currency: 'MXN',
        localAmount: amount,
        localCurrency: 'MXN',
        fee: Math.round(input.amountCentavos * 0.03) / 100,
        lastChangeDate: created,
        status: input.status,
      };
      follow(deposit, input.timeline);
      state.deposits.push(deposit);
      return deposit;
    },
    addCashout(input) {
      const created = tupayDate(input.createdAtMs ?? now());
      const cashout: TupaySandboxCashout = {
        idCashout: nextId(state.cashouts, (record) => record.idCashout, 400_000_001),
        externalId: input.externalId,
        creationDate: created,
        country: 'MX',
        currency: 'MXN',
        amount: pesos(input.amountCentavos),
        fee: pesos(input.feeCentavos ?? 0),
        lastChangeDate: created,
        status: input.status,
        clientDocument: input.clientDocument,
        reason: input.reason ?? null,
      };
      follow(cashout, input.timeline);
      state.cashouts.push(cashout);
      return cashout;
    },
    settle(nowMs = now()) {
      for (const [record, steps] of timelines) {
        const pending = steps.findIndex((step) => step.atMs > nowMs);
        for (const step of steps.splice(0, pending === -1 ? steps.length : pending)) {
          record.status = step.status;
          record.lastChangeDate = tupayDate(step.atMs);
        }
        if (steps.length === 0) timelines.delete(record);
      }
    },
  };
  if (options.seedActivity) seedSandboxActivity(state, { nowMs: now(), seed: options.seedActivity.seed });

  const router = express.Router();
  router.use(faults.router);

  // Record every call, then check the caller's IP.
  router.use((req: Request, res: Response, next: NextFunction) => {
    const entry: TupaySandboxRequest = {
      method: req.method,
      path: req.path,
      query: Object.fromEntries(Object.entries(req.query).map(([key, value]) => [key, String(value)])),
      tokenVia: req.headers.cookie?.includes('BEARER_TOKEN=') ? 'cookie' : req.headers.authorization ? 'authorization' : null,
      status: 0,
    };
    state.requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (allowed && !allowed.has(ip)) {
      res.status(403).json({ code: 83, description: 'IP not allowed' });
      return;
    }
    next();
  });

  router.post('/v1/auth/login', express.json({ limit: '4kb' }), (req: Request, res: Response) => {
    const body = (req.body ?? {}) as { accessKey?: unknown; secretKey?: unknown };
    if (body.accessKey !== accessKey || body.secretKey !== secretKey) {
      res.status(412).json({ code: 11, description: 'Invalid credentials' });
      return;
    }
    const token = randomBytes(24).toString('base64url');
    state.sessions.set(token, { lastUsedAt: now() });
    state.logins += 1;
    res.cookie('BEARER_TOKEN', token, { httpOnly: true, path: '/' });
    res.json({ idUser: 1001, username: accessKey, idMerchant: 2001 });
  });

  /** The caller's live session token (its last use moved to now), or null after answering 401. */
  function session(req: Request, res: Response): string | null {
    const token = presentedToken(req);
    const session = token ? state.sessions.get(token) : undefined;
    if (!token || !session || now() - session.lastUsedAt > SESSION_IDLE_MS) {
      if (token) state.sessions.delete(token);
      res.status(401).json({ code: 401, description: 'Invalid or expired token' });
      return null;
    }
    session.lastUsedAt = now();
    return token;
  }

  router.delete('/v1/auth/session/destroy', (req: Request, res: Response) => {
    const token = session(req, res);
    if (token === null) return;
    state.sessions.delete(token);
    res.json({});
  });

  function list<R extends { creationDate: string; country: string; status: string; clientDocument: string }>(
    records: () => R[],
    id: (record: R) => number,
    paymentMethod: (record: R) => string | null,
  ) {
    return (req: Request, res: Response) => {
      if (session(req, res) === null) return;
      state.settle();
      try {
        const query = req.query as Record<string, unknown>;
        const from = integer(query.from, 'from');
        const to = integer(query.to, 'to');
        const page = query.page === undefined ? 0 : integer(query.page, 'page');
        if (from > to) throw new Refusal(412, 17, '"from" cannot be greater than "to"');
        if (to - from > MAX_RANGE_SECONDS) throw new Refusal(412, 18, 'The maximum range between "from" and "to" is 60 days');
        const country = text(query.country);
        if (country !== undefined && !COUNTRIES.has(country)) throw new Refusal(412, 19, 'Invalid country');
        const method = text(query.paymentMethod);
        const document = text(query.clienteDocument) ?? text(query.clientDocument);
        const status = text(query.status);
        const matching = records()
          .filter((record) => {
            const created = Math.floor(parseTupayDate(record.creationDate) / 1000);
            return (
              created >= from &&
              created <= to &&
              (country === undefined || record.country === country) &&
              (method === undefined || paymentMethod(record) === method) &&
              (document === undefined || record.clientDocument === document) &&
              (status === undefined || record.status === status)
            );
          })
          .sort((a, b) => a.creationDate.localeCompare(b.creationDate) || id(a) - id(b));
        const data = matching.slice(page * TUPAY_SANDBOX_PAGE_SIZE, (page + 1) * TUPAY_SANDBOX_PAGE_SIZE);
        res.json({ page, rows: data.length, maxRows: TUPAY_SANDBOX_PAGE_SIZE, data });
      } catch (error) {
        if (!(error instanceof Refusal)) throw error;
        res.status(error.status).json({ code: error.code, description: error.description });
      }
    };
  }

  router.get(
    '/v1/deposits',
    list(() => state.deposits, (deposit) => deposit.idDeposit, (deposit) => deposit.paymentMethodCode),
  );
  // The document also writes /v1/cashout; both are served.
  const cashouts = list(() => state.cashouts, (cashout) => cashout.idCashout, (cashout) => (cashout.paymentMethodCode as string | undefined) ?? null);
  router.get('/v1/cashouts', cashouts);
  router.get('/v1/cashout', cashouts);

  return { router, state, close: () => Promise.resolve(faults.close()) };
}

/** Whole centavos → pesos (123456 → 1234.56). */
function pesos(centavos: number): number {
  if (!Number.isSafeInteger(centavos) || centavos < 0) throw new RangeError(`Not a whole number of centavos: ${centavos}`);
  return centavos / 100;
}

/** The largest id + 1, or `first` when there are no records. */
function nextId<R>(records: R[], id: (record: R) => number, first: number): number {
  let largest = -Infinity;
  for (const record of records) largest = Math.max(largest, id(record));
  return records.length === 0 ? first : largest + 1;
}

export type CustomerPaymentScenario = 'on_time' | 'late' | 'short';

/** How the sandbox customer pays `reference`, from its sha256: 70 % on time, 20 % late, 10 % short (see the header). */
export function customerPaymentScenario(reference: string): CustomerPaymentScenario {
  const bucket = createHash('sha256').update(reference).digest().readUInt32BE(0) % 100;
  return bucket < 70 ? 'on_time' : bucket < 90 ? 'late' : 'short';
}

/**
 * The sandbox customer pays our order `reference` through Tupay at `nowMs`: a PENDING deposit whose timeline follows
 * `customerPaymentScenario(reference)`. A reference already paid gives back its deposit.
 */
export function customerPays(
  state: TupaySandboxState,
  input: { reference: string; amountCentavos: number; clientDocument: string; nowMs: number },
): TupaySandboxDeposit {
  const existing = state.deposits.find((deposit) => deposit.externalId === input.reference);
  if (existing) return existing;
  const scenario = customerPaymentScenario(input.reference);
  const at = (minutes: number) => input.nowMs + minutes * MINUTE_MS;
  return state.addDeposit({
    externalId: input.reference,
    amountCentavos:
      scenario === 'short' ? Math.min(input.amountCentavos, Math.max(100, input.amountCentavos - 10_000)) : input.amountCentavos,
    clientDocument: input.clientDocument,
    status: 'PENDING',
    createdAtMs: input.nowMs,
    timeline:
      scenario === 'late'
        ? [
            { atMs: at(2), status: 'EXPIRED' },
            { atMs: at(10), status: 'COMPLETED' },
          ]
        : [{ atMs: at(2), status: 'COMPLETED' }],
  });
}

const REFUND_REASONS = ['Reembolso', 'Reembolso', 'Devolución de compra', 'Cancelación de pedido', 'Retiro de saldo'];

/**
 * Other sales channels' records (externalId `TIENDA-<seed>-…`), the same for the same seed and nowMs (see the header):
 * 24 deposits and 8 cash-outs created in the 90 days before `nowMs`. Returns what it added.
 */
export function seedSandboxActivity(
  state: TupaySandboxState,
  options: { nowMs: number; seed: number },
): { deposits: TupaySandboxDeposit[]; cashouts: TupaySandboxCashout[] } {
  const random = prng(options.seed);
  const { nowMs, seed } = options;
  /** A whole second between 1 minute and `spanMs` + 1 minute before now. */
  const before = (spanMs: number) => nowMs - MINUTE_MS - Math.floor((random() * spanMs) / 1000) * 1000;
  const centavos = (min: number, max: number) => Math.round((min + random() * (max - min)) * 100);
  const curp = () => `CURP${String(Math.floor(random() * 1e8)).padStart(8, '0')}`;
  const pick = (values: string[]) => values[Math.floor(random() * values.length)] ?? values[0] ?? '';

  const deposits = Array.from({ length: 24 }, (_, index) => {
    const createdAtMs = before(89 * DAY_MS);
    const common = {
      externalId: `TIENDA-${seed}-${String(index + 1).padStart(3, '0')}`,
      amountCentavos: centavos(100, 5_000),
      clientDocument: curp(),
      paymentMethodCode: random() < 0.5 ? 'XA' : 'XAQR',
      createdAtMs,
    };
    if (index % 8 !== 5) return state.addDeposit({ ...common, status: pick(DEPOSIT_STATUSES) });
    // Paid after the order expired: PENDING → EXPIRED after an hour → COMPLETED 3 to 30 hours after creation.
    const completedAtMs = createdAtMs + (3 + Math.floor(random() * 28)) * HOUR_MS;
    return state.addDeposit({
      ...common,
      status: 'PENDING',
      timeline: [
        { atMs: createdAtMs + HOUR_MS, status: 'EXPIRED' },
        { atMs: completedAtMs, status: 'COMPLETED' },
      ],
    });
  });

  const cashouts = Array.from({ length: 8 }, (_, index) => {
    const common = {
      externalId: `TIENDA-${seed}-R${String(index + 1).padStart(3, '0')}`,
      amountCentavos: centavos(50, 2_000),
      clientDocument: curp(),
      reason: pick(REFUND_REASONS),
    };
    if (index === 0) {
      // COMPLETED, then REJECTED 3 days after creation: between 30 minutes and 6 hours after seeding.
      const createdAtMs = nowMs - 3 * DAY_MS + 30 * MINUTE_MS + Math.floor((random() * 5.5 * HOUR_MS) / 1000) * 1000;
      return state.addCashout({ ...common, createdAtMs, status: 'COMPLETED', timeline: [{ atMs: createdAtMs + 3 * DAY_MS, status: 'REJECTED' }] });
    }
    if (index === 1) {
      // PENDING, DELIVERED a day after creation (within the day after seeding).
      const createdAtMs = before(DAY_MS - MINUTE_MS);
      return state.addCashout({ ...common, createdAtMs, status: 'PENDING', timeline: [{ atMs: createdAtMs + DAY_MS, status: 'DELIVERED' }] });
    }
    return state.addCashout({ ...common, createdAtMs: before(89 * DAY_MS), status: random() < 0.8 ? 'COMPLETED' : 'CANCELLED' });
  });

  return { deposits, cashouts };
}

function presentedToken(req: Request): string | null {
  const cookie = /(?:^|;\s*)BEARER_TOKEN=([^;\s]+)/.exec(req.headers.cookie ?? '');
  if (cookie?.[1]) return cookie[1];
  const authorization = req.headers.authorization?.trim();
  if (!authorization) return null;
  return /^(?:BEARER_TOKEN=|Bearer\s+)?(\S+)$/i.exec(authorization)?.[1] ?? null;
}

function integer(value: unknown, name: string): number {
  if (typeof value !== 'string' || !/^\d{1,12}$/.test(value)) throw new Refusal(412, 16, `Invalid parameter: ${name}`);
  return Number(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Runs the simulator on its own HTTP server (port 0 = any free port); the API is at `${url}/v1`. */
export async function startTupaySandbox(
  options: TupaySandboxOptions & { port?: number; host?: string } = {},
): Promise<{ url: string; state: TupaySandboxState; close(): Promise<void> }> {
  return serveStandalone(createTupaySandbox(options), { code: 404, description: 'Resource not found' }, options);
}
