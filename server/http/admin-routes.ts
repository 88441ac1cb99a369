/**
 * The merchant's admin API: `Authorization: Bearer $ADMIN_TOKEN` (compared in constant time). Disabled (404)
 * when no ADMIN_TOKEN is configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import type { Database } from '../db/database.js';
import * as checkouts from '../checkouts/checkout-store.js';
import type { OrderRecord, PaymentRecord } from '../checkouts/checkout-store.js';
import * as payments from '../payments/payment-store.js';
import type { KhipuPayments } from '../payments/khipu-payments.js';
import { parseWith } from './middleware.js';
import { enqueueMerchantEvent } from '../webhooks/merchant-webhooks.js';
import { errorMessage } from '../../shared/errors.js';
import { checkPeriod, mexicoCityDay, type ReconciliationService } from '../reconciliation/reconciliation-service.js';
import { LINE_CATEGORIES, readLines, reportCsv } from '../reconciliation/reconciliation.js';

export type AdminJobs = Record<string, (now?: Date) => Promise<unknown>>;

function requireAdmin(adminToken: string | undefined): RequestHandler {
  const expected = adminToken ? createHash('sha256').update(adminToken).digest() : null;
  return (req, _res, next) => {
    if (!expected) throw new AppError('NOT_FOUND');
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (!match || !timingSafeEqual(expected, given)) throw new AppError('UNAUTHORIZED');
    next();
  };
}

const ListOrdersQuery = z.object({
  status: z.enum(['registering', 'registered', 'rejected', 'unknown', 'needs_review']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.iso.datetime().optional(),
});
/** A calendar day in Mexico City (YYYY-MM-DD, a real date) or an ISO 8601 instant with its offset. */
const PeriodBound = z.union([
  z.iso.date(),
  z.iso.datetime({ offset: true }),
]);
const ReconcileBody = z.object({ from: PeriodBound, to: PeriodBound, sync: z.boolean().default(true) }).strict();
const LinesQuery = z.object({
  category: z.enum([...LINE_CATEGORIES, 'status_change', 'discrepancy']).optional(),
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

function periodStart(value: string): Date {
  return value.length === 10 ? mexicoCityDay(value).start : new Date(value);
}
function periodEnd(value: string): Date {
  return value.length === 10 ? mexicoCityDay(value).end : new Date(value);
}

const RefundBody = z.object({ amount: z.number().int().positive().optional() }).strict();

function orderJson(order: OrderRecord, orderPayments: PaymentRecord[]) {
  const { curp: _curp, ...rest } = order;
  return {
    ...rest,
    curp: `${order.curp.slice(0, 4)}…${order.curp.slice(-2)}`,
    payments: orderPayments.map((payment) => ({ ...payment })),
  };
}

export function adminRoutes(deps: {
  db: Database; adminToken: string | undefined; khipu: KhipuPayments | null; jobs: AdminJobs; merchantWebhookUrl: string | null;
  reconciliation: ReconciliationService;
}): Router {
  const router = Router();
  router.use(requireAdmin(deps.adminToken), express.json({ limit: '4kb' }));
  const khipu = () => {
    if (!deps.khipu) throw new AppError('PAYMENT_METHOD_UNAVAILABLE');
    return deps.khipu;
  };
  const paymentsOf = async (order: OrderRecord) => {
    const { rows } = await deps.db.query('SELECT * FROM payments WHERE order_id = $1 ORDER BY instalment_number, created_at', [order.id]);
    return rows.map((row) => checkouts.toPayment(row as Parameters<typeof checkouts.toPayment>[0]));
  };

  router.get('/orders', async (req, res) => {
    const query = parseWith(ListOrdersQuery, req.query);
    const orders = await checkouts.listOrders(deps.db, {
      limit: query.limit, ...(query.status ? { status: query.status } : {}), ...(query.before ? { before: new Date(query.before) } : {}),
    });
    res.json({ orders: await Promise.all(orders.map(async (order) => orderJson(order, await paymentsOf(order)))) });
  });

  router.get('/orders/:reference', async (req, res) => {
    const order = await checkouts.findOrderByReference(deps.db, String(req.params.reference));
    if (!order) throw new AppError('NOT_FOUND');
    const orderPayments = await paymentsOf(order);
    const notifications = Object.fromEntries(
      await Promise.all(orderPayments.map(async (p) => [p.id, await payments.listNotifications(deps.db, p.id)] as const)),
    );
    const reviews = Object.fromEntries(
      await Promise.all(orderPayments.map(async (p) => [p.id, await payments.listPaymentReviews(deps.db, p.id)] as const)),
    );
    res.json({ order: orderJson(order, orderPayments), notifications, reviews });
  });

  // A second Khipu payment paid for one instalment (payment_reviews): give the money back.
  router.post('/payment-reviews/khipu/:providerReference/refund', async (req, res) => {
    res.json({ review: await khipu().refundReview(String(req.params.providerReference)) });
  });

  router.post('/payments/:id/refund', async (req, res) => {
    const { amount } = parseWith(RefundBody, req.body);
    res.json({ payment: await khipu().refund(String(req.params.id), amount) });
  });
  router.delete('/payments/:id', async (req, res) => {
    res.json({ payment: await khipu().cancel(String(req.params.id)) });
  });
  router.post('/payments/:id/confirm', async (req, res) => {
    res.json({ payment: await khipu().confirm(String(req.params.id)) });
  });

  router.post('/jobs/:name/run', async (req, res) => {
    const job = deps.jobs[String(req.params.name)];
    if (!job) throw new AppError('NOT_FOUND');
    const { now } = parseWith(z.object({ now: z.iso.datetime().optional() }), req.query);
    res.json({ job: req.params.name, result: await job(now ? new Date(now) : undefined) });
  });

  /**
   * Runs a reconciliation. With `Accept: application/x-ndjson` the answer streams one JSON object per line: progress
   * lines while Tupay is read, then `{type: "report", report}` or `{type: "error", error}`. Otherwise 201 `{report}`.
   */
  router.post('/reconciliations', async (req, res) => {
    const body = parseWith(ReconcileBody, req.body ?? {});
    const request = { from: periodStart(body.from), to: periodEnd(body.to), sync: body.sync };
    if (req.accepts(['application/json', 'application/x-ndjson']) !== 'application/x-ndjson') {
      const report = await deps.reconciliation.run({ ...request, trigger: 'admin' });
      res.status(201).json({ report });
      return;
    }
    // Validated before the stream starts, so a bad period is an ordinary 400.
    checkPeriod(request.from, request.to);
    res.status(200).type('application/x-ndjson').setHeader('Cache-Control', 'no-store');
    res.flushHeaders();
    const send = (line: Record<string, unknown>) => {
      if (!res.writableEnded) res.write(`${JSON.stringify(line)}\n`);
    };
    try {
      const report = await deps.reconciliation.run({ ...request, trigger: 'cli' }, (progress) => send({ type: 'progress', ...progress }));
      send({ type: 'report', report });
    } catch (error) {
      const code = error instanceof AppError ? error.code : 'INTERNAL';
      req.log.error('reconciliation stream ended with an error', { error, code });
      send({ type: 'error', error: { code, message: errorMessage(code, 'en'), requestId: req.id } });
    }
    res.end();
  });

  router.get('/reconciliations', async (req, res) => {
    const { limit } = parseWith(z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }), req.query);
    res.json({ reports: await deps.reconciliation.list(limit) });
  });

  router.get('/reconciliations/:id', async (req, res) => {
    const report = await deps.reconciliation.find(String(req.params.id));
    if (!report) throw new AppError('NOT_FOUND');
    res.json({ report });
  });

  router.get('/reconciliations/:id/lines', async (req, res) => {
    const query = parseWith(LinesQuery, req.query);
    const report = await deps.reconciliation.find(String(req.params.id));
    if (!report) throw new AppError('NOT_FOUND');
    const lines = await readLines(deps.db, report.id, {
      ...(query.category ? { category: query.category } : {}), after: query.after, limit: query.limit,
    });
    res.json({ lines, next: lines.length === query.limit ? lines[lines.length - 1]!.seq : null });
  });

  router.get('/reconciliations/:id/report.csv', async (req, res) => {
    const report = await deps.reconciliation.find(String(req.params.id));
    if (!report || report.status !== 'completed') throw new AppError('NOT_FOUND');
    res.status(200).type('text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="${report.id}.csv"`);
    for await (const chunk of reportCsv(deps.db, report.id)) {
      if (res.destroyed) return;
      // Respect the client's pace: wait for the socket to drain before reading the next page.
      if (!res.write(chunk)) {
        await new Promise((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
    }
    res.end();
  });

  router.get('/subscriptions', async (req, res) => {
    const { status, limit } = parseWith(z.object({
      status: z.enum(['pending_card', 'active', 'past_due', 'cancelled', 'completed']).optional(),
      limit: z.coerce.number().int().min(1).max(200).default(50),
    }), req.query);
    const { rows } = await deps.db.query(
      `SELECT s.id, s.status, s.pay_day, s.created_at, s.cancelled_at, o.reference, c.brand, c.last4
       FROM subscriptions s JOIN orders o ON o.id = s.order_id JOIN payment_cards c ON c.id = s.card_id
       WHERE ($1::text IS NULL OR s.status = $1) ORDER BY s.created_at DESC LIMIT $2`,
      [status ?? null, limit],
    );
    res.json({ subscriptions: rows });
  });

  router.get('/subscriptions/:id/charges', async (req, res) => {
    const { rows } = await deps.db.query(
      `SELECT i.number, i.due_date, i.amount_centavos, i.status AS instalment_status, a.attempt, a.merchant_order_id,
              a.status, a.response_code, a.authorization_number, a.gateway_order_id, a.sends, a.created_at
       FROM instalments i LEFT JOIN charge_attempts a ON a.instalment_id = i.id
       WHERE i.subscription_id = $1 ORDER BY i.number, a.attempt`,
      [String(req.params.id)],
    );
    res.json({ charges: rows });
  });

  router.post('/subscriptions/:id/cancel', async (req, res) => {
    const cancelled = await deps.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE subscriptions SET status = 'cancelled', cancelled_at = now(), updated_at = now()
         WHERE id = $1 AND status IN ('active', 'past_due', 'pending_card') RETURNING id`,
        [String(req.params.id)],
      );
      if (!rows[0]) return false;
      await tx.query(`UPDATE instalments SET status = 'cancelled', updated_at = now() WHERE subscription_id = $1 AND status = 'scheduled'`, [rows[0].id]);
      const order = await tx.query<{ reference: string }>(
        'SELECT o.reference FROM subscriptions s JOIN orders o ON o.id = s.order_id WHERE s.id = $1', [rows[0].id]);
      await enqueueMerchantEvent(tx, deps.merchantWebhookUrl, 'subscription.cancelled', {
        reference: order.rows[0]?.reference, subscriptionId: rows[0].id, reason: 'cancelled_by_merchant',
      });
      return true;
    });
    if (!cancelled) throw new AppError('NOT_FOUND');
    res.json({ cancelled: true });
  });
  return router;
}
