/**
 * Khipu payments of our orders: created once, marked paid only on Khipu's own word (fetched with the notification
 * token, never trusted from the notification itself) and only when receiver, status, amount, currency and
 * transaction id all match. The same code settles notifications and the poller's checks.
 *
 * A creation whose answer is lost (timeout, reset, a broken body, a 5xx other than Khipu's 503) may have created a
 * payment at Khipu that we never heard of, and API 2.0 cannot look payments up by transaction_id. So the attempt is
 * counted as unknown and the customer's retry creates another payment (they are never left without a link); every
 * payment we create carries our payment id in `custom`, and a paid Khipu payment we do not hold is recognised by it:
 * it settles our payment when ours is not paid yet (and the spare pending one is deleted at Khipu), or, when ours is
 * already paid (or cancelled), it is flagged for review and refund (payment_reviews, `payment.needs_review`), never
 * counted as a second instalment.
 */
import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../db/database.js';
import type { Logger } from '../log.js';
import { AppError, ProviderError } from '../errors.js';
import type { KhipuApi, KhipuPayment } from '../providers/khipu/khipu-api.js';
import { enqueueMerchantEvent } from '../webhooks/merchant-webhooks.js';
import * as checkouts from '../checkouts/checkout-store.js';
import type { OrderRecord, PaymentRecord } from '../checkouts/checkout-store.js';
import * as store from './payment-store.js';

export type KhipuPaymentsConfig = {
  receiverId: string;
  /** Our notification endpoint as Khipu reaches it. */
  notifyUrl: string;
  paymentExpiryHours: number;
  pollAfterSeconds: number;
  pollIntervalSeconds: number;
  merchantWebhookUrl: string | null;
};

export type NotificationOutcome =
  | 'paid' // this notification made the payment paid
  | 'duplicate' // already paid: nothing more to do
  | 'not_done' // Khipu says it is not done yet; the poller will look again
  | 'mismatch' // Khipu's payment does not match our order: recorded and alerted, never paid
  | 'needs_review' // a second paid Khipu payment for one of ours (or for a cancelled one): flagged for refund, not counted
  | 'unknown_payment'; // a real Khipu payment that is not one of ours

/** A creation claim this old belongs to a process that died mid-call. */
const STALE_CREATION_SECONDS = 120;

