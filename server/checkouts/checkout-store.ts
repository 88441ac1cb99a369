/**
 * SQL for checkouts, consent evidence, orders, payments and idempotency keys. Rows in, plain objects out;
 * no business rules here.
 */
import type { Address, Consents, Contact, PaymentMethod, PaymentStatus, Product, Quote, CheckoutStatus } from '../../shared/contract.js';
import type { Queryable } from '../db/database.js';

export type CheckoutRecord = {
  id: string;
  tokenHash: string;
  curp: string;
  birthDate: string;
  sex: 'H' | 'M' | 'X';
  status: CheckoutStatus;
  product: Product | null;
  quote: Quote | null;
  planCount: number | null;
  contact: Contact | null;
  address: Address | null;
  consents: Consents;
  paymentMethod: PaymentMethod | null;
  submitClaimedAt: Date | null;
  createdAt: Date;
  expiresAt: Date;
};

export type OrderStatus = 'registering' | 'registered' | 'rejected' | 'unknown' | 'needs_review';

export type OrderRecord = {
  id: string;
  reference: string;
  checkoutId: string;
  curp: string;
  product: Product;
  kasuProduct: string | null;
  paymentMethod: PaymentMethod;
  currency: 'MXN';
  price: number;
  instalments: number;
  instalmentAmount: number;
  status: OrderStatus;
  policy: string | null;
  kasuStatus: string | null;
  customerName: string | null;
  paymentLink: string | null;
  registrationAttempts: number;
  lastError: string | null;
  registeredAt: Date | null;
  createdAt: Date;
};

type CheckoutRow = {
  id: string; token_hash: string; curp: string; birth_date: string; sex: string; status: string;
  product: string | null; quote: Quote | null; plan_count: number | null; contact: Contact | null;
  address: Address | null; consents: Consents; payment_method: string | null; submit_claimed_at: Date | null;
  created_at: Date; expires_at: Date;
};

function toCheckout(row: CheckoutRow): CheckoutRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    curp: row.curp,
    birthDate: row.birth_date,
    sex: row.sex as CheckoutRecord['sex'],
    status: row.status as CheckoutStatus,
    product: row.product as Product | null,
    quote: row.quote,
    planCount: row.plan_count,
    contact: row.contact,
    address: row.address,
    consents: row.consents,
    paymentMethod: row.payment_method as PaymentMethod | null,
    submitClaimedAt: row.submit_claimed_at,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

type OrderRow = {
  id: string; reference: string; checkout_id: string; curp: string; product: string; kasu_product: string | null;
  payment_method: string; currency: string; price_centavos: number; instalments: number; instalment_centavos: number;
  status: string; policy: string | null; kasu_status: string | null; customer_name: string | null;
  payment_link: string | null; registration_attempts: number; last_error: string | null;
  registered_at: Date | null; created_at: Date;
};

function toOrder(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    reference: row.reference,
    checkoutId: row.checkout_id,
    curp: row.curp,
    product: row.product as Product,
    kasuProduct: row.kasu_product,
    paymentMethod: row.payment_method as PaymentMethod,
    currency: 'MXN',
    price: Number(row.price_centavos),
    instalments: row.instalments,
    instalmentAmount: Number(row.instalment_centavos),
    status: row.status as OrderStatus,
    policy: row.policy,
    kasuStatus: row.kasu_status,
    customerName: row.customer_name,
    paymentLink: row.payment_link,
    registrationAttempts: row.registration_attempts,
    lastError: row.last_error,
    registeredAt: row.registered_at,
    createdAt: row.created_at,
  };
}

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

export type NewCheckout = Pick<CheckoutRecord, 'id' | 'tokenHash' | 'curp' | 'birthDate' | 'sex' | 'expiresAt'>;

/** Inserts several checkouts in one statement; the records come back in the order given. */
export async function insertCheckouts(db: Queryable, checkouts: NewCheckout[]): Promise<CheckoutRecord[]> {
  const params: unknown[] = [];
  const tuples = checkouts.map((c) => {
    params.push(c.id, c.tokenHash, c.curp, c.birthDate, c.sex, c.expiresAt);
    const n = params.length;
    return `($${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::timestamptz)`;
  });
  const { rows } = await db.query<CheckoutRow>(
    `INSERT INTO checkouts (id, token_hash, curp, birth_date, sex, expires_at) VALUES ${tuples.join(', ')} RETURNING *`,
    params,
  );
  const byId = new Map(rows.map((row) => [row.id, toCheckout(row)]));
  return checkouts.map((c) => byId.get(c.id)!);
}

export async function findCheckout(db: Queryable, id: string): Promise<CheckoutRecord | null> {
  const { rows } = await db.query<CheckoutRow>('SELECT * FROM checkouts WHERE id = $1', [id]);
  return rows[0] ? toCheckout(rows[0]) : null;
}

