/**
 * Charges due card instalments, each exactly once, with bounded concurrency, across crashes and several instances.
 *
 * The instalments table is the queue. A run leases due instalments (FOR UPDATE SKIP LOCKED, so instances never take
 * the same one). Each attempt's merchantOrderId (order reference, instalment, attempt number) is written before the
 * gateway is called. When the outcome is unknown (timeout, crash, 5xx) the next run sends the SAME merchantOrderId
 * again; the gateway refuses a repeated id, so a charge can never be made twice, and if it answers "duplicate" the
 * earlier send did reach it: the instalment goes to review and is never charged again automatically.
 * Declines follow the dunning policy; after the last one the subscription is past due and cancelled.
 *
 * The database work is shared between charges (group commit, group-commit.ts): `concurrency` workers per instance
 * take instalments from the leased batch. Just before its gateway call, each one's lease is renewed (fenced by its
 * token) and its attempt written: its claim. After an approval, the attempt's answer, the instalment paid, the card
 * payment, the subscription completed and the merchant event are written: its approval. The claims, or the approvals,
 * of every worker that gets there within `commitDelayMs` of each other, or while the previous write runs, are written
 * together, by one statement (one transaction on PostgreSQL). Nothing is sent before its claim is committed, and a
 * claim is made only by a worker about to send, so a crash leaves at most `concurrency` sends unanswered. Every
 * outcome ends the lease it was sent under (locked_until and lease_token cleared). Declines, unknown outcomes and
 * reviews are rare and written one by one.
 */
import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../db/database.js';
import type { Logger } from '../log.js';
import { ProviderError } from '../errors.js';
import { isDuplicateMerchantOrder, type CardApi, type CardCharge } from '../providers/card/card-api.js';
import { enqueueMerchantEvent, type MerchantEvent } from '../webhooks/merchant-webhooks.js';
import { GroupCommit } from '../db/group-commit.js';

export type ChargeEngineConfig = {
  /** How long a run owns an instalment; a crashed run's instalments are taken over after this. */
  leaseSeconds: number;
  /**
   * Charges under way at once, per instance (claimed, at the gateway, or being recorded). Also the most sends a crash
   * can leave unanswered, each one an instalment for review; the card client's connection pool (16 connections)
   * further caps the calls really at the gateway.
   */
  concurrency: number;
  /**
   * How long a claim or an approval waits for others to be written with it (group commit): fewer, larger writes for a
   * few milliseconds more per charge.
   */
  commitDelayMs: number;
  /** Instalments leased per run. */
  batchSize: number;
  /** Hours after the 1st and 2nd declines before the next attempt (3 attempts over 7 days by default). */
  dunningDelaysHours: number[];
  /** Seconds before resending a charge whose outcome is unknown. */
  unknownRetrySeconds: number;
  merchantWebhookUrl: string | null;
};

export const DEFAULT_CHARGE_ENGINE_CONFIG: Omit<ChargeEngineConfig, 'merchantWebhookUrl'> = {
  leaseSeconds: 120,
  concurrency: 32,
  commitDelayMs: 5,
  batchSize: 200,
  dunningDelaysHours: [48, 120],
  unknownRetrySeconds: 300,
};

export type RunResult = {
  leased: number; approved: number; declined: number; unknown: number; review: number; pastDue: number;
  /** Leased, but another run took it over before this one could send (its lease had run out). */
  skipped: number;
};

type Due = {
  id: string; lease_token: string; subscription_id: string; number: number; currency: string; amount_centavos: number; declines: number;
  reference: string; order_id: string; customer_id: string; token: string; instalments: number;
};

type Attempt = { id: number; attempt: number; merchant_order_id: string; sends: number };

type Approval = { instalment: Due; attempt: Attempt; charge: CardCharge; at: Date };

/** Rows (one array per item) as columns (one array per field), for unnest(). */
function columns(rows: unknown[][]): unknown[][] {
  return (rows[0] ?? []).map((_, i) => rows.map((row) => row[i]));
}