export class KhipuPayments {
  constructor(
    private readonly db: Database,
    private readonly khipu: KhipuApi,
    private readonly config: KhipuPaymentsConfig,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Creates the Khipu payment behind our payment row, once: concurrent or repeated calls find it created, or find
   * the creation claimed and answer SUBMIT_IN_PROGRESS. Khipu has no idempotency key, so this claim is what keeps
   * a double submit from creating two payments. A failed call releases the claim, so the customer's retry gets a
   * payable link; when Khipu may have created the payment anyway (outcome unknown) that is counted on the payment,
   * and the payment Khipu may hold is matched by `custom` if it is ever paid (settle).
   */
  async ensureCreated(
    payment: PaymentRecord,
    order: OrderRecord,
    options: { payerEmail: string; payerName: string | null; bankId?: string | undefined; returnUrl: string },
  ): Promise<void> {
    if (payment.providerReference) return;
    const claimed = await store.claimPaymentCreation(this.db, payment.id, STALE_CREATION_SECONDS);
    if (!claimed) {
      const current = await store.findPayment(this.db, payment.id);
      if (current?.providerReference) return;
      throw new AppError('SUBMIT_IN_PROGRESS');
    }
    if (claimed.unknownCreations > 0) {
      this.logger.warn('khipu payment created again after an attempt with an unknown outcome; either is matched by custom', {
        paymentId: payment.id, reference: order.reference,
      });
    }
    const expiresAt = new Date(this.now().getTime() + this.config.paymentExpiryHours * 3_600_000);
    const cancelUrl = new URL(options.returnUrl);
    cancelUrl.searchParams.set('kasu_payment', 'cancelled');
    let created;
    try {
      created = await this.khipu.createPayment({
        subject: `KASU ${order.product} · ${order.reference}`,
        currency: payment.currency,
        amount: payment.amount,
        transactionId: order.reference,
        body: `Pago ${payment.instalmentNumber} de ${order.instalments} de tu plan KASU ${order.product}` +
          (order.policy ? ` (póliza ${order.policy})` : ''),
        custom: payment.id,
        returnUrl: options.returnUrl,
        cancelUrl: cancelUrl.toString(),
        notifyUrl: this.config.notifyUrl,
        notifyApiVersion: '1.3',
        expiresDate: expiresAt,
        payerEmail: options.payerEmail,
        ...(options.payerName ? { payerName: options.payerName } : {}),
        ...(options.bankId ? { bankId: options.bankId } : {}),
      });
    } catch (error) {
      const outcomeUnknown = creationOutcomeUnknown(error);
      await store.releasePaymentCreation(this.db, payment.id, outcomeUnknown);
      if (outcomeUnknown) {
        this.logger.warn('khipu payment creation: outcome unknown, Khipu may hold a payment we never heard of', {
          paymentId: payment.id, reference: order.reference, error,
        });
      }
      throw error;
    }
    const recorded = await store.markPaymentCreated(this.db, payment.id, {
      providerReference: created.paymentId,
      paymentUrl: created.paymentUrl,
      expiresAt,
      nextCheckAt: new Date(this.now().getTime() + this.config.pollAfterSeconds * 1000),
    });
    if (!recorded) {
      // Paid meanwhile through an earlier payment of ours whose answer had been lost: this one must not be paid too.
      this.logger.warn('khipu payment created for a payment settled meanwhile; deleting it', {
        paymentId: payment.id, reference: order.reference, khipuPaymentId: created.paymentId,
      });
      await this.deleteSpare(payment.id, created.paymentId);
      return;
    }
    this.logger.info('khipu payment created', { paymentId: payment.id, reference: order.reference, khipuPaymentId: created.paymentId });
  }

  /**
   * A notification (API 1.3): look the payment up by its token at Khipu and settle it. Stores what happened
   * whatever it is; a token Khipu does not know is stored and refused (NOT_FOUND), nothing paid.
   */
  async handleNotification(apiVersion: string, token: string): Promise<NotificationOutcome> {
    let khipuPayment: KhipuPayment;
    try {
      khipuPayment = await this.khipu.getPaymentByNotificationToken(token);
    } catch (error) {
      if (error instanceof ProviderError && error.code === 'NOT_FOUND') {
        await store.recordNotification(this.db, {
          provider: 'khipu', token, apiVersion, outcome: 'unknown_token', paymentId: null, providerPaymentId: null,
        });
        this.logger.warn('khipu notification with a token Khipu does not know', { apiVersion });
      }
      throw error;
    }
    const { outcome, paymentId, detail } = await this.settle(khipuPayment, 'notification');
    await store.recordNotification(this.db, {
      provider: 'khipu', token, apiVersion, outcome, paymentId, providerPaymentId: khipuPayment.paymentId, ...(detail ? { detail } : {}),
    });
    return outcome;
  }

  /**
   * Compares Khipu's payment with ours and, when everything matches and it is done, marks ours paid once. A Khipu
   * payment we do not hold (its creation answer was lost) is ours when its `custom` names one of our Khipu payments
   * (and receiver, amount, currency and transaction id match): see settleUnrecorded.
   */
  async settle(
    khipuPayment: KhipuPayment,
    source: 'notification' | 'poll' | 'admin',
  ): Promise<{ outcome: NotificationOutcome; paymentId: string | null; detail?: Record<string, unknown> }> {
    const held = await store.findPaymentByProviderReference(this.db, 'khipu', khipuPayment.paymentId);
    const payment = held ?? (await this.paymentNamedBy(khipuPayment));
    if (!payment) return { outcome: 'unknown_payment', paymentId: null };
    const unrecorded = held ? {} : { unrecorded: true, khipuPaymentId: khipuPayment.paymentId };
    const order = await this.orderOf(payment);
    const mismatches: Record<string, { expected: unknown; actual: unknown }> = {};
    const expect = (field: string, expected: unknown, actual: unknown) => {
      if (expected !== actual) mismatches[field] = { expected, actual };
    };
    expect('receiver_id', this.config.receiverId, khipuPayment.receiverId);
    expect('amount', payment.amount, khipuPayment.amount);
    expect('currency', payment.currency, khipuPayment.currency);
    expect('transaction_id', order.reference, khipuPayment.transactionId);
    if (Object.keys(mismatches).length) {
      this.logger.error('ALERT khipu payment does not match its order: not marked paid', {
        paymentId: payment.id, reference: order.reference, source, mismatches, ...unrecorded,
      });
      return { outcome: 'mismatch', paymentId: payment.id, detail: { mismatches, ...unrecorded } };
    }
    if (khipuPayment.status !== 'done') {
      if (held && khipuPayment.status === 'verifying') await store.setOpenPaymentStatus(this.db, payment.id, 'verifying', 'verifying');
      return { outcome: 'not_done', paymentId: payment.id, detail: { status: khipuPayment.status, ...unrecorded } };
    }
    const paidAt = khipuPayment.conciliationDate ? new Date(khipuPayment.conciliationDate) : this.now();
    if (held) {
      const madePaid = await this.db.transaction(async (tx) => {
        const changed = await store.markPaymentPaid(tx, payment.id, khipuPayment.paymentId, paidAt, khipuPayment.statusDetail || 'done');
        if (changed) await this.enqueuePaid(tx, order, payment, khipuPayment.paymentId, paidAt);
        return changed;
      });
      if (madePaid) {
        this.logger.info('payment paid', { paymentId: payment.id, reference: order.reference, source });
        return { outcome: 'paid', paymentId: payment.id };
      }
      // Not by this call: paid already through this very Khipu payment (a repeated notification), or our payment
      // moved meanwhile to another Khipu payment of ours, which makes this one a payment we no longer hold.
      const current = await store.findPayment(this.db, payment.id);
      if (current?.providerReference === khipuPayment.paymentId) return { outcome: 'duplicate', paymentId: payment.id };
    }
    return this.settleUnrecorded(payment, order, khipuPayment, paidAt, source);
  }

  /**
   * A paid Khipu payment of ours that our payment does not hold. When ours is still open it takes this one (paid)
   * and the Khipu payment it held is deleted at Khipu, so that the customer cannot pay it too; when ours is already
   * paid through another one, or cancelled, this one is flagged for review and refund, once, with a merchant event.
   */
  private async settleUnrecorded(
    payment: PaymentRecord,
    order: OrderRecord,
    khipuPayment: KhipuPayment,
    paidAt: Date,
    source: 'notification' | 'poll' | 'admin',
  ): Promise<{ outcome: NotificationOutcome; paymentId: string | null; detail?: Record<string, unknown> }> {
    const khipuPaymentId = khipuPayment.paymentId;
    let expected = false;
    const result = await this.db.transaction(async (tx) => {
      const current = await store.lockPayment(tx, payment.id);
      if (!current) throw new Error(`payment ${payment.id} vanished`);
      expected = current.unknownCreations > 0;
      const adopted = await store.adoptPaidProviderPayment(tx, payment.id, {
        providerReference: khipuPaymentId, paymentUrl: khipuPayment.paymentUrl, paidAt, providerStatus: khipuPayment.statusDetail || 'done',
      });
      if (adopted) {
        await this.enqueuePaid(tx, order, payment, khipuPaymentId, paidAt);
        return { kind: 'adopted' as const, replaced: current.providerReference, replacedStatus: current.status };
      }
      if (current.providerReference === khipuPaymentId) return { kind: 'repeated' as const };
      const reason: store.PaymentReviewReason = current.status === 'paid' ? 'duplicate' : 'payment_cancelled';
      const flagged = await store.flagPaymentForReview(tx, {
        provider: 'khipu', providerReference: khipuPaymentId, paymentId: payment.id, reason, currency: khipuPayment.currency,
        amount: khipuPayment.amount, paidAt, detail: { paymentStatus: current.status, heldReference: current.providerReference },
      });
      if (flagged) {
        await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, 'payment.needs_review', {
          reference: order.reference, policy: order.policy, reason,
          payment: {
            id: payment.id, method: 'khipu', instalment: payment.instalmentNumber, amount: payment.amount, currency: payment.currency,
            status: current.status, providerReference: current.providerReference,
          },
          providerPayment: { providerReference: khipuPaymentId, amount: khipuPayment.amount, currency: khipuPayment.currency, paidAt: paidAt.toISOString() },
        });
      }
      return { kind: 'flagged' as const, reason, first: flagged, heldReference: current.providerReference };
    });

    const detail = { unrecorded: true, khipuPaymentId, expected };
    if (result.kind === 'repeated') return { outcome: 'duplicate', paymentId: payment.id };
    if (result.kind === 'adopted') {
      const fields = { paymentId: payment.id, reference: order.reference, source, khipuPaymentId, replaced: result.replaced };
      if (expected) this.logger.warn('payment paid through an earlier khipu payment whose creation answer was lost', fields);
      else this.logger.error('ALERT payment paid through a khipu payment of ours we had no record of', fields);
      const spare = result.replaced && result.replaced !== khipuPaymentId && result.replacedStatus !== 'new' ? result.replaced : null;
      if (spare) await this.deleteSpare(payment.id, spare);
      return { outcome: 'paid', paymentId: payment.id, detail: { ...detail, ...(result.replaced ? { replaced: result.replaced } : {}) } };
    }
    if (!result.first) return { outcome: 'duplicate', paymentId: payment.id, detail: { ...detail, reason: result.reason } };
    this.logger.error('ALERT a second khipu payment was paid for one payment: flagged for review and refund, not counted', {
      paymentId: payment.id, reference: order.reference, source, khipuPaymentId, reason: result.reason, heldReference: result.heldReference,
    });
    return { outcome: 'needs_review', paymentId: payment.id, detail: { ...detail, reason: result.reason } };
  }