export type CheckoutChanges = Partial<
  Pick<CheckoutRecord, 'product' | 'quote' | 'planCount' | 'contact' | 'address' | 'consents' | 'expiresAt'>
>;

/** Writes the given fields of an open checkout; returns null when it is no longer open. */
export async function updateOpenCheckout(db: Queryable, id: string, changes: CheckoutChanges): Promise<CheckoutRecord | null> {
  const columns: Record<keyof CheckoutChanges, string> = {
    product: 'product', quote: 'quote', planCount: 'plan_count', contact: 'contact', address: 'address',
    consents: 'consents', expiresAt: 'expires_at',
  };
  const sets: string[] = [];
  const params: unknown[] = [id];
  for (const [key, value] of Object.entries(changes) as [keyof CheckoutChanges, unknown][]) {
    if (value === undefined) continue;
    const isJson = key === 'quote' || key === 'contact' || key === 'address' || key === 'consents';
    params.push(isJson ? json(value) : value);
    sets.push(`${columns[key]} = $${params.length}`);
  }
  const { rows } = await db.query<CheckoutRow>(
    `UPDATE checkouts SET ${[...sets, 'updated_at = now()'].join(', ')}
     WHERE id = $1 AND status = 'open' RETURNING *`,
    params,
  );
  return rows[0] ? toCheckout(rows[0]) : null;
}

/** Every column but the quote, which the caller holds already (it is the biggest: reading it back costs the most). */
const SAVED_QUOTE_COLUMNS = Object.keys({
  id: 1, token_hash: 1, curp: 1, birth_date: 1, sex: 1, status: 1, product: 1, plan_count: 1, contact: 1, address: 1,
  consents: 1, payment_method: 1, submit_claimed_at: 1, created_at: 1, expires_at: 1,
} satisfies Record<Exclude<keyof CheckoutRow, 'quote'>, 1>).map((column) => `c.${column}`).join(', ');

/**
 * Saves quotes on open checkouts, in one statement per group of distinct checkouts: product and quote are replaced,
 * and the chosen number of instalments is kept only when the product is the same and the new quote still offers it.
 * The answer has one entry per quote given, in order: the checkout as saved, or null when it is no longer open.
 * Quotes of one checkout given together are saved one after the other, in the order given (the last one stays).
 */
export async function saveQuotes(db: Queryable, quotes: Array<{ id: string; quote: Quote }>): Promise<Array<CheckoutRecord | null>> {
  const out: Array<CheckoutRecord | null> = new Array(quotes.length).fill(null);
  let pending = quotes.map((entry, index) => ({ ...entry, index }));
  while (pending.length) {
    const seen = new Set<string>();
    const group = pending.filter((entry) => !seen.has(entry.id) && seen.add(entry.id));
    pending = pending.filter((entry) => !group.includes(entry));
    const params: unknown[] = [];
    const tuples = group.map((entry) => {
      params.push(entry.id, entry.quote.product, json(entry.quote), JSON.stringify(entry.quote.plans.map((plan) => plan.count)));
      const n = params.length;
      return `($${n - 3}::text, $${n - 2}::text, $${n - 1}::jsonb, $${n}::jsonb)`;
    });
    const { rows } = await db.query<Omit<CheckoutRow, 'quote'>>(
      `UPDATE checkouts c SET product = v.product, quote = v.quote,
         plan_count = CASE WHEN c.product = v.product AND v.counts @> to_jsonb(c.plan_count) THEN c.plan_count END,
         updated_at = now()
       FROM (VALUES ${tuples.join(', ')}) AS v (id, product, quote, counts)
       WHERE c.id = v.id AND c.status = 'open' RETURNING ${SAVED_QUOTE_COLUMNS}`,
      params,
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const entry of group) {
      const row = byId.get(entry.id);
      out[entry.index] = row ? toCheckout({ ...row, quote: entry.quote }) : null;
    }
  }
  return out;
}

/**
 * Claims an open checkout for registration: the single step that makes registration happen once however many
 * submits race. A claim older than `staleSeconds` (its process died mid-call) may be taken over.
 */
export async function claimCheckoutForSubmit(
  db: Queryable,
  id: string,
  paymentMethod: PaymentMethod,
  staleSeconds: number,
): Promise<CheckoutRecord | null> {
  const { rows } = await db.query<CheckoutRow>(
    `UPDATE checkouts SET status = 'registering', payment_method = $2, submit_claimed_at = now(), updated_at = now()
     WHERE id = $1 AND (status = 'open'
       OR (status = 'registering' AND submit_claimed_at < now() - make_interval(secs => $3)))
     RETURNING *`,
    [id, paymentMethod, staleSeconds],
  );
  return rows[0] ? toCheckout(rows[0]) : null;
}

