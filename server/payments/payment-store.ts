/** SQL for payments at providers, their notifications, and the admin's view of orders. */
import type { Queryable } from '../db/database.js';
import { toPayment, type PaymentRecord } from '../checkouts/checkout-store.js';

export async function findPayment(db: Queryable, id: string): Promise<PaymentRecord | null> {
  const { rows } = await db.query('SELECT * FROM payments WHERE id = $1', [id]);
  return rows[0] ? toPayment(rows[0] as Parameters<typeof toPayment>[0]) : null;
}

export async function findPaymentByProviderReference(db: Queryable, provider: string, reference: string): Promise<PaymentRecord | null> {
  const { rows } = await db.query('SELECT * FROM payments WHERE provider = $1 AND provider_reference = $2', [provider, reference]);
  return rows[0] ? toPayment(rows[0] as Parameters<typeof toPayment>[0]) : null;
}

/**
 * Claims a payment whose provider side is not created yet ('new'), or whose creation claim went stale: the one step
 * that keeps two concurrent submits from creating two payments at the provider. Taking over a stale claim counts an
 * unknown creation: the process that held it died mid-call, perhaps after the provider created the payment.
 */
export async function claimPaymentCreation(db: Queryable, id: string, staleSeconds: number): Promise<PaymentRecord | null> {
  const { rows } = await db.query(
    `UPDATE payments SET status = 'creating', updated_at = now(),
       unknown_creations = unknown_creations + CASE WHEN status = 'creating' THEN 1 ELSE 0 END
     WHERE id = $1 AND provider_reference IS NULL
       AND (status = 'new' OR (status = 'creating' AND updated_at < now() - make_interval(secs => $2)))
     RETURNING *`,
    [id, staleSeconds],
  );
  return rows[0] ? toPayment(rows[0] as Parameters<typeof toPayment>[0]) : null;
}

/**
 * Records the provider's payment on our claimed row. False when the row is no longer being created by us: it was
 * settled meanwhile through an earlier provider payment of ours (see adoptPaidProviderPayment), so this one is spare.
 */
export async function markPaymentCreated(
  db: Queryable,
  id: string,
  created: { providerReference: string; paymentUrl: string; expiresAt: Date; nextCheckAt: Date },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE payments SET status = 'pending', provider_reference = $2, payment_url = $3, expires_at = $4,
       next_check_at = $5, provider_status = 'pending', updated_at = now()
     WHERE id = $1 AND status = 'creating' AND provider_reference IS NULL`,
    [id, created.providerReference, created.paymentUrl, created.expiresAt, created.nextCheckAt],
  );
  return rowCount === 1;
}

/**
 * Back to 'new' after a failed creation, so the next submit tries again. `outcomeUnknown`: the provider may have
 * created the payment (its answer was lost), counted in unknown_creations.
 */
export async function releasePaymentCreation(db: Queryable, id: string, outcomeUnknown = false): Promise<void> {
  await db.query(
    `UPDATE payments SET status = 'new', updated_at = now(), unknown_creations = unknown_creations + $2
     WHERE id = $1 AND status = 'creating'`,
    [id, outcomeUnknown ? 1 : 0],
  );
}

/**
 * The single transition to paid, through the provider payment the row holds: true only for the call that made it.
 * False too when the row now holds another provider payment (the caller then treats this one as unrecorded).
 */
export async function markPaymentPaid(
  db: Queryable,
  id: string,
  providerReference: string,
  paidAt: Date,
  providerStatus: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE payments SET status = 'paid', paid_at = $3, provider_status = $4, next_check_at = NULL, updated_at = now()
     WHERE id = $1 AND provider_reference = $2 AND status IN ('pending', 'verifying', 'expired')`,
    [id, providerReference, paidAt, providerStatus],
  );
  return rowCount === 1;
}

/** Reads a payment and locks its row until the end of the caller's transaction. */
export async function lockPayment(tx: Queryable, id: string): Promise<PaymentRecord | null> {
  const { rows } = await tx.query('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ? toPayment(rows[0] as Parameters<typeof toPayment>[0]) : null;
}

/** Statuses in which a payment can still be settled by a provider payment it does not hold yet. */
export const ADOPTABLE_STATUSES = ['new', 'creating', 'pending', 'verifying', 'expired'] as const;

/**
 * Settles a payment with a paid provider payment of ours it did not hold (one whose creation answer was lost): the
 * row now holds that payment (refunds and confirmations go to it) and is paid. True only for the call that did it.
 */
export async function adoptPaidProviderPayment(
  tx: Queryable,
  id: string,
  paid: { providerReference: string; paymentUrl: string; paidAt: Date; providerStatus: string },
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE payments SET status = 'paid', provider_reference = $2, payment_url = $3, paid_at = $4, provider_status = $5,
       next_check_at = NULL, updated_at = now()
     WHERE id = $1 AND status = ANY($6::text[])`,
    [id, paid.providerReference, paid.paymentUrl, paid.paidAt, paid.providerStatus, [...ADOPTABLE_STATUSES]],
  );
  return rowCount === 1;
}

export type PaymentReviewReason = 'duplicate' | 'payment_cancelled';

export type PaymentReview = {
  provider: string;
  providerReference: string;
  paymentId: string;
  reason: PaymentReviewReason;
  status: string;
  currency: string;
  amount: number;
  paidAt: Date | null;
  detail: Record<string, unknown> | null;
  createdAt: Date;
};

/**
 * Flags a paid provider payment that cannot count for its payment of ours (to refund or settle by hand). Once per
 * provider payment: true only for the call that flagged it.
 */
export async function flagPaymentForReview(
  tx: Queryable,
  review: {
    provider: string; providerReference: string; paymentId: string; reason: PaymentReviewReason; currency: string;
    amount: number; paidAt: Date | null; detail?: Record<string, unknown>;
  },
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO payment_reviews (provider, provider_reference, payment_id, reason, currency, amount_centavos, paid_at, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (provider, provider_reference) DO NOTHING`,
    [review.provider, review.providerReference, review.paymentId, review.reason, review.currency, review.amount,
      review.paidAt, review.detail ? JSON.stringify(review.detail) : null],
  );
  return rowCount === 1;
}

