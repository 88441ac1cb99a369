/**
 * Card payments with recurring enrollment. The card is typed into the gateway's own tokenizer frame (PCI DSS SAQ A:
 * no card number, CVV or expiry ever reaches us); we keep only its token, brand and last 4 digits. Enrollment
 * records the customer's explicit recurring-charge consent, creates the schedule and charges the first instalment
 * at once through the charge engine, which charges every later instalment on its due date.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CardSessionResponse, InstalmentView, SubmitRequest } from '../../shared/contract.js';
import { AppError } from '../errors.js';
import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import type { CardApi } from '../providers/card/card-api.js';
import type { CheckoutRecord, OrderRecord } from '../checkouts/checkout-store.js';
import { insertConsentEvents } from '../checkouts/checkout-store.js';
import { MX_STATES } from '../../shared/mexico.js';
import type { ChargeEngine } from './charge-engine.js';
import { createSubscription } from './subscription-store.js';
import { mexicoCityDate, payDayOf } from './schedule.js';

export type CardPaymentsConfig = {
  merchantId: string;
  /** The tokenizer page (the gateway's; in sandbox mode the simulator's). */
  tokenizerUrl: string;
  /** Partner origins allowed to receive the token; empty = any (sandbox). */
  allowedOrigins: string[];
  recurringConsent: { version: string; es: string; en: string };
};

/** A first charge that another request holds is waited for this long (polled this often) before SUBMIT_IN_PROGRESS. */
const OTHER_CHARGE_WAIT_MS = 15_000;
const OTHER_CHARGE_POLL_MS = 150;

type SubscriptionRow = { id: string; status: string; brand: string; last4: string };

export class CardPayments {
  constructor(
    private readonly db: Database,
    private readonly card: CardApi,
    private readonly engine: ChargeEngine,
    private readonly config: CardPaymentsConfig,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Ours and stable: the same person is the same gateway customer across purchases, without exposing the CURP. */
  customerIdFor(curp: string): string {
    return `kc-${createHash('sha256').update(`kasu-checkout:${curp}`).digest('hex').slice(0, 40)}`;
  }

  /** Makes sure the gateway knows the customer (the tokenizer needs it) and answers the frame to embed. */
  async session(record: CheckoutRecord, origin: string): Promise<CardSessionResponse> {
    const pageOrigin = new URL(origin).origin;
    if (this.config.allowedOrigins.length && !this.config.allowedOrigins.includes(pageOrigin)) {
      throw new AppError('PROVIDER_CONFIG_ERROR', { detail: { reason: 'card session origin not allowed', origin: pageOrigin } });
    }
    if (!record.contact || !record.address) throw new AppError('CHECKOUT_INCOMPLETE', { fields: { contact: 'REQUIRED' } });
    const customerId = this.customerIdFor(record.curp);
    await this.card.ensureCustomer({
      customerId,
      contractNumber: record.id.slice(-20),
      email: record.contact.email,
      phoneNumber: record.contact.phone,
      address: `${record.address.street} ${record.address.number}, ${record.address.neighborhood}, ${record.address.municipality}, ${MX_STATES[record.address.state]}`,
      zipCode: record.address.postalCode,
    });
    const url = new URL(this.config.tokenizerUrl);
    url.searchParams.set('merchantId', this.config.merchantId);
    url.searchParams.set('customerId', customerId);
    url.searchParams.set('origin', pageOrigin);
    return { tokenizerUrl: url.toString(), tokenizerOrigin: url.origin, recurringConsent: this.config.recurringConsent };
  }

  /** Before registration: a card payment needs the tokenizer's card and the recurring consent. */
  assertReady(request: SubmitRequest): void {
    const fields: Record<string, string> = {};
    if (!request.card) fields.card = 'REQUIRED';
    if (request.recurringConsent !== true) fields.recurringConsent = 'REQUIRED';
    if (Object.keys(fields).length) throw new AppError('VALIDATION_FAILED', { fields });
  }

  /**
   * After registration: enrolls the card (or replaces a declined one) and charges the first instalment now.
   * Throws CARD_DECLINED when the bank says no; the customer may then submit another card.
   */
  async enroll(record: CheckoutRecord, order: OrderRecord, request: SubmitRequest, context: { ip: string | null; userAgent: string | null }): Promise<void> {
    this.assertReady(request);
    const card = request.card!;
    const existing = await this.subscriptionOf(order.id);
    if (existing?.status === 'active' || existing?.status === 'completed') return this.chargeFirst(existing.id, order);
    // Only a subscription waiting for a card after a decline takes a new one; a cancelled one stays cancelled.
    if (existing && existing.status !== 'pending_card') throw new AppError('CHECKOUT_CLOSED');
    const now = this.now();
    const instalmentId = await this.db.transaction(async (tx) => {
      // One enrolment at a time per order: a submit racing this one (another tab) waits here, then sees what it did.
      await tx.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [order.id]);
      const current = await tx.query<{ status: string }>('SELECT status FROM subscriptions WHERE order_id = $1', [order.id]);
      if ((current.rows[0]?.status ?? null) !== (existing?.status ?? null)) return null;
      await insertConsentEvents(tx, [{
        checkoutId: record.id, document: 'recurring_charges', version: this.config.recurringConsent.version,
        url: this.config.tokenizerUrl, accepted: true, ip: context.ip, userAgent: context.userAgent,
      }]);
      const cardRow = { customerId: this.customerIdFor(record.curp), token: card.token, brand: card.brand, last4: card.last4 };
      if (existing) {
        // Declined before: the new card replaces it and the first instalment is due again now.
        const cardId = `card_${randomBytes(12).toString('base64url')}`;
        await tx.query(
          `INSERT INTO payment_cards (id, order_id, customer_id, token, brand, last4) VALUES ($1, $2, $3, $4, $5, $6)`,
          [cardId, order.id, cardRow.customerId, cardRow.token, cardRow.brand, cardRow.last4],
        );
        await tx.query(`UPDATE subscriptions SET card_id = $2, status = 'active', updated_at = now() WHERE id = $1`, [existing.id, cardId]);
        const { rows } = await tx.query<{ id: string }>(
          `UPDATE instalments SET next_attempt_at = $2, updated_at = now() WHERE subscription_id = $1 AND number = 1 RETURNING id`,
          [existing.id, now],
        );
        return rows[0]!.id;
      }
      const firstChargeDate = mexicoCityDate(now);
      const created = await createSubscription(tx, {
        orderId: order.id, card: cardRow, currency: order.currency, instalmentAmount: order.instalmentAmount,
        instalments: order.instalments, firstChargeDate, payDay: payDayOf(firstChargeDate), firstDueAt: now,
      });
      return created.instalmentIds[0]!;
    });
    if (instalmentId === null) {
      // Another request (a second tab) enrolled a card for this order meanwhile: the outcome of its charge is ours.
      const enrolled = await this.subscriptionOf(order.id);
      if (enrolled?.status === 'active' || enrolled?.status === 'completed') return this.chargeFirst(enrolled.id, order);
      if (enrolled?.status === 'pending_card') throw new AppError('CARD_DECLINED');
      throw new AppError('CHECKOUT_CLOSED');
    }
    await this.charge(instalmentId, order);
  }

