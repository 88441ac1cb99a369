/**
 * Signed merchant webhooks through an outbox. An event is written in the same transaction as the change it
 * describes (so it is never lost, nor sent for a change that rolled back); a dispatcher, run by a job on every BFF
 * instance, later claims due deliveries, POSTs them signed, logs every attempt and retries on a backoff table.
 * Delivery is at least once: a merchant dedupes on Kasu-Event-Id.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import type { Database, Queryable } from '../db/database.js';
import type { Logger } from '../log.js';

/** Every event type a merchant can receive. Add new ones here (and to the merchant docs). */
export const MERCHANT_EVENT_TYPES = [
  'order.registered',
  'order.paid',
  'payment.failed',
  'payment.needs_review',
  'charge.succeeded',
  'charge.failed',
  'subscription.past_due',
  'subscription.cancelled',
  'reconciliation.completed',
  'reconciliation.discrepancy',
] as const;
export type MerchantEventType = (typeof MERCHANT_EVENT_TYPES)[number];

export type MerchantEvent = {
  /** evt_…; the same on every delivery attempt, so merchants dedupe on it. */
  id: string;
  type: MerchantEventType;
  /** ISO 8601, when the change happened. */
  created: string;
  data: Record<string, unknown>;
};

export const SIGNATURE_HEADER = 'Kasu-Signature';
export const EVENT_ID_HEADER = 'Kasu-Event-Id';
export const EVENT_TYPE_HEADER = 'Kasu-Event-Type';
export const WEBHOOK_USER_AGENT = 'kasu-checkout-webhooks/1';

/** Seconds to wait after attempt 1, 2, …; after the last entry the delivery is given up ('failed'). */
export const DEFAULT_BACKOFF_SECONDS: readonly number[] = [10, 30, 120, 600, 1800, 3600, 7200, 21600, 43200];
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * Inside the caller's transaction: stores the event and, when a URL is configured, its pending delivery.
 * Returns the event as it will be sent: JSON.stringify of the result is byte for byte the body the merchant gets
 * (jsonb normalises the order of keys inside `data`, so the stored form is what we return).
 */
export async function enqueueMerchantEvent(
  tx: Queryable,
  webhookUrl: string | null,
  type: MerchantEventType,
  data: Record<string, unknown>,
  now: Date = new Date(),
): Promise<MerchantEvent> {
  if (!(MERCHANT_EVENT_TYPES as readonly string[]).includes(type)) throw new Error(`unknown merchant event type: ${type}`);
  const event: MerchantEvent = { id: `evt_${randomBytes(12).toString('base64url')}`, type, created: now.toISOString(), data };
  const { rows } = await tx.query<{ payload: MerchantEvent }>(
    'INSERT INTO webhook_events (id, type, payload, created_at) VALUES ($1, $2, $3::jsonb, $4) RETURNING payload',
    [event.id, type, JSON.stringify(event), now],
  );
  if (webhookUrl) {
    await tx.query(
      'INSERT INTO webhook_deliveries (event_id, url, next_attempt_at, created_at) VALUES ($1, $2, $3, $3)',
      [event.id, webhookUrl, now],
    );
  }
  return eventFromPayload(rows[0]!.payload);
}

/** Fixed top-level key order, whatever order jsonb keeps them in. */
function eventFromPayload(payload: MerchantEvent): MerchantEvent {
  return { id: payload.id, type: payload.type, created: payload.created, data: payload.data };
}

/** The Kasu-Signature header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<rawBody>")>`. */
export function signMerchantWebhook(secret: string, timestampSeconds: number, rawBody: string): string {
  return `t=${timestampSeconds},v1=${hmacHex(secret, timestampSeconds, rawBody)}`;
}