export async function setCheckoutStatus(db: Queryable, id: string, status: CheckoutStatus, expiresAt?: Date): Promise<void> {
  await db.query(
    `UPDATE checkouts SET status = $2, submit_claimed_at = NULL, updated_at = now(),
       expires_at = COALESCE($3, expires_at) WHERE id = $1`,
    [id, status, expiresAt ?? null],
  );
}

export async function insertConsentEvents(
  db: Queryable,
  events: { checkoutId: string; document: string; version: string; url: string; accepted: boolean; ip: string | null; userAgent: string | null }[],
): Promise<void> {
  for (const event of events) {
    await db.query(
      `INSERT INTO consent_events (checkout_id, document, version, url, accepted, ip, user_agent)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [event.checkoutId, event.document, event.version, event.url, event.accepted, event.ip, event.userAgent],
    );
  }
}

export async function listConsentEvents(db: Queryable, checkoutId: string) {
  const { rows } = await db.query<{
    document: string; version: string; url: string; accepted: boolean; ip: string | null; user_agent: string | null; created_at: Date;
  }>('SELECT document, version, url, accepted, ip, user_agent, created_at FROM consent_events WHERE checkout_id = $1 ORDER BY id', [checkoutId]);
  return rows;
}

/** Creates the order of a checkout, or counts one more registration attempt on the existing one. */
export async function upsertOrderForAttempt(
  db: Queryable,
  order: Pick<OrderRecord, 'id' | 'reference' | 'checkoutId' | 'curp' | 'product' | 'kasuProduct' | 'paymentMethod' | 'price' | 'instalments' | 'instalmentAmount'>,
): Promise<OrderRecord> {
  const { rows } = await db.query<OrderRow>(
    `INSERT INTO orders (id, reference, checkout_id, curp, product, kasu_product, payment_method, currency,
       price_centavos, instalments, instalment_centavos, status, registration_attempts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'MXN', $8, $9, $10, 'registering', 1)
     ON CONFLICT (checkout_id) DO UPDATE SET
       registration_attempts = orders.registration_attempts + 1, status = 'registering',
       -- Still 'registering': the attempt before died mid-call (a crash), so KASU may have registered it.
       last_error = CASE WHEN orders.status = 'registering' THEN 'unknown:INTERRUPTED' ELSE orders.last_error END,
       payment_method = EXCLUDED.payment_method, product = EXCLUDED.product, kasu_product = EXCLUDED.kasu_product,
       price_centavos = EXCLUDED.price_centavos, instalments = EXCLUDED.instalments,
       instalment_centavos = EXCLUDED.instalment_centavos, updated_at = now()
     RETURNING *`,
    [order.id, order.reference, order.checkoutId, order.curp, order.product, order.kasuProduct, order.paymentMethod,
      order.price, order.instalments, order.instalmentAmount],
  );
  return toOrder(rows[0]!);
}

export async function findOrderById(db: Queryable, id: string): Promise<OrderRecord | null> {
  const { rows } = await db.query<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
  return rows[0] ? toOrder(rows[0]) : null;
}

export async function findOrderByReference(db: Queryable, reference: string): Promise<OrderRecord | null> {
  const { rows } = await db.query<OrderRow>('SELECT * FROM orders WHERE reference = $1', [reference]);
  return rows[0] ? toOrder(rows[0]) : null;
}

export async function listOrders(db: Queryable, options: { status?: string; limit: number; before?: Date }): Promise<OrderRecord[]> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM orders WHERE ($1::text IS NULL OR status = $1) AND ($2::timestamptz IS NULL OR created_at < $2)
     ORDER BY created_at DESC LIMIT $3`,
    [options.status ?? null, options.before ?? null, options.limit],
  );
  return rows.map(toOrder);
}

export async function findOrderByCheckout(db: Queryable, checkoutId: string): Promise<OrderRecord | null> {
  const { rows } = await db.query<OrderRow>('SELECT * FROM orders WHERE checkout_id = $1', [checkoutId]);
  return rows[0] ? toOrder(rows[0]) : null;
}

export async function markOrderRegistered(
  db: Queryable,
  orderId: string,
  result: { policy: string; kasuStatus: string; customerName: string; price: number; instalmentAmount: number; paymentLink: string | null },
): Promise<OrderRecord> {
  const { rows } = await db.query<OrderRow>(
    `UPDATE orders SET status = 'registered', policy = $2, kasu_status = $3, customer_name = $4, price_centavos = $5,
       instalment_centavos = $6, payment_link = $7, last_error = NULL, registered_at = now(), updated_at = now()
     WHERE id = $1 RETURNING *`,
    [orderId, result.policy, result.kasuStatus, result.customerName, result.price, result.instalmentAmount, result.paymentLink],
  );
  return toOrder(rows[0]!);
}

export async function markOrderFailed(db: Queryable, orderId: string, status: Exclude<OrderStatus, 'registered' | 'registering'>, error: string): Promise<void> {
  await db.query('UPDATE orders SET status = $2, last_error = $3, updated_at = now() WHERE id = $1', [orderId, status, error]);
}

export async function insertPayment(
  db: Queryable,
  payment: { id: string; orderId: string; provider: string; status: string; amount: number; instalmentNumber: number; paymentUrl: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO payments (id, order_id, provider, status, currency, amount_centavos, instalment_number, payment_url)
     VALUES ($1, $2, $3, $4, 'MXN', $5, $6, $7) ON CONFLICT (order_id, provider, instalment_number) DO NOTHING`,
    [payment.id, payment.orderId, payment.provider, payment.status, payment.amount, payment.instalmentNumber, payment.paymentUrl],
  );
}

export type PaymentRecord = {
  id: string;
  orderId: string;
  provider: string;
  /** 'new' and 'creating': the provider side does not exist yet (the customer sees 'pending'). */
  status: PaymentStatus | 'new' | 'creating';
  currency: 'MXN';
  amount: number;
  instalmentNumber: number;
  providerReference: string | null;
  providerStatus: string | null;
  paymentUrl: string | null;
  paidAt: Date | null;
  expiresAt: Date | null;
  refunded: number;
  /** Creation calls whose outcome was unknown: Khipu may hold that many payments of ours we never heard of. */
  unknownCreations: number;
  createdAt: Date;
};

type PaymentRow = {
  id: string; order_id: string; provider: string; status: string; currency: string; amount_centavos: number;
  instalment_number: number; provider_reference: string | null; provider_status: string | null; payment_url: string | null;
  paid_at: Date | null; expires_at: Date | null; refunded_centavos: number; unknown_creations: number; created_at: Date;
};

export function toPayment(row: PaymentRow): PaymentRecord {
  return {
    id: row.id,
    orderId: row.order_id,
    provider: row.provider,
    status: row.status as PaymentRecord['status'],
    currency: 'MXN',
    amount: Number(row.amount_centavos),
    instalmentNumber: row.instalment_number,
    providerReference: row.provider_reference,
    providerStatus: row.provider_status,
    paymentUrl: row.payment_url,
    paidAt: row.paid_at,
    expiresAt: row.expires_at,
    refunded: Number(row.refunded_centavos),
    unknownCreations: Number(row.unknown_creations),
    createdAt: row.created_at,
  };
}

/** The payment of the earliest instalment not yet paid (or the last one, when all are paid). */
export async function findCurrentPayment(db: Queryable, orderId: string): Promise<PaymentRecord | null> {
  const { rows } = await db.query<PaymentRow>(
    `SELECT * FROM payments WHERE order_id = $1
     ORDER BY (status = 'paid'), instalment_number, created_at DESC LIMIT 1`,
    [orderId],
  );
  return rows[0] ? toPayment(rows[0]) : null;
}

export async function listPayments(db: Queryable, orderId: string) {
  const { rows } = await db.query<{ id: string; provider: string; status: string; amount_centavos: number; instalment_number: number }>(
    'SELECT id, provider, status, amount_centavos, instalment_number FROM payments WHERE order_id = $1 ORDER BY instalment_number',
    [orderId],
  );
  return rows;
}

export type IdempotencyRecord = { requestHash: string; responseStatus: number | null; responseBody: unknown };

/** Records a key for a checkout; returns the existing record when the key was seen before, or null when it is new. */
export async function reserveIdempotencyKey(db: Queryable, checkoutId: string, key: string, requestHash: string): Promise<IdempotencyRecord | null> {
  const inserted = await db.query(
    `INSERT INTO idempotency_keys (checkout_id, key, request_hash) VALUES ($1, $2, $3)
     ON CONFLICT (checkout_id, key) DO NOTHING`,
    [checkoutId, key, requestHash],
  );
  if (inserted.rowCount === 1) return null;
  const { rows } = await db.query<{ request_hash: string; response_status: number | null; response_body: unknown }>(
    'SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE checkout_id = $1 AND key = $2',
    [checkoutId, key],
  );
  const row = rows[0]!;
  return { requestHash: row.request_hash, responseStatus: row.response_status, responseBody: row.response_body };
}

export async function saveIdempotentResponse(db: Queryable, checkoutId: string, key: string, status: number, body: unknown): Promise<void> {
  await db.query('UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE checkout_id = $1 AND key = $2', [
    checkoutId, key, status, JSON.stringify(body),
  ]);
}
