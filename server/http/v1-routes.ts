import { Router, type Request } from 'express';
import {
  CardSessionRequestSchema, CreateCheckoutRequestSchema, IdempotencyKeySchema, type KhipuBank, QuoteRequestSchema, SubmitRequestSchema,
  UpdateCheckoutRequestSchema,
} from '../../shared/contract.js';
import { AppError } from '../errors.js';
import type { CheckoutService } from '../checkouts/checkout-service.js';
import type { KhipuApi } from '../providers/khipu/khipu-api.js';
import { parseWith } from './middleware.js';
import { ipKey, type RateLimiter } from './rate-limit.js';

function bearer(req: Request): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
  return match?.[1] ?? null;
}

function context(req: Request) {
  return { ip: req.ip ?? null, userAgent: req.get('user-agent')?.slice(0, 512) ?? null };
}

/** Khipu's bank list changes rarely: one fetch serves every customer for a while. */
const BANKS_TTL_MS = 10 * 60_000;

/**
 * API v1. Rate limits (shared through the database): POST /checkouts per client IP (each one is a CURP lookup at
 * KASU), and quote and submit per checkout once its token is accepted (each one calls KASU for that checkout).
 */
export function v1Routes(checkouts: CheckoutService, khipuBanks: Pick<KhipuApi, 'banks'> | null, limiter: RateLimiter): Router {
  const router = Router();
  let banksCache: { at: number; banks: KhipuBank[] } | null = null;
  const authorized = (req: Request) => checkouts.authorize(String(req.params.id), bearer(req));

  router.post('/checkouts', async (req, res) => {
    const { curp } = parseWith(CreateCheckoutRequestSchema, req.body);
    await limiter.enforce(res, 'curp-ip', ipKey(req.ip));
    const created = await checkouts.create(curp);
    res.status(201).setHeader('Cache-Control', 'no-store').json(created);
  });

  router.get('/checkouts/:id', async (req, res) => {
    const record = await authorized(req);
    res.setHeader('Cache-Control', 'no-store').json({ checkout: await checkouts.view(record) });
  });

  router.patch('/checkouts/:id', async (req, res) => {
    const record = await authorized(req);
    const changes = parseWith(UpdateCheckoutRequestSchema, req.body);
    res.json({ checkout: await checkouts.update(record, changes, context(req)) });
  });

  router.post('/checkouts/:id/quote', async (req, res) => {
    const identity = await checkouts.authorizeIdentity(String(req.params.id), bearer(req));
    const { product } = parseWith(QuoteRequestSchema, req.body);
    await limiter.enforce(res, 'checkout', identity.id);
    res.json(await checkouts.quote(identity, product));
  });

  router.post('/checkouts/:id/submit', async (req, res) => {
    const record = await authorized(req);
    const key = IdempotencyKeySchema.safeParse(req.get('idempotency-key'));
    if (!key.success) throw new AppError('IDEMPOTENCY_KEY_REQUIRED');
    const request = parseWith(SubmitRequestSchema, req.body);
    await limiter.enforce(res, 'checkout', record.id);
    res.json({ checkout: await checkouts.submit(record, request, key.data, context(req)) });
  });

  router.post('/checkouts/:id/card-session', async (req, res) => {
    const record = await authorized(req);
    const { origin } = parseWith(CardSessionRequestSchema, req.body);
    res.setHeader('Cache-Control', 'no-store').json(await checkouts.cardSession(record, origin));
  });

  router.get('/khipu/banks', async (_req, res) => {
    if (!khipuBanks) throw new AppError('PAYMENT_METHOD_UNAVAILABLE');
    if (!banksCache || Date.now() - banksCache.at > BANKS_TTL_MS) {
      const banks = (await khipuBanks.banks()).map((bank) => ({
        id: bank.bankId, name: bank.name, message: bank.message, minAmount: bank.minAmount, type: bank.type, parent: bank.parent,
      }));
      banksCache = { at: Date.now(), banks };
    }
    res.setHeader('Cache-Control', 'public, max-age=300').json({ banks: banksCache.banks });
  });

  return router;
}