  /** The first instalment of an enrolled card: charged now if it still is to be (or its charge in progress waited for). */
  private async chargeFirst(subscriptionId: string, order: OrderRecord): Promise<void> {
    const first = await this.db.query<{ status: string; id: string }>(
      `SELECT i.id, i.status FROM instalments i WHERE i.subscription_id = $1 AND i.number = 1`, [subscriptionId]);
    if (first.rows[0]?.status !== 'scheduled') return; // already charged (or under review)
    await this.charge(first.rows[0].id, order);
  }

  private async charge(instalmentId: string, order: OrderRecord): Promise<void> {
    const deadline = Date.now() + OTHER_CHARGE_WAIT_MS;
    for (;;) {
      const outcome = await this.engine.chargeNow(instalmentId, this.now());
      if (outcome !== null) {
        this.logger.info('first card instalment', { reference: order.reference, outcome });
        if (outcome === 'declined') throw new AppError('CARD_DECLINED');
        if (outcome === 'unknown') throw new AppError('PROVIDER_UNAVAILABLE', { detail: { reason: 'card charge outcome unknown' } });
        return;
      }
      // Not chargeable now: another request (a second tab) or a charge run holds it. Its outcome is ours.
      const { rows } = await this.db.query<{ status: string; subscription: string }>(
        `SELECT i.status, s.status AS subscription FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id
         WHERE i.id = $1`,
        [instalmentId],
      );
      const held = rows[0];
      if (held?.status === 'paid') return;
      // Declined in that attempt: at enrolment (waiting for another card) or in a charge run (dunning).
      if (held?.subscription === 'pending_card' || held?.subscription === 'past_due') throw new AppError('CARD_DECLINED');
      if (held?.status === 'review') throw new AppError('PROVIDER_UNAVAILABLE', { detail: { reason: 'card charge outcome unknown' } });
      if (!held || held.status !== 'scheduled' || held.subscription !== 'active') throw new AppError('CHECKOUT_CLOSED');
      if (Date.now() >= deadline) throw new AppError('SUBMIT_IN_PROGRESS');
      // Still held: wait for the other attempt. Given back unsent (or its lease over), the next turn charges it here.
      await new Promise((resolve) => setTimeout(resolve, OTHER_CHARGE_POLL_MS));
    }
  }

  private async subscriptionOf(orderId: string): Promise<SubscriptionRow | null> {
    const { rows } = await this.db.query<SubscriptionRow>(
      `SELECT s.id, s.status, c.brand, c.last4 FROM subscriptions s JOIN payment_cards c ON c.id = s.card_id WHERE s.order_id = $1`,
      [orderId],
    );
    return rows[0] ?? null;
  }

  async subscriptionView(orderId: string) {
    const subscription = await this.subscriptionOf(orderId);
    if (!subscription) return null;
    const { rows } = await this.db.query<{ number: number; due_date: string; amount_centavos: number; status: string }>(
      'SELECT number, due_date, amount_centavos, status FROM instalments WHERE subscription_id = $1 ORDER BY number',
      [subscription.id],
    );
    return {
      status: subscription.status as 'pending_card' | 'active' | 'past_due' | 'cancelled' | 'completed',
      card: { brand: subscription.brand, last4: subscription.last4 },
      instalments: rows.map((row): InstalmentView => ({
        number: row.number, dueDate: row.due_date, amount: Number(row.amount_centavos), status: row.status as InstalmentView['status'],
      })),
    };
  }
}
