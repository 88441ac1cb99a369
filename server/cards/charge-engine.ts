/**
 * Charges due card instalments, each exactly once, with bounded concurrency, across crashes and several instances.
 *
 * The instalments table is the queue. A run leases due instalments (FOR UPDATE SKIP LOCKED, so instances never take
 * the same one). Each attempt's merchantOrderId (order reference, instalment, attempt number) is written before the
 * gateway is called. When the outcome is unknown (timeout, crash, 5xx) the next run sends the SAME merchantOrderId
 * again; the gateway refuses a repeated id, so a charge can never be made twice, and if it answers "duplicate" the
 * earlier send did reach it: the instalment goes to review and is never charged again automatically.
 * Declines follow the dunning policy; after the last one the subscription is past due and cancelled.
 */
import type { Database, Queryable } from '../db/database.js';
import type { Logger } from '../log.js';
import { ProviderError } from '../errors.js';
import { isDuplicateMerchantOrder, type CardApi, type CardCharge } from '../providers/card/card-api.js';
import { enqueueMerchantEvent } from '../webhooks/merchant-webhooks.js';
import { insertPayment } from '../checkouts/checkout-store.js';

export type ChargeEngineConfig = {
  /** How long a run owns an instalment; a crashed run's instalments are taken over after this. */
  leaseSeconds: number;
  /** Gateway calls in flight at once. */
  concurrency: number;
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
  concurrency: 8,
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

type Attempt = { id: number; attempt: number; merchant_order_id: string; status: string; sends: number };

export class ChargeEngine {
  constructor(
    private readonly db: Database,
    private readonly card: CardApi,
    private readonly config: ChargeEngineConfig,
    private readonly logger: Logger,
  ) {}

  /** Charges every instalment due at `now` (a clock override for tests and the sandbox; the real clock otherwise). */
  async runDue(now: Date = new Date()): Promise<RunResult> {
    const result: RunResult = { leased: 0, approved: 0, declined: 0, unknown: 0, review: 0, pastDue: 0, skipped: 0 };
    for (;;) {
      const due = await this.lease(now);
      if (due.length === 0) return result;
      result.leased += due.length;
      let next = 0;
      const worker = async () => {
        while (next < due.length) {
          const instalment = due[next++]!;
          const outcome = await this.chargeOne(instalment, now).catch((error: unknown) => {
            this.logger.error('instalment charge failed unexpectedly; its lease will expire and it will be retried', { instalmentId: instalment.id, error });
            return 'unknown' as const;
          });
          result[outcome] += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.config.concurrency, due.length) }, worker));
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
       JOIN payment_cards c ON c.id = s.card_id`,
      [now, this.config.leaseSeconds, this.config.batchSize, onlyId],
    );
    return rows.map((row) => ({ ...row, amount_centavos: Number(row.amount_centavos) }));
  }

  private async chargeOne(instalment: Due, now: Date, options: { enrollment?: boolean } = {}): Promise<keyof Omit<RunResult, 'leased'>> {
    const attempt = await this.attemptToSend(instalment);
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
          `UPDATE charge_attempts SET error = $2, updated_at = now() WHERE id = $1`, [attempt.id, error.code],
        );
        await this.release(this.db, instalment.id, new Date(now.getTime() + this.config.unknownRetrySeconds * 1000));
        log.warn('card charge outcome unknown; will resend the same merchantOrderId', { code: error.code });
        return 'unknown';
      }
      await this.toReview(instalment, attempt, error instanceof ProviderError ? error.code : 'INTERNAL');
      log.error('ALERT card charge refused by the gateway: instalment marked for review', { error });
      return 'review';
    }
    if (charge.outcome === 'approved') return this.approved(instalment, attempt, charge, log);
    if (options.enrollment) return this.declinedAtEnrollment(instalment, attempt, charge, log);
    return this.declined(instalment, attempt, charge, now, log);
  }

  /**
   * The attempt to send: the unfinished one (same merchantOrderId), or a new one written before any call. First the
   * lease is renewed, fenced by its token, so that it covers this one gateway call: a batch that took longer than
   * its lease finds its later instalments taken over and skips them (null) instead of sending them a second time.
   */
  private async attemptToSend(instalment: Due): Promise<Attempt | null> {
    return this.db.transaction(async (tx) => {
      const renewed = await tx.query(
        `UPDATE instalments SET locked_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_token = $2 AND status = 'scheduled'`,
        [instalment.id, instalment.lease_token, this.config.leaseSeconds],
      );
      if (renewed.rowCount !== 1) return null;
      const { rows } = await tx.query<Attempt>(
        'SELECT id, attempt, merchant_order_id, status, sends FROM charge_attempts WHERE instalment_id = $1 ORDER BY attempt DESC LIMIT 1',
        [instalment.id],
      );
      let attempt = rows[0];
      if (!attempt || attempt.status !== 'sending') {
        const number = (attempt?.attempt ?? 0) + 1;
        const inserted = await tx.query<Attempt>(
          `INSERT INTO charge_attempts (instalment_id, attempt, merchant_order_id, status)
           VALUES ($1, $2, $3, 'sending') RETURNING id, attempt, merchant_order_id, status, sends`,
          [instalment.id, number, `${instalment.reference}-${instalment.number}-${number}`],
        );
        attempt = inserted.rows[0]!;
      }
      await tx.query('UPDATE charge_attempts SET sends = sends + 1, updated_at = now() WHERE id = $1', [attempt.id]);
      return { ...attempt, sends: attempt.sends + 1 };
    });
  }

  private async approved(instalment: Due, attempt: Attempt, charge: CardCharge, log: Logger): Promise<'approved'> {
    await this.db.transaction(async (tx) => {
      // Serialises the instalments of one subscription, so that the last one paid sees all the others paid.
      await tx.query('SELECT id FROM subscriptions WHERE id = $1 FOR UPDATE', [instalment.subscription_id]);
      await this.recordAnswer(tx, attempt, 'approved', charge);
      await tx.query(
        `UPDATE instalments SET status = 'paid', paid_at = now(), locked_until = NULL, updated_at = now() WHERE id = $1`,
        [instalment.id],
      );
      await insertPayment(tx, {
        id: `pay_${attempt.merchant_order_id}`, orderId: instalment.order_id, provider: 'card', status: 'paid',
        amount: instalment.amount_centavos, instalmentNumber: instalment.number, paymentUrl: null,
      });
      await tx.query(
        `UPDATE payments SET provider_reference = $3, paid_at = now(), provider_status = 'approved'
         WHERE order_id = $1 AND provider = 'card' AND instalment_number = $2`,
        [instalment.order_id, instalment.number, charge.orderId],
      );
      await tx.query(
        `UPDATE subscriptions SET status = 'completed', updated_at = now() WHERE id = $1
         AND NOT EXISTS (SELECT 1 FROM instalments WHERE subscription_id = $1 AND status <> 'paid')`,
        [instalment.subscription_id],
      );
      await this.event(tx, 'charge.succeeded', instalment, attempt, {
        authorizationNumber: charge.authorizationNumber, gatewayOrderId: charge.orderId,
      });
    });
    log.info('card charge approved');
    return 'approved';
  }

  private async declined(instalment: Due, attempt: Attempt, charge: CardCharge, now: Date, log: Logger): Promise<'declined' | 'pastDue'> {
    const declines = instalment.declines + 1;
    const delayHours = this.config.dunningDelaysHours[declines - 1];
    const final = delayHours === undefined;
    await this.db.transaction(async (tx) => {
      await this.recordAnswer(tx, attempt, 'rejected', charge);
      await tx.query(
        `UPDATE instalments SET declines = $2, status = $3, next_attempt_at = $4, locked_until = NULL, updated_at = now()
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
      await tx.query(`UPDATE instalments SET next_attempt_at = NULL, locked_until = NULL, updated_at = now() WHERE id = $1`, [instalment.id]);
      await tx.query(`UPDATE subscriptions SET status = 'pending_card', updated_at = now() WHERE id = $1`, [instalment.subscription_id]);
      await this.event(tx, 'charge.failed', instalment, attempt, { responseCode: charge.responseCode, atEnrollment: true });
    });
    log.info('card declined at enrollment', { responseCode: charge.responseCode });
    return 'declined';
  }

  private async toReview(instalment: Due, attempt: Attempt, reason: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE charge_attempts SET status = 'review', error = $2, updated_at = now() WHERE id = $1`, [attempt.id, reason]);
      await tx.query(`UPDATE instalments SET status = 'review', locked_until = NULL, updated_at = now() WHERE id = $1`, [instalment.id]);
    });
  }

  private async release(tx: Queryable, instalmentId: string, nextAttemptAt: Date): Promise<void> {
    await tx.query(
      `UPDATE instalments SET locked_until = NULL, next_attempt_at = $2, updated_at = now() WHERE id = $1`,
      [instalmentId, nextAttemptAt],
    );
  }

  private async recordAnswer(tx: Queryable, attempt: Attempt, status: 'approved' | 'rejected', charge: CardCharge): Promise<void> {
    await tx.query(
      `UPDATE charge_attempts SET status = $2, response_code = $3, response_description = $4, authorization_number = $5,
         reference_number = $6, gateway_order_id = $7, error = NULL, updated_at = now() WHERE id = $1`,
      [attempt.id, status, charge.responseCode, charge.responseDescription, charge.authorizationNumber, charge.referenceNumber, charge.orderId],
    );
  }

  private async event(
    tx: Queryable,
    type: 'charge.succeeded' | 'charge.failed' | 'subscription.past_due' | 'subscription.cancelled',
    instalment: Due,
    attempt: Attempt,
    extra: Record<string, unknown>,
  ): Promise<void> {
    await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, type, {
      reference: instalment.reference,
      subscriptionId: instalment.subscription_id,
      instalment: { number: instalment.number, of: instalment.instalments, amount: instalment.amount_centavos, currency: instalment.currency },
      merchantOrderId: attempt.merchant_order_id,
      ...extra,
    });
  }
}
