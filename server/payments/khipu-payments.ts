/**
 * Khipu payments of our orders: created once, marked paid only on Khipu's own word (fetched with the notification
 * token, never trusted from the notification itself) and only when receiver, status, amount, currency and
 * transaction id all match. The same code settles notifications and the poller's checks.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.js';
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
   * a double submit from creating two payments.
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
      await store.releasePaymentCreation(this.db, payment.id);
      throw error;
    }
    await store.markPaymentCreated(this.db, payment.id, {
      providerReference: created.paymentId,
      paymentUrl: created.paymentUrl,
      expiresAt,
      nextCheckAt: new Date(this.now().getTime() + this.config.pollAfterSeconds * 1000),
    });
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

  /** Compares Khipu's payment with ours and, when everything matches and it is done, marks ours paid once. */
  async settle(
    khipuPayment: KhipuPayment,
    source: 'notification' | 'poll' | 'admin',
  ): Promise<{ outcome: NotificationOutcome; paymentId: string | null; detail?: Record<string, unknown> }> {
    const payment = await store.findPaymentByProviderReference(this.db, 'khipu', khipuPayment.paymentId);
    if (!payment) return { outcome: 'unknown_payment', paymentId: null };
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
        paymentId: payment.id, reference: order.reference, source, mismatches,
      });
      return { outcome: 'mismatch', paymentId: payment.id, detail: { mismatches } };
    }
    if (khipuPayment.status !== 'done') {
      if (khipuPayment.status === 'verifying') await store.setOpenPaymentStatus(this.db, payment.id, 'verifying', 'verifying');
      return { outcome: 'not_done', paymentId: payment.id, detail: { status: khipuPayment.status } };
    }
    const paidAt = khipuPayment.conciliationDate ? new Date(khipuPayment.conciliationDate) : this.now();
    const madePaid = await this.db.transaction(async (tx) => {
      const changed = await store.markPaymentPaid(tx, payment.id, paidAt, khipuPayment.statusDetail || 'done');
      if (changed) {
        await enqueueMerchantEvent(tx, this.config.merchantWebhookUrl, 'order.paid', {
          reference: order.reference, policy: order.policy, product: order.product,
          payment: {
            id: payment.id, method: 'khipu', instalment: payment.instalmentNumber, amount: payment.amount,
            currency: payment.currency, paidAt: paidAt.toISOString(), providerReference: khipuPayment.paymentId,
          },
        });
      }
      return changed;
    });
    if (madePaid) this.logger.info('payment paid', { paymentId: payment.id, reference: order.reference, source });
    return { outcome: madePaid ? 'paid' : 'duplicate', paymentId: payment.id };
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