type PaymentReviewRow = {
  provider: string; provider_reference: string; payment_id: string; reason: string; status: string; currency: string;
  amount_centavos: number; paid_at: Date | null; detail: Record<string, unknown> | null; created_at: Date;
};

function toPaymentReview(row: PaymentReviewRow): PaymentReview {
  return {
    provider: row.provider,
    providerReference: row.provider_reference,
    paymentId: row.payment_id,
    reason: row.reason as PaymentReviewReason,
    status: row.status,
    currency: row.currency,
    amount: Number(row.amount_centavos),
    paidAt: row.paid_at,
    detail: row.detail,
    createdAt: row.created_at,
  };
}

export async function listPaymentReviews(db: Queryable, paymentId: string): Promise<PaymentReview[]> {
  const { rows } = await db.query<PaymentReviewRow>(
    'SELECT * FROM payment_reviews WHERE payment_id = $1 ORDER BY created_at, provider_reference', [paymentId],
  );
  return rows.map(toPaymentReview);
}

/**
 * Moves a review from `from` to `to` (needs_review → refunding → refunded, or back to needs_review when the refund
 * failed). The review as changed, only for the call that changed it (null otherwise), so that two refunds of one
 * review never both reach the provider.
 */
export async function setPaymentReviewStatus(
  db: Queryable, provider: string, providerReference: string, from: string, to: string,
): Promise<PaymentReview | null> {
  const { rows } = await db.query<PaymentReviewRow>(
    `UPDATE payment_reviews SET status = $4, updated_at = now()
     WHERE provider = $1 AND provider_reference = $2 AND status = $3 RETURNING *`,
    [provider, providerReference, from, to],
  );
  return rows[0] ? toPaymentReview(rows[0]) : null;
}

/** pending → verifying / expired / cancelled; true only for the call that changed it. */
export async function setOpenPaymentStatus(
  db: Queryable,
  id: string,
  status: 'pending' | 'verifying' | 'expired' | 'cancelled',
  providerStatus: string | null,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE payments SET status = $2, provider_status = COALESCE($3, provider_status), updated_at = now()
     WHERE id = $1 AND status IN ('pending', 'verifying') AND status <> $2`,
    [id, status, providerStatus],
  );
  return rowCount === 1;
}

export async function addRefund(db: Queryable, id: string, amount: number): Promise<void> {
  await db.query('UPDATE payments SET refunded_centavos = refunded_centavos + $2, updated_at = now() WHERE id = $1', [id, amount]);
}

/**
 * Leases up to `limit` open payments of a provider that are due for a status check (created long enough ago,
 * next check due), moving their next check `intervalSeconds` ahead; SKIP LOCKED keeps instances apart.
 */
export async function leaseDuePaymentChecks(
  db: Queryable,
  provider: string,
  olderThanSeconds: number,
  intervalSeconds: number,
  limit: number,
): Promise<PaymentRecord[]> {
  const { rows } = await db.query(
    `UPDATE payments SET next_check_at = now() + make_interval(secs => $3)
     WHERE id IN (
       SELECT id FROM payments
       WHERE provider = $1 AND status IN ('pending', 'verifying') AND provider_reference IS NOT NULL
         AND created_at <= now() - make_interval(secs => $2)
         AND (next_check_at IS NULL OR next_check_at <= now())
       ORDER BY next_check_at NULLS FIRST
       LIMIT $4
       FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [provider, olderThanSeconds, intervalSeconds, limit],
  );
  return rows.map((row) => toPayment(row as Parameters<typeof toPayment>[0]));
}

export async function recordNotification(
  db: Queryable,
  notification: {
    provider: string; token: string; apiVersion: string | null; outcome: string;
    paymentId: string | null; providerPaymentId: string | null; detail?: Record<string, unknown>;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO payment_notifications (provider, notification_token, api_version, outcome, payment_id, provider_payment_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [notification.provider, notification.token, notification.apiVersion, notification.outcome, notification.paymentId,
      notification.providerPaymentId, notification.detail ? JSON.stringify(notification.detail) : null],
  );
}

export async function listNotifications(db: Queryable, paymentId: string) {
  const { rows } = await db.query<{ outcome: string; api_version: string | null; detail: unknown; received_at: Date }>(
    'SELECT outcome, api_version, detail, received_at FROM payment_notifications WHERE payment_id = $1 ORDER BY id',
    [paymentId],
  );
  return rows;
}
