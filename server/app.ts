/**
 * createApp(deps) builds the Express application and does not listen (server.ts does), so tests drive it
 * through HTTP on port 0 with whatever dependencies they choose.
 */
import { existsSync } from 'node:fs';
import express, { type Router } from 'express';
import { AppError } from './errors.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import type { Logger } from './log.js';
import type { CheckoutService } from './checkouts/checkout-service.js';
import { cors, errorHandler, notFound, rejectNul, requestContext, securityHeaders } from './http/middleware.js';
import { RateLimiter } from './http/rate-limit.js';
import { v1Routes } from './http/v1-routes.js';
import { openApiDocument } from './http/openapi.js';
import { DEMO_CSS, serveDemoPage } from './demo/demo-page.js';
import { webhookRoutes } from './http/webhook-routes.js';
import type { ReconciliationService } from './reconciliation/reconciliation-service.js';
import { adminRoutes, type AdminJobs } from './http/admin-routes.js';
import type { KhipuPayments } from './payments/khipu-payments.js';
import type { KhipuApi } from './providers/khipu/khipu-api.js';

export type AppDeps = {
  config: Pick<Config, 'mode' | 'publicUrl' | 'allowedOrigins' | 'trustProxy' | 'rateLimits'>;
  /** Clock of the rate-limit windows (the checkout logic's clock); the real clock by default. */
  now?: () => Date;
  db: Database;
  logger: Logger;
  checkouts: CheckoutService;
  khipu: KhipuPayments | null;
  /** Where the bank list comes from (the Khipu client), when Khipu is enabled. */
  khipuBanks: Pick<KhipuApi, 'banks'> | null;
  adminToken: string | undefined;
  jobs: AdminJobs;
  reconciliation: ReconciliationService;
  merchantWebhookUrl: string | null;
  /** Directory of the built widget (vite build output). */
  widgetDir: string;
  /** Provider simulators mounted in sandbox mode, e.g. { '/sandbox/kasu': router }. */
  sandboxes?: Record<string, Router>;
};

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // API answers are per customer and not cached (no-store): hashing each body for an ETag would be work for nothing.
  // The widget's files keep theirs (express.static sets its own).
  app.set('etag', false);
  // Which proxies' X-Forwarded-For decides req.ip (consent evidence, rate limits): none unless TRUST_PROXY says.
  app.set('trust proxy', deps.config.trustProxy);
  app.use(securityHeaders(deps.config.mode));
  app.use(requestContext(deps.logger));
  app.use(rejectNul);
  const limiter = new RateLimiter(deps.db, {
    limits: { 'curp-ip': deps.config.rateLimits.curpPerIp, checkout: deps.config.rateLimits.perCheckout },
    windowSeconds: deps.config.rateLimits.windowSeconds,
  }, deps.logger.child({ component: 'rate-limit' }), deps.now);

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.db.query('SELECT 1');
      res.json({ ok: true, database: deps.db.kind, mode: deps.config.mode });
    } catch {
      res.status(503).json({ ok: false, database: deps.db.kind });
    }
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument(deps.config.publicUrl));
  });

  app.use('/v1', cors(deps.config.allowedOrigins), express.json({ limit: '16kb' }), rejectNul,
    v1Routes(deps.checkouts, deps.khipuBanks, limiter));
  // Khipu's form parsed here with the router's own settings (which then finds it parsed), so a NUL is refused first.
  app.use('/webhooks', express.urlencoded({ extended: false, limit: '4kb' }), rejectNul, webhookRoutes(deps.khipu));
  // Jobs without a prototype, so that /admin/jobs/__proto__/run or …/constructor/run is an unknown job (404), not a 500.
  const jobs: AdminJobs = Object.assign(Object.create(null) as AdminJobs, deps.jobs);
  app.use('/admin', adminRoutes({
    db: deps.db, adminToken: deps.adminToken, khipu: deps.khipu, jobs, merchantWebhookUrl: deps.merchantWebhookUrl,
    reconciliation: deps.reconciliation,
  }));

  // The widget is public code that partner pages load cross-origin as a module script, so it is CORS-open.
  // (Cross-Origin-Resource-Policy: cross-origin comes from securityHeaders.)
  app.use('/widget', (_req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (!existsSync(deps.widgetDir)) throw new AppError('NOT_FOUND', { detail: { hint: 'run npm run build:widget' } });
    next();
  }, express.static(deps.widgetDir, { maxAge: '5m', fallthrough: true }));

  for (const [path, router] of Object.entries(deps.sandboxes ?? {})) app.use(path, router);

  app.get('/', serveDemoPage);
  app.get('/demo.css', (_req, res) => {
    res.type('css').send(DEMO_CSS);
  });

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