function hmacHex(secret: string, timestampSeconds: number | string, rawBody: string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`, 'utf8').digest('hex');
}

/**
 * True when one of the header's v1= signatures (there are several while a secret is being rotated) is the HMAC of
 * the raw body with `secret`, and its timestamp is within `toleranceSeconds` (default 300) of `now()`
 * (milliseconds since the epoch, default Date.now), which makes a captured request useless after a few minutes.
 */
export function verifyMerchantWebhook(
  secret: string,
  header: string | undefined,
  rawBody: string,
  options: { toleranceSeconds?: number; now?: () => number } = {},
): boolean {
  if (!secret || !header) return false;
  let timestamp: string | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 1) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't') timestamp = value;
    else if (key === 'v1') signatures.push(value);
  }
  if (!timestamp || !/^\d{1,15}$/.test(timestamp) || signatures.length === 0) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) return false;
  const expected = Buffer.from(hmacHex(secret, timestamp, rawBody), 'utf8');
  let matched = false;
  for (const signature of signatures) {
    const given = Buffer.from(signature, 'utf8');
    // Every candidate is compared, in constant time for its length, so timing says nothing about which matched.
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  return matched;
}

export type MerchantWebhookDispatcherConfig = {
  /** Signs every request; never logged. */
  secret: string;
  /** Whole attempt (connect, headers, body); default 10000. */
  timeoutMs?: number;
  /** Default DEFAULT_BACKOFF_SECONDS; when exhausted the delivery ends 'failed'. */
  backoffSeconds?: readonly number[];
  /** Requests in flight at once per instance; default 4. */
  concurrency?: number;
  /** How long a claimed delivery is reserved for this instance; must exceed the timeout. Default 60. */
  leaseSeconds?: number;
};

export type MerchantWebhookDispatcherOptions = {
  logger?: Logger;
  now?: () => Date;
  /** Used instead of the dispatcher's own Agent (which is then not created, nor closed by close()). */
  dispatcher?: Dispatcher;
};

export type DispatchResult = { delivered: number; retrying: number; failed: number };

type ClaimedDelivery = {
  id: number;
  url: string;
  /** Attempts made before this one. */
  attempts: number;
  /** Our lease: the record of the result applies only while the row still carries it. */
  locked_until: Date;
  payload: MerchantEvent;
};

type AttemptResult = { ok: boolean; status: number | null; error: string | null; ms: number };

/** Extra delay on top of a backoff entry, as a fraction of it, so retries from many deliveries spread out. */
const JITTER = 0.1;
const MAX_ERROR_LENGTH = 500;

export class MerchantWebhookDispatcher {
  readonly #db: Database;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #backoffSeconds: readonly number[];
  readonly #concurrency: number;
  readonly #leaseSeconds: number;
  readonly #log: Logger | undefined;
  readonly #now: () => Date;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #runs = new Set<Promise<unknown>>();
  #closed = false;

  constructor(db: Database, config: MerchantWebhookDispatcherConfig, options: MerchantWebhookDispatcherOptions = {}) {
    if (!config.secret) throw new Error('merchant webhook secret is empty');
    this.#db = db;
    this.#secret = config.secret;
    this.#timeoutMs = config.timeoutMs ?? 10_000;
    this.#backoffSeconds = config.backoffSeconds ?? DEFAULT_BACKOFF_SECONDS;
    this.#concurrency = Math.max(1, Math.floor(config.concurrency ?? 4));
    this.#leaseSeconds = config.leaseSeconds ?? 60;
    if (this.#leaseSeconds * 1000 <= this.#timeoutMs) {
      // Otherwise a slow attempt could outlive its lease and another instance would send the same delivery.
      throw new Error('merchant webhook leaseSeconds must exceed timeoutMs');
    }
    this.#log = options.logger?.child({ component: 'merchant-webhooks' });
    this.#now = options.now ?? (() => new Date());
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher =
      options.dispatcher ??
      new Agent({
        connect: { timeout: this.#timeoutMs },
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        connections: this.#concurrency,
      });
  }

  /**
   * Sends every delivery due now: `concurrency` workers each claim one due delivery at a time (UPDATE … RETURNING
   * over FOR UPDATE SKIP LOCKED, which sets a lease), send it with no transaction open, then record the attempt.
   * Each delivery is tried at most once per run.
   */
  async runOnce(): Promise<DispatchResult> {
    if (this.#closed) throw new Error('merchant webhook dispatcher is closed');
    const run = this.#run();
    this.#runs.add(run);
    try {
      return await run;
    } finally {
      this.#runs.delete(run);
    }
  }

  /** Waits for runs in progress, then closes the HTTP agent (unless it was given). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#runs]);
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  async #run(): Promise<DispatchResult> {
    const result: DispatchResult = { delivered: 0, retrying: 0, failed: 0 };
    const seen: number[] = [];
    const worker = async () => {
      for (;;) {
        const delivery = await this.#claim(seen);
        if (!delivery) return;
        seen.push(delivery.id);
        const outcome = await this.#deliver(delivery);
        if (outcome) result[outcome] += 1;
      }
    };
    const workers = await Promise.allSettled(Array.from({ length: this.#concurrency }, worker));
    const failure = workers.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failure) throw failure.reason;
    return result;
  }

  async #claim(exclude: number[]): Promise<ClaimedDelivery | null> {
    const now = this.#now();
    const lease = new Date(now.getTime() + this.#leaseSeconds * 1000);
    // Claimed ids of this run are excluded, so a zero backoff cannot loop within one run.
    const { rows } = await this.#db.query<ClaimedDelivery>(
      `UPDATE webhook_deliveries AS d SET locked_until = $2
       FROM (
         SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
           AND NOT (id = ANY ($3::bigint[]))
         ORDER BY next_attempt_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED
       ) AS due, webhook_events AS e
       WHERE d.id = due.id AND e.id = d.event_id
       RETURNING d.id, d.url, d.attempts, d.locked_until, e.payload`,
      [now, lease, exclude],
    );
    const row = rows[0];
    return row ? { ...row, id: Number(row.id) } : null;
  }

  /** Returns what became of the delivery, or null when our lease was lost and another instance owns it now. */
  async #deliver(delivery: ClaimedDelivery): Promise<keyof DispatchResult | null> {
    const event = eventFromPayload(delivery.payload);
    const attempt = delivery.attempts + 1;
    const answer = await this.#send(delivery.url, event);
    const now = this.#now();
    let outcome: keyof DispatchResult;
    let nextAttemptAt: Date | null = null;
    if (answer.ok) {
      outcome = 'delivered';
    } else if (attempt <= this.#backoffSeconds.length) {
      outcome = 'retrying';
      const base = this.#backoffSeconds[attempt - 1]! * 1000;
      nextAttemptAt = new Date(now.getTime() + Math.round(base * (1 + Math.random() * JITTER)));
    } else {
      outcome = 'failed';
    }
    const applied = await this.#db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO webhook_attempts (delivery_id, attempt, response_status, error, duration_ms, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [delivery.id, attempt, answer.status, answer.error, answer.ms, now],
      );
      const updated = await tx.query(
        `UPDATE webhook_deliveries
         SET status = $3, attempts = $4, last_status = $5, last_error = $6, locked_until = NULL,
             next_attempt_at = COALESCE($7, next_attempt_at),
             delivered_at = CASE WHEN $3 = 'delivered' THEN $8::timestamptz ELSE delivered_at END
         WHERE id = $1 AND locked_until = $2`,
        [
          delivery.id, delivery.locked_until, outcome === 'retrying' ? 'pending' : outcome, attempt,
          answer.status, answer.error, nextAttemptAt, now,
        ],
      );
      return updated.rowCount === 1;
    });
    const fields = {
      eventType: event.type, eventId: event.id, deliveryId: delivery.id, attempt,
      status: answer.status, error: answer.error, ms: answer.ms, outcome,
      ...(nextAttemptAt ? { nextAttemptAt: nextAttemptAt.toISOString() } : {}),
    };
    if (!applied) {
      this.#log?.warn('merchant webhook lease lost; result not applied', fields);
      return null;
    }
    if (outcome === 'delivered') this.#log?.info('merchant webhook delivered', fields);
    else if (outcome === 'retrying') this.#log?.warn('merchant webhook attempt failed', fields);
    else this.#log?.error('merchant webhook gave up', fields);
    return outcome;
  }

  async #send(url: string, event: MerchantEvent): Promise<AttemptResult> {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(this.#now().getTime() / 1000);
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    try {
      const response = await request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
          [EVENT_ID_HEADER]: event.id,
          [EVENT_TYPE_HEADER]: event.type,
          [SIGNATURE_HEADER]: signMerchantWebhook(this.#secret, timestamp, body),
        },
        body,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        // Bounds the whole attempt: a receiver trickling bytes cannot hold a worker past the timeout.
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      // Always consume the body (what the merchant says is not kept), so the connection can be reused.
      await response.body.dump();
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return { ok, status: response.statusCode, error: null, ms: ms() };
    } catch (error) {
      return { ok: false, status: null, error: describeError(error), ms: ms() };
    }
  }
}

function describeError(error: unknown): string {
  const err = error as { name?: unknown; code?: unknown; message?: unknown };
  // undici and node:net errors carry a string code (ECONNREFUSED, UND_ERR_…); DOMExceptions a numeric one.
  const label = typeof err.code === 'string' ? err.code : typeof err.name === 'string' ? err.name : 'Error';
  const text = `${label}: ${typeof err.message === 'string' ? err.message : String(error)}`.replace(/\s+/g, ' ').trim();
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}