/** The most claims, or approvals, written together by one group commit. */
const MAX_GROUP = 256;

/** See recordApprovals. $1–$15: one array per column of the approvals; $16: the merchant webhook URL (or null). */
const RECORD_APPROVALS = `
  WITH input AS (
    SELECT x.*, x.created_text::timestamptz AS created, x.event_text::jsonb AS event
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
      AS x(attempt_id, instalment_id, subscription_id, order_id, number, amount, payment_id, response_code,
           response_description, authorization_number, reference_number, gateway_order_id, event_id, created_text, event_text)
  ),
  answered AS (
    UPDATE charge_attempts a SET status = 'approved', response_code = x.response_code,
      response_description = x.response_description, authorization_number = x.authorization_number,
      reference_number = x.reference_number, gateway_order_id = x.gateway_order_id, error = NULL, updated_at = now()
    FROM input x WHERE a.id = x.attempt_id
  ),
  paid AS (
    UPDATE instalments i SET status = 'paid', paid_at = now(), locked_until = NULL, lease_token = NULL, updated_at = now()
    FROM input x WHERE i.id = x.instalment_id
  ),
  payment AS (
    INSERT INTO payments (id, order_id, provider, status, currency, amount_centavos, instalment_number, payment_url,
                          provider_reference, paid_at, provider_status)
    SELECT x.payment_id, x.order_id, 'card', 'paid', 'MXN', x.amount, x.number, NULL, x.gateway_order_id, now(), 'approved'
    FROM input x
    ON CONFLICT (order_id, provider, instalment_number) DO UPDATE
      SET provider_reference = EXCLUDED.provider_reference, paid_at = EXCLUDED.paid_at, provider_status = EXCLUDED.provider_status
  ),
  -- A statement does not see its own changes: the instalments it pays count as paid here.
  completed AS (
    UPDATE subscriptions s SET status = 'completed', updated_at = now()
    WHERE s.id IN (SELECT subscription_id FROM input)
      AND NOT EXISTS (SELECT 1 FROM instalments i WHERE i.subscription_id = s.id AND i.status <> 'paid'
                      AND i.id NOT IN (SELECT instalment_id FROM input))
  ),
  event AS (
    INSERT INTO webhook_events (id, type, payload, created_at)
    SELECT x.event_id, 'charge.succeeded', x.event, x.created FROM input x
  )
  INSERT INTO webhook_deliveries (event_id, url, next_attempt_at, created_at)
  SELECT x.event_id, $16, x.created, x.created FROM input x WHERE $16::text IS NOT NULL`;

export class ChargeEngine {
  /** Claims before the gateway call, and approvals after it, written by group commit (see the top of this file). */
  readonly #claims: GroupCommit<Due, Attempt | null>;
  readonly #approvals: GroupCommit<Approval, void>;

  #stopping = false;

  constructor(
    private readonly db: Database,
    private readonly card: CardApi,
    private readonly config: ChargeEngineConfig,
    private readonly logger: Logger,
  ) {
    const group = { maxGroup: MAX_GROUP, delayMs: config.commitDelayMs };
    this.#claims = new GroupCommit((due) => this.claim(due), group);
    this.#approvals = new GroupCommit((approvals) => this.recordApprovals(approvals), group);
  }