  /** Our Khipu payment named by a Khipu payment's `custom` (every payment we create carries our payment id there). */
  private async paymentNamedBy(khipuPayment: KhipuPayment): Promise<PaymentRecord | null> {
    const id = khipuPayment.custom;
    if (!id || !/^pay_[\w-]{1,64}$/.test(id)) return null;
    const payment = await store.findPayment(this.db, id);
    return payment?.provider === 'khipu' ? payment : null;
  }

  private async enqueuePaid(tx: Queryable, order: OrderRecord, payment: PaymentRecord, khipuPaymentId: string, paidAt: Date): Promise<void> {
    await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, 'order.paid', {
      reference: order.reference, policy: order.policy, product: order.product,
      payment: {
        id: payment.id, method: 'khipu', instalment: payment.instalmentNumber, amount: payment.amount,
        currency: payment.currency, paidAt: paidAt.toISOString(), providerReference: khipuPaymentId,
      },
    });
  }

  /**
   * Deletes a pending Khipu payment of ours that is no longer needed (its payment was settled through another), so
   * that the customer cannot pay it too. Best effort: if it cannot be deleted (the customer is paying it) and is
   * paid, its notification flags it for review.
   */
  private async deleteSpare(paymentId: string, khipuPaymentId: string): Promise<void> {
    try {
      await this.khipu.deletePayment(khipuPaymentId);
      this.logger.info('spare khipu payment deleted', { paymentId, khipuPaymentId });
    } catch (error) {
      this.logger.warn('spare khipu payment could not be deleted; if it is paid it will be flagged for review', {
        paymentId, khipuPaymentId, error,
      });
    }
  }

  /** The poller: payments still open a while after creation are asked about, in case a notification never came. */
  async checkDuePayments(limit = 50): Promise<{ checked: number; paid: number; expired: number; failed: number }> {
    const due = await store.leaseDuePaymentChecks(this.db, 'khipu', this.config.pollAfterSeconds, this.config.pollIntervalSeconds, limit);
    const result = { checked: 0, paid: 0, expired: 0, failed: 0 };
    for (const payment of due) {
      try {
        const khipuPayment = await this.khipu.getPayment(payment.providerReference!);
        result.checked += 1;
        const settled = await this.settle(khipuPayment, 'poll');
        if (settled.outcome === 'paid') result.paid += 1;
        else if (settled.outcome === 'not_done' && payment.expiresAt && payment.expiresAt.getTime() < this.now().getTime()) {
          if (await this.expire(payment)) result.expired += 1;
        }
      } catch (error) {
        result.failed += 1;
        this.logger.warn('khipu payment check failed; it will be retried', { paymentId: payment.id, error });
      }
    }
    return result;
  }

  private async expire(payment: PaymentRecord): Promise<boolean> {
    const order = await this.orderOf(payment);
    return this.db.transaction(async (tx) => {
      const changed = await store.setOpenPaymentStatus(tx, payment.id, 'expired', 'expired');
      if (changed) {
        await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, 'payment.failed', {
          reference: order.reference, policy: order.policy,
          payment: { id: payment.id, method: 'khipu', instalment: payment.instalmentNumber, amount: payment.amount, currency: payment.currency, reason: 'expired' },
        });
      }
      return changed;
    });
  }

  // ---------- admin ----------

  async refund(paymentId: string, amount?: number): Promise<PaymentRecord> {
    const payment = await this.requireKhipuPayment(paymentId);
    if (payment.status !== 'paid') throw new AppError('VALIDATION_FAILED', { fields: { payment: 'NOT_PAID' } });
    const refundable = payment.amount - payment.refunded;
    const toRefund = amount ?? refundable;
    if (toRefund <= 0 || toRefund > refundable) throw new AppError('VALIDATION_FAILED', { fields: { amount: 'MORE_THAN_REFUNDABLE' } });
    await this.khipu.refund(payment.providerReference!, amount === undefined ? undefined : toRefund);
    await store.addRefund(this.db, payment.id, toRefund);
    this.logger.info('khipu payment refunded', { paymentId, amount: toRefund });
    return (await store.findPayment(this.db, paymentId))!;
  }

  /**
   * Refunds, in full, a Khipu payment flagged in payment_reviews (a second payment for one instalment). The review
   * is claimed first (needs_review → refunding), so two clicks refund once; a failed refund puts it back.
   */
  async refundReview(providerReference: string): Promise<store.PaymentReview> {
    const claimed = await store.setPaymentReviewStatus(this.db, 'khipu', providerReference, 'needs_review', 'refunding');
    if (!claimed) {
      const known = await this.db.query('SELECT 1 FROM payment_reviews WHERE provider = $1 AND provider_reference = $2', ['khipu', providerReference]);
      if (!known.rows.length) throw new AppError('NOT_FOUND');
      throw new AppError('VALIDATION_FAILED', { fields: { review: 'NOT_REFUNDABLE' } });
    }
    try {
      await this.khipu.refund(providerReference);
    } catch (error) {
      await store.setPaymentReviewStatus(this.db, 'khipu', providerReference, 'refunding', 'needs_review');
      throw error;
    }
    const refunded = await store.setPaymentReviewStatus(this.db, 'khipu', providerReference, 'refunding', 'refunded');
    this.logger.info('khipu payment under review refunded', { paymentId: claimed.paymentId, khipuPaymentId: providerReference, amount: claimed.amount });
    return refunded ?? claimed;
  }

  async cancel(paymentId: string): Promise<PaymentRecord> {
    const payment = await this.requireKhipuPayment(paymentId);
    if (payment.status !== 'pending') throw new AppError('VALIDATION_FAILED', { fields: { payment: 'NOT_PENDING' } });
    await this.khipu.deletePayment(payment.providerReference!);
    await store.setOpenPaymentStatus(this.db, payment.id, 'cancelled', 'deleted');
    return (await store.findPayment(this.db, paymentId))!;
  }

  async confirm(paymentId: string): Promise<PaymentRecord> {
    const payment = await this.requireKhipuPayment(paymentId);
    if (payment.status !== 'paid') throw new AppError('VALIDATION_FAILED', { fields: { payment: 'NOT_PAID' } });
    await this.khipu.confirmPayment(payment.providerReference!);
    return payment;
  }

  private async requireKhipuPayment(paymentId: string): Promise<PaymentRecord> {
    const payment = await store.findPayment(this.db, paymentId);
    if (!payment || payment.provider !== 'khipu' || !payment.providerReference) throw new AppError('NOT_FOUND');
    return payment;
  }

  private async orderOf(payment: PaymentRecord): Promise<OrderRecord> {
    const order = await checkouts.findOrderById(this.db, payment.orderId);
    if (!order) throw new Error(`payment ${payment.id} has no order`);
    return order;
  }
}

export const newPaymentId = () => `pay_${randomBytes(12).toString('base64url')}`;

/**
 * Whether a failed creation call may still have created the payment at Khipu. Definitely not: a refusal (4xx: bad
 * data, signature, rate limit), Khipu's own 503 ServiceError ("Error de operación"), or a connection that failed
 * before the request left. Unknown: a timeout or reset after sending, a 2xx whose body was broken, any other 5xx (a
 * gateway in front of Khipu), or an error that is not Khipu's answer at all.
 */
export function creationOutcomeUnknown(error: unknown): boolean {
  if (!(error instanceof ProviderError)) return true;
  if (error.code !== 'PROVIDER_UNAVAILABLE') return false;
  if (error.upstreamStatus === 503) return false;
  return error.detail?.outcomeUnknown === true;
}
