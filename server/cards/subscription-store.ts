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

/**
 * Creates the card, the subscription and every instalment (1 due at `firstDueAt`, the rest on the pay day), in one
 * statement.
 */
export async function createSubscription(tx: Queryable, input: NewSubscription): Promise<{ subscriptionId: string; instalmentIds: string[] }> {
  const cardId = id('card');
  const subscriptionId = id('sub');
  const numbers = Array.from({ length: input.instalments }, (_, i) => i + 1);
  const instalmentIds = numbers.map(() => id('ins'));
  const dueDates = numbers.map((number) => dueDate(input.firstChargeDate, input.payDay, number));
  const chargeableFrom = numbers.map((number, i) => (number === 1 ? input.firstDueAt : chargeableAt(dueDates[i]!)).toISOString());
  await tx.query(
    `WITH card AS (
       INSERT INTO payment_cards (id, order_id, customer_id, token, brand, last4) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
     ),
     subscription AS (
       INSERT INTO subscriptions (id, order_id, card_id, status, pay_day) SELECT $7, $2, card.id, 'active', $8 FROM card RETURNING id
     )
     INSERT INTO instalments (id, subscription_id, number, currency, amount_centavos, due_date, status, next_attempt_at)
     SELECT x.id, subscription.id, x.number, $9, $10, x.due_date, 'scheduled', x.next_attempt_at::timestamptz
     FROM subscription, unnest($11::text[], $12::integer[], $13::text[], $14::text[]) AS x(id, number, due_date, next_attempt_at)`,
    [
      cardId, input.orderId, input.card.customerId, input.card.token, input.card.brand, input.card.last4,
      subscriptionId, input.payDay, input.currency, input.instalmentAmount, instalmentIds, numbers, dueDates, chargeableFrom,
    ],
  );
  return { subscriptionId, instalmentIds };
}
