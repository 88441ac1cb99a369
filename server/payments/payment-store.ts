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
 * that keeps two concurrent submits from creating two payments at the provider.
 */
export async function claimPaymentCreation(db: Queryable, id: string, staleSeconds: number): Promise<PaymentRecord | null> {
  const { rows } = await db.query(
    `UPDATE payments SET status = 'creating', updated_at = now()
     WHERE id = $1 AND provider_reference IS NULL
       AND (status = 'new' OR (status = 'creating' AND updated_at < now() - make_interval(secs => $2)))
     RETURNING *`,
    [id, staleSeconds],
  );
  return rows[0] ? toPayment(rows[0] as Parameters<typeof toPayment>[0]) : null;
}

export async function markPaymentCreated(
  db: Queryable,
  id: string,
  created: { providerReference: string; paymentUrl: string; expiresAt: Date; nextCheckAt: Date },
): Promise<void> {
  await db.query(
    `UPDATE payments SET status = 'pending', provider_reference = $2, payment_url = $3, expires_at = $4,
       next_check_at = $5, provider_status = 'pending', updated_at = now() WHERE id = $1`,
    [id, created.providerReference, created.paymentUrl, created.expiresAt, created.nextCheckAt],
  );
}

/** Back to 'new' after a failed creation, so the next submit tries again. */
export async function releasePaymentCreation(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE payments SET status = 'new', updated_at = now() WHERE id = $1 AND status = 'creating'`, [id]);
}

/** The single transition to paid: true only for the call that made it. */
export async function markPaymentPaid(db: Queryable, id: string, paidAt: Date, providerStatus: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE payments SET status = 'paid', paid_at = $2, provider_status = $3, next_check_at = NULL, updated_at = now()
     WHERE id = $1 AND status IN ('pending', 'verifying', 'expired')`,
    [id, paidAt, providerStatus],
  );
  return rowCount === 1;
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