  /** Charges every instalment due at `now` (a clock override for tests and the sandbox; the real clock otherwise). */
  async runDue(now: Date = new Date()): Promise<RunResult> {
    const result: RunResult = { leased: 0, approved: 0, declined: 0, unknown: 0, review: 0, pastDue: 0, skipped: 0 };
    const queue: Due[] = [];
    let leasing: Promise<void> | null = null;
    let drained = false;
    let failure: { error: unknown } | null = null;
    // A worker that finds nothing left leases the next batch (one lease at a time, shared by the workers waiting for
    // it) while the others are still sending: no worker waits for the slowest charge of a batch.
    const refill = (): Promise<void> => (leasing ??= this.lease(now).then(
      (due) => {
        result.leased += due.length;
        queue.push(...due);
        if (due.length === 0) drained = true;
      },
      (error: unknown) => {
        failure ??= { error };
        drained = true;
      },
    ).finally(() => {
      leasing = null;
    }));
    const worker = async () => {
      for (;;) {
        // Stopping (SIGTERM): the charges under way finish and are recorded; nothing new is sent.
        if (this.#stopping) return;
        const instalment = queue.shift();
        if (!instalment) {
          if (drained) return;
          await refill();
          continue;
        }
        const outcome = await this.chargeOne(instalment, now).catch((error: unknown) => {
          this.logger.error('instalment charge failed unexpectedly; its lease will expire and it will be retried', { instalmentId: instalment.id, error });
          return 'unknown' as const;
        });
        result[outcome] += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.config.concurrency) }, worker));
    await leasing;
    if (queue.length) await this.release(queue);
    if (failure) throw (failure as { error: unknown }).error;
    return result;
  }

  /**
   * Stops charging: runs in progress send nothing more, finish the charges already sent (recording their outcome) and
   * give back the instalments they leased but did not send, so another instance or the next start charges them at
   * once instead of after the lease. A process that stops so (SIGTERM) leaves nothing for review.
   */
  stop(): void {
    this.#stopping = true;
  }

  /** Gives back leased instalments that were not sent (only while this run's lease token is still theirs). */
  private async release(unsent: Due[]): Promise<void> {
    try {
      await this.db.query(
        `UPDATE instalments i SET locked_until = NULL, lease_token = NULL, updated_at = now()
         FROM unnest($1::text[], $2::text[]) AS u (id, lease_token)
         WHERE i.id = u.id AND i.lease_token = u.lease_token`,
        [unsent.map((due) => due.id), unsent.map((due) => due.lease_token)],
      );
      this.logger.info('charge run stopped; unsent instalments given back', { released: unsent.length });
    } catch (error) {
      this.logger.warn('unsent instalments not given back; they are charged once their lease ends', { count: unsent.length, error });
    }
  }

  /**
   * Charges one instalment now, while the customer waits (the first, at enrollment). A decline here is not dunned:
   * the subscription waits for another card (`pending_card`). Returns null when the instalment is not chargeable
   * now (already paid, leased by another run, or not scheduled).
   */
  async chargeNow(instalmentId: string, now: Date = new Date()): Promise<keyof Omit<RunResult, 'leased'> | null> {
    const [due] = await this.lease(now, instalmentId);
    if (!due) return null;
    const outcome = await this.chargeOne(due, now, { enrollment: true });
    return outcome === 'skipped' ? null : outcome;
  }

  private async lease(now: Date, onlyId: string | null = null): Promise<Due[]> {
    const { rows } = await this.db.query<Due>(
      `WITH leased AS (
         UPDATE instalments SET locked_until = now() + make_interval(secs => $2), lease_token = gen_random_uuid()::text,
           updated_at = now()
         WHERE id IN (
           SELECT i.id FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id
           WHERE i.status = 'scheduled' AND s.status = 'active'
             -- One instalment asked for by name (the customer's first charge, or its retry after an unknown
             -- outcome) is charged now: its unfinished attempt resends the same merchantOrderId at once.
             AND (i.next_attempt_at <= $1 OR $4::text IS NOT NULL)
             AND (i.locked_until IS NULL OR i.locked_until < now()) AND ($4::text IS NULL OR i.id = $4)
           ORDER BY i.next_attempt_at
           LIMIT $3
           FOR UPDATE OF i SKIP LOCKED)
         RETURNING *)
       SELECT l.id, l.lease_token, l.subscription_id, l.number, l.currency, l.amount_centavos, l.declines,
              o.reference, o.id AS order_id, o.instalments, c.customer_id, c.token
       FROM leased l
       JOIN subscriptions s ON s.id = l.subscription_id
       JOIN orders o ON o.id = s.order_id
       JOIN payment_cards c ON c.id = s.card_id
       ORDER BY l.next_attempt_at`,
      [now, this.config.leaseSeconds, this.config.batchSize, onlyId],
    );
    return rows.map((row) => ({ ...row, amount_centavos: Number(row.amount_centavos) }));
  }

  private async chargeOne(instalment: Due, now: Date, options: { enrollment?: boolean } = {}): Promise<keyof Omit<RunResult, 'leased'>> {
    const attempt = await this.#claims.run(instalment);
    if (!attempt) return 'skipped';
    const log = this.logger.child({ instalmentId: instalment.id, merchantOrderId: attempt.merchant_order_id, sends: attempt.sends });
    let charge: CardCharge;
    try {
      charge = await this.card.chargeToken({
        customerId: instalment.customer_id,
        merchantOrderId: attempt.merchant_order_id,
        amount: instalment.amount_centavos,
        currency: instalment.currency,
        token: instalment.token,
      });
    } catch (error) {
      if (isDuplicateMerchantOrder(error)) {
        await this.toReview(instalment, attempt, 'gateway already has this merchantOrderId: an earlier send reached it');
        log.error('ALERT card charge outcome unknown: instalment marked for review, not charged again');
        return 'review';
      }
      if (error instanceof ProviderError && (error.retryable || error.code === 'RATE_LIMITED')) {
        // Unknown outcome: the attempt stays 'sending' and the next run sends the same merchantOrderId.
        await this.db.query(
          `WITH noted AS (UPDATE charge_attempts SET error = $2, updated_at = now() WHERE id = $1)
           UPDATE instalments SET locked_until = NULL, lease_token = NULL, next_attempt_at = $4, updated_at = now() WHERE id = $3`,
          [attempt.id, error.code, instalment.id, new Date(now.getTime() + this.config.unknownRetrySeconds * 1000)],
        );
        log.warn('card charge outcome unknown; will resend the same merchantOrderId', { code: error.code });
        return 'unknown';
      }
      await this.toReview(instalment, attempt, error instanceof ProviderError ? error.code : 'INTERNAL');
      log.error('ALERT card charge refused by the gateway: instalment marked for review', { error });
      return 'review';
    }
    if (charge.outcome === 'approved') {
      await this.#approvals.run({ instalment, attempt, charge, at: new Date() });
      log.info('card charge approved');
      return 'approved';
    }
    if (options.enrollment) return this.declinedAtEnrollment(instalment, attempt, charge, log);
    return this.declined(instalment, attempt, charge, now, log);
  }

  /**
   * The attempts to send, one per instalment (null: no longer this run's), written by one statement and committed
   * before any call. Each lease is renewed first, fenced by its token, so that it covers this one gateway call: a batch
   * that took longer than its lease finds its later instalments taken over and skips them instead of sending them a
   * second time. Then the instalment's unfinished attempt counts one more send (the same merchantOrderId), or its next
   * attempt is written. The statement reads the latest attempt as of its start, before it may wait for an
   * instalment's row lock: safe, because whatever finishes an attempt in the meantime also ends the instalment's lease
   * (status or lease_token), so that its renewal fails and nothing is written for it.
   */
  private async claim(due: Due[]): Promise<Array<Attempt | null>> {
    const { rows } = await this.db.query<Attempt & { instalment_id: string }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS x(id, lease_token, order_prefix)
       ),
       -- Found by primary key only (= ANY): the status and token are compared through the input, so that no plan
       -- (statistics or none) scans every scheduled instalment through instalments_due instead.
       renewed AS (
         UPDATE instalments i SET locked_until = now() + make_interval(secs => $4)
         WHERE i.id = ANY($1::text[])
           AND (i.status, i.lease_token) = (SELECT 'scheduled', x.lease_token FROM input x WHERE x.id = i.id)
         RETURNING i.id
       )
       -- The latest attempt when it is unfinished (its row exists: one more send), else the next one (a new row).
       INSERT INTO charge_attempts AS a (instalment_id, attempt, merchant_order_id, status, sends)
       SELECT r.id, n.attempt, x.order_prefix || '-' || n.attempt, 'sending', 1
       FROM renewed r JOIN input x ON x.id = r.id
       CROSS JOIN LATERAL (
         SELECT coalesce((SELECT CASE WHEN l.status = 'sending' THEN l.attempt ELSE l.attempt + 1 END
                          FROM charge_attempts l WHERE l.instalment_id = r.id ORDER BY l.attempt DESC LIMIT 1), 1) AS attempt
       ) n
       ON CONFLICT (instalment_id, attempt) DO UPDATE SET sends = a.sends + 1, updated_at = now()
       RETURNING a.instalment_id, a.id, a.attempt, a.merchant_order_id, a.sends`,
      [due.map((d) => d.id), due.map((d) => d.lease_token), due.map((d) => `${d.reference}-${d.number}`), this.config.leaseSeconds],
    );
    const byInstalment = new Map(rows.map((row) => [row.instalment_id, row]));
    return due.map((d) => {
      const row = byInstalment.get(d.id);
      return row ? { id: Number(row.id), attempt: row.attempt, merchant_order_id: row.merchant_order_id, sends: row.sends } : null;
    });
  }

  /**
   * Approvals, recorded together by one statement: for every approval, the attempt's answer, the instalment paid (its
   * lease ended), the card payment (as insertPayment writes it, then its gateway reference), the subscription
   * completed when nothing else is left to pay, and the merchant event charge.succeeded with its delivery (as
   * enqueueMerchantEvent writes them). On PostgreSQL the subscriptions are first locked, in the same transaction and in
   * id order (two groups never wait for each other): that serialises the instalments of one subscription, so that the
   * last one paid sees all the others paid. PGlite runs one statement at a time and nothing between a transaction's
   * statements: the statement alone is the same thing there, for one query instead of four (BEGIN and COMMIT are
   * queries too).
   */
  private async recordApprovals(approvals: Approval[]): Promise<void[]> {
    const rows = approvals.map(({ instalment, attempt, charge, at }) => {
      const event: MerchantEvent = {
        id: `evt_${randomBytes(12).toString('base64url')}`,
        type: 'charge.succeeded',
        created: at.toISOString(),
        data: this.eventData(instalment, attempt, { authorizationNumber: charge.authorizationNumber, gatewayOrderId: charge.orderId }),
      };
      return [
        attempt.id, instalment.id, instalment.subscription_id, instalment.order_id, instalment.number, instalment.amount_centavos,
        `pay_${attempt.merchant_order_id}`, charge.responseCode, charge.responseDescription, charge.authorizationNumber,
        charge.referenceNumber, charge.orderId, event.id, event.created, JSON.stringify(event),
      ];
    });
    const params = [...columns(rows), this.config.merchantWebhookUrl];
    if (this.db.kind === 'pglite') {
      await this.db.query(RECORD_APPROVALS, params);
    } else {
      await this.db.transaction(async (tx) => {
        await tx.query(
          'SELECT id FROM subscriptions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
          [[...new Set(approvals.map((approval) => approval.instalment.subscription_id))]],
        );
        await tx.query(RECORD_APPROVALS, params);
      });
    }
    return approvals.map(() => undefined);
  }

  private async declined(instalment: Due, attempt: Attempt, charge: CardCharge, now: Date, log: Logger): Promise<'declined' | 'pastDue'> {
    const declines = instalment.declines + 1;
    const delayHours = this.config.dunningDelaysHours[declines - 1];
    const final = delayHours === undefined;
    await this.db.transaction(async (tx) => {
      await this.recordAnswer(tx, attempt, 'rejected', charge);
      await tx.query(
        `UPDATE instalments SET declines = $2, status = $3, next_attempt_at = $4, locked_until = NULL, lease_token = NULL,
           updated_at = now()
         WHERE id = $1`,
        [instalment.id, declines, final ? 'failed' : 'scheduled', final ? null : new Date(now.getTime() + delayHours * 3_600_000)],
      );
      await this.event(tx, 'charge.failed', instalment, attempt, {
        responseCode: charge.responseCode, declines, final,
        nextAttemptAt: final ? null : new Date(now.getTime() + delayHours * 3_600_000).toISOString(),
      });
      if (final) {
        await tx.query(`UPDATE subscriptions SET status = 'past_due', updated_at = now() WHERE id = $1`, [instalment.subscription_id]);
        await this.event(tx, 'subscription.past_due', instalment, attempt, { declines });
        await tx.query(
          `UPDATE subscriptions SET status = 'cancelled', cancelled_at = now(), updated_at = now() WHERE id = $1`,
          [instalment.subscription_id],
        );
        await tx.query(
          `UPDATE instalments SET status = 'cancelled', updated_at = now() WHERE subscription_id = $1 AND status = 'scheduled'`,
          [instalment.subscription_id],
        );
        await this.event(tx, 'subscription.cancelled', instalment, attempt, { reason: 'dunning_exhausted' });
      }
    });
    log.info('card charge declined', { responseCode: charge.responseCode, declines, final });
    return final ? 'pastDue' : 'declined';
  }

  /** The customer is there: no dunning, the subscription waits for another card. */
  private async declinedAtEnrollment(instalment: Due, attempt: Attempt, charge: CardCharge, log: Logger): Promise<'declined'> {
    await this.db.transaction(async (tx) => {
      await this.recordAnswer(tx, attempt, 'rejected', charge);
      await tx.query(
        `UPDATE instalments SET next_attempt_at = NULL, locked_until = NULL, lease_token = NULL, updated_at = now() WHERE id = $1`,
        [instalment.id],
      );
      await tx.query(`UPDATE subscriptions SET status = 'pending_card', updated_at = now() WHERE id = $1`, [instalment.subscription_id]);
      await this.event(tx, 'charge.failed', instalment, attempt, { responseCode: charge.responseCode, atEnrollment: true });
    });
    log.info('card declined at enrollment', { responseCode: charge.responseCode });
    return 'declined';
  }

  private async toReview(instalment: Due, attempt: Attempt, reason: string): Promise<void> {
    await this.db.query(
      `WITH attempt AS (UPDATE charge_attempts SET status = 'review', error = $2, updated_at = now() WHERE id = $1)
       UPDATE instalments SET status = 'review', locked_until = NULL, lease_token = NULL, updated_at = now() WHERE id = $3`,
      [attempt.id, reason, instalment.id],
    );
  }

  private async recordAnswer(tx: Queryable, attempt: Attempt, status: 'approved' | 'rejected', charge: CardCharge): Promise<void> {
    await tx.query(
      `UPDATE charge_attempts SET status = $2, response_code = $3, response_description = $4, authorization_number = $5,
         reference_number = $6, gateway_order_id = $7, error = NULL, updated_at = now() WHERE id = $1`,
      [attempt.id, status, charge.responseCode, charge.responseDescription, charge.authorizationNumber, charge.referenceNumber, charge.orderId],
    );
  }

  /** The `data` of a merchant event about an instalment's charge. */
  private eventData(instalment: Due, attempt: Attempt, extra: Record<string, unknown>): Record<string, unknown> {
    return {
      reference: instalment.reference,
      subscriptionId: instalment.subscription_id,
      instalment: { number: instalment.number, of: instalment.instalments, amount: instalment.amount_centavos, currency: instalment.currency },
      merchantOrderId: attempt.merchant_order_id,
      ...extra,
    };
  }

  private async event(
    tx: Queryable,
    type: 'charge.failed' | 'subscription.past_due' | 'subscription.cancelled',
    instalment: Due,
    attempt: Attempt,
    extra: Record<string, unknown>,
  ): Promise<void> {
    await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, type, this.eventData(instalment, attempt, extra));
  }
}
