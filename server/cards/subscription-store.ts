/** SQL for card subscriptions: the card on file, the subscription and its instalments. */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.js';
import { chargeableAt, dueDate } from './schedule.js';

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url')}`;

export type NewSubscription = {
  orderId: string;
  /** Only what the tokenizer gave back: never a card number or CVV. */
  card: { customerId: string; token: string; brand: string; last4: string };
  currency: string;
  instalmentAmount: number;
  instalments: number;
  /** YYYY-MM-DD of the first charge (Mexico City). */
  firstChargeDate: string;
  payDay: number;
  /** When instalment 1 becomes due (now, for a charge at enrollment). */
  firstDueAt: Date;
};

/** Creates the card, the subscription and every instalment (1 due at `firstDueAt`, the rest on the pay day). */
export async function createSubscription(tx: Queryable, input: NewSubscription): Promise<{ subscriptionId: string; instalmentIds: string[] }> {
  const cardId = id('card');
  await tx.query(
    `INSERT INTO payment_cards (id, order_id, customer_id, token, brand, last4) VALUES ($1, $2, $3, $4, $5, $6)`,
    [cardId, input.orderId, input.card.customerId, input.card.token, input.card.brand, input.card.last4],
  );
  const subscriptionId = id('sub');
  await tx.query(
    `INSERT INTO subscriptions (id, order_id, card_id, status, pay_day) VALUES ($1, $2, $3, 'active', $4)`,
    [subscriptionId, input.orderId, cardId, input.payDay],
  );
  const instalmentIds: string[] = [];
  for (let number = 1; number <= input.instalments; number++) {
    const due = dueDate(input.firstChargeDate, input.payDay, number);
    const instalmentId = id('ins');
    instalmentIds.push(instalmentId);
    await tx.query(
      `INSERT INTO instalments (id, subscription_id, number, currency, amount_centavos, due_date, status, next_attempt_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7)`,
      [instalmentId, subscriptionId, number, input.currency, input.instalmentAmount, due, number === 1 ? input.firstDueAt : chargeableAt(due)],
    );
  }
  return { subscriptionId, instalmentIds };
}
