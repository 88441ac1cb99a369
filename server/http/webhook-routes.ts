/**
 * Provider notifications. Khipu's notification API 1.3 posts a form with `api_version` and `notification_token`
 * only; nothing in it is trusted: the payment is fetched from Khipu with the token and checked against our order.
 * The answer is 200 once the notification is stored, so Khipu stops retrying; any number of deliveries of the
 * same notification have one effect.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import { AppError, ProviderError } from '../errors.js';
import type { KhipuPayments } from '../payments/khipu-payments.js';

const KhipuNotificationSchema = z.object({
  api_version: z.string().min(1).max(10),
  notification_token: z.string().min(1).max(200),
});

export function webhookRoutes(khipu: KhipuPayments | null): Router {
  const router = Router();
  router.post('/khipu', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    if (!khipu) throw new AppError('NOT_FOUND');
    const parsed = KhipuNotificationSchema.safeParse(req.body);
    if (!parsed.success) throw new AppError('VALIDATION_FAILED', { detail: { provider: 'khipu', reason: 'not a 1.3 notification' } });
    const { api_version: apiVersion, notification_token: token } = parsed.data;
    try {
      const outcome = await khipu.handleNotification(apiVersion, token);
      req.log.info('khipu notification', { outcome });
      res.status(200).json({ received: true });
    } catch (error) {
      // A token Khipu does not know is a forgery or a mistake: refused, nothing paid (already recorded).
      if (error instanceof ProviderError && error.code === 'NOT_FOUND') throw new AppError('NOT_FOUND', { detail: { provider: 'khipu', reason: 'unknown notification token' } });
      throw error; // Khipu unreachable: a non-200 makes Khipu deliver again later
    }
  });
  return router;
}
