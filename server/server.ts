/**
 * startServer(config): opens the database, listens, wires providers (the built-in sandboxes in sandbox mode) and
 * background jobs, and returns a handle that closes everything in order.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Router } from 'express';
import type { Config } from './config.js';
import { maintainDatabase, openDatabase, type Database } from './db/database.js';
import { createLogger, type Logger } from './log.js';
import { createApp } from './app.js';
import { CheckoutService } from './checkouts/checkout-service.js';
import { KasuClient } from './providers/kasu/kasu-client.js';
import { KhipuClient } from './providers/khipu/khipu-client.js';
import { KhipuPayments } from './payments/khipu-payments.js';
import { MerchantWebhookDispatcher } from './webhooks/merchant-webhooks.js';
import { startIntervalJob } from './jobs/interval-job.js';
import { createKasuSandbox, type KasuSandboxState } from './sandbox/kasu/kasu-sandbox.js';
import { createKhipuSandbox, type KhipuSandboxState } from './sandbox/khipu/khipu-sandbox.js';
import { createCardSandbox, type CardSandboxState } from './sandbox/card/card-sandbox.js';
import { createTupaySandbox, customerPays, type TupaySandboxState } from './sandbox/tupay/tupay-sandbox.js';
import { TupayClient } from './providers/tupay/tupay-client.js';
import { ReconciliationService } from './reconciliation/reconciliation-service.js';
import { DEFAULT_STATUS_SETS } from './reconciliation/reconciliation.js';
import { CardClient } from './providers/card/card-client.js';
import { ChargeEngine, DEFAULT_CHARGE_ENGINE_CONFIG } from './cards/charge-engine.js';
import { CardPayments } from './cards/card-payments.js';

/** What the customer authorises for card payments (its version is kept with the consent, LEGAL_RECURRING_VERSION). */
const RECURRING_CONSENT = {
  es: 'Autorizo a KASU a cargar a mi tarjeta cada mensualidad de mi plan en su fecha de pago, por el monto indicado, hasta terminar de pagarlo. Puedo cancelar la domiciliación cuando quiera.',
  en: 'I authorise KASU to charge my card each monthly instalment of my plan on its due date, for the amount shown, until it is paid in full. I can cancel these recurring charges at any time.',
};

export type RunningServer = {
  url: string;
  server: Server;
  db: Database;
  kasu: KasuClient;
  khipu: KhipuPayments | null;
  webhooks: MerchantWebhookDispatcher;
  /** Background jobs by name; `runNow()` runs one at once (tests, admin API). */
  jobs: Record<'webhooks' | 'khipu-poll' | 'card-charges' | 'reconciliation', { runNow(): Promise<unknown> }>;
  reconciliation: ReconciliationService;
  tupaySandbox: TupaySandboxState | null;
  charges: ChargeEngine | null;
  cardSandbox: CardSandboxState | null;
  /** The built-in simulators' state, in sandbox mode. */
  kasuSandbox: KasuSandboxState | null;
  khipuSandbox: KhipuSandboxState | null;
  close(): Promise<void>;
};

export type StartOptions = {
  logger?: Logger;
  /** Clock for the checkout logic (tests); the real clock by default. */
  now?: () => Date;
  /** Use this database instead of opening the configured one (it is not closed on close()). */
  db?: Database;
  widgetDir?: string;
  /** false: background jobs run only when asked (runNow), for tests that control time. Default true. */
  backgroundJobs?: boolean;
  /** On close, requests in flight get this long to finish before their connections are cut (default 8 s). */
  shutdownGraceMs?: number;
};

/** Below server/main.ts's 10 s limit, so that what follows the drain (clients, the database) still closes cleanly. */
export const SHUTDOWN_GRACE_MS = 8_000;

/** dist/widget from the source tree (tsx) or from the compiled server in dist/server/server/. */
const DEFAULT_WIDGET_DIR = [new URL('../dist/widget/', import.meta.url), new URL('../../widget/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(dir)) ?? fileURLToPath(new URL('../dist/widget/', import.meta.url));

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const db = options.db ?? (await openDatabase(config.database.kind === 'postgres'
    ? { kind: 'postgres', url: config.database.url }
    : { kind: 'pglite', dataDir: config.database.dataDir }));

  const server = createServer();
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const selfUrl = `http://127.0.0.1:${port}`;
  const publicUrl = config.port === 0 ? selfUrl : config.publicUrl;

  const sandboxes: Record<string, Router> = {};
  let kasuSandbox: KasuSandboxState | null = null;
  let khipuSandbox: ReturnType<typeof createKhipuSandbox> | null = null;
  let cardSandbox: ReturnType<typeof createCardSandbox> | null = null;
  let tupaySandbox: ReturnType<typeof createTupaySandbox> | null = null;
  if (config.mode === 'sandbox') {
    const kasu = createKasuSandbox();
    sandboxes['/sandbox/kasu'] = kasu.router;
    kasuSandbox = kasu.state;
    if (config.khipu) {
      khipuSandbox = createKhipuSandbox({
        receivers: [{ receiverId: config.khipu.receiverId, secret: config.khipu.secret }],
        publicUrl: `${publicUrl}/sandbox/khipu`,
      });
      sandboxes['/sandbox/khipu'] = khipuSandbox.router;
    }
    if (config.card) {
      cardSandbox = createCardSandbox({
        merchants: [{ merchantId: config.card.merchantId, key: config.card.key }],
        publicUrl: `${publicUrl}/sandbox/card`,
        ...(config.allowedOrigins.length ? { allowedParentOrigins: [...config.allowedOrigins, new URL(publicUrl).origin] } : {}),
      });
      sandboxes['/sandbox/card'] = cardSandbox.router;
    }
    if (config.tupay) {
      tupaySandbox = createTupaySandbox({
        accessKey: config.tupay.accessKey, secretKey: config.tupay.secretKey, seedActivity: { seed: 1 },
      });
      sandboxes['/sandbox/tupay'] = tupaySandbox.router;
    }
  }

  const kasu = new KasuClient(
    { ...config.kasu, baseUrl: config.kasu.baseUrl ?? `${selfUrl}/sandbox/kasu` },
    { logger: logger.child({ provider: 'kasu' }) },
  );
  const khipuClient = config.khipu
    ? new KhipuClient(
        { ...config.khipu, baseUrl: config.khipu.baseUrl ?? `${selfUrl}/sandbox/khipu/api/2.0` },
        { logger: logger.child({ provider: 'khipu' }) },
      )
    : null;
  const khipu = config.khipu && khipuClient
    ? new KhipuPayments(db, khipuClient, {
        receiverId: config.khipu.receiverId,
        notifyUrl: `${publicUrl}/webhooks/khipu`,
        paymentExpiryHours: config.khipu.paymentExpiryHours,
        pollAfterSeconds: config.khipu.pollAfterSeconds,
        pollIntervalSeconds: config.khipu.pollIntervalSeconds,
        merchantWebhookUrl: config.merchantWebhooks.url,
      }, logger.child({ provider: 'khipu' }), options.now)
    : null;

  const cardClient = config.card
    ? new CardClient({
        baseUrl: config.card.baseUrl ?? `${selfUrl}/sandbox/card`,
        merchantId: config.card.merchantId,
        key: config.card.key,
        timeouts: config.card.timeouts,
        userAgent: config.card.userAgent,
        auth: config.card.auth,
      }, { logger: logger.child({ provider: 'card' }) })
    : null;
  const charges = config.card && cardClient
    ? new ChargeEngine(db, cardClient, {
      ...DEFAULT_CHARGE_ENGINE_CONFIG, leaseSeconds: config.card.chargeLeaseSeconds, concurrency: config.card.chargeConcurrency,
      merchantWebhookUrl: config.merchantWebhooks.url,
    },
      logger.child({ component: 'card-charges' }))
    : null;
  const cards = config.card && cardClient && charges
    ? new CardPayments(db, cardClient, charges, {
        merchantId: config.card.merchantId,
        tokenizerUrl: config.card.tokenizerUrl ?? `${publicUrl}/sandbox/card/tokenizer`,
        allowedOrigins: config.allowedOrigins.length ? [...config.allowedOrigins, new URL(publicUrl).origin] : [],
        recurringConsent: { version: config.card.recurringConsentVersion, ...RECURRING_CONSENT },
      }, logger.child({ provider: 'card' }), options.now)
    : null;

  const tupayClient = config.tupay
    ? new TupayClient({
        baseUrl: config.tupay.baseUrl ?? `${selfUrl}/sandbox/tupay`,
        accessKey: config.tupay.accessKey,
        secretKey: config.tupay.secretKey,
        timeouts: config.tupay.timeouts,
        userAgent: config.tupay.userAgent,
      }, { logger: logger.child({ provider: 'tupay' }) })
    : null;
  const reconciliation = new ReconciliationService(db, tupayClient ? () => tupayClient : null, {
    statuses: {
      ...DEFAULT_STATUS_SETS,
      ...(config.tupay ? { depositPaid: config.tupay.paidStatuses, cashoutDone: config.tupay.cashoutDoneStatuses } : {}),
    },
    tupayUtcOffset: config.tupay?.utcOffset ?? '+00:00',
    lookbackDays: config.reconciliation.lookbackDays,
    dailyHour: config.reconciliation.dailyHour,
    merchantWebhookUrl: config.merchantWebhooks.url,
  }, logger.child({ component: 'reconciliation' }), options.now);
  // Sandbox: a customer who chose "pay later" pays the order through Tupay (see customerPays for the scenarios).
  const sandboxTupay = tupaySandbox;
  const onOrderRegistered = sandboxTupay
    ? (order: { reference: string; paymentMethod: string; instalmentAmount: number; curp: string }) => {
        if (order.paymentMethod !== 'email') return;
        try {
          customerPays(sandboxTupay.state, {
            reference: order.reference, amountCentavos: order.instalmentAmount, clientDocument: order.curp, nowMs: Date.now(),
          });
        } catch (error) {
          // A simulation only: it must never fail a purchase that is already registered.
          logger.warn('sandbox Tupay customer could not pay', { error });
        }
      }
    : undefined;

  const checkouts = new CheckoutService(
    db,
    kasu,
    {
      ttlHours: config.checkoutTtlHours,
      quoteValidMinutes: config.quoteValidMinutes,
      instalmentOptions: config.instalmentOptions,
      legal: config.legal,
      paymentMethods: config.paymentMethods.filter((method) => (method === 'khipu' ? khipu : method === 'card' ? cards : true)),
      returnUrlOrigins: config.allowedOrigins.length ? [...config.allowedOrigins, new URL(publicUrl).origin] : [],
      defaultReturnUrl: `${publicUrl}/`,
      merchantWebhookUrl: config.merchantWebhooks.url,
      ...(onOrderRegistered ? { onOrderRegistered } : {}),
    },
    logger,
    options.now,
    khipu,
    cards,
  );

  const webhooks = new MerchantWebhookDispatcher(db, {
    secret: config.merchantWebhooks.secret,
    timeoutMs: 10_000,
    backoffSeconds: [10, 30, 120, 600, 1800, 3600, 7200, 21600, 43200],
    concurrency: 4,
    leaseSeconds: 60,
  }, { logger: logger.child({ component: 'merchant-webhooks' }) });

  const background = options.backgroundJobs ?? true;
  const vacuums = background && db.kind === 'pglite';
  const vacuumHours = config.database.kind === 'pglite' ? config.database.vacuumIntervalHours : 6;
  const never = 2 ** 31 - 1; // a job that only runs when asked
  const jobs = {
    webhooks: startIntervalJob('merchant-webhooks', background ? config.merchantWebhooks.dispatchIntervalMs : never,
      () => webhooks.runOnce(), { logger }),
    'khipu-poll': startIntervalJob('khipu-poll', background && khipu ? config.khipu!.pollIntervalSeconds * 1000 : never,
      async () => (khipu ? khipu.checkDuePayments() : { checked: 0, paid: 0, expired: 0, failed: 0 }), { logger }),
    'card-charges': startIntervalJob('card-charges', background && charges ? config.card!.chargeIntervalSeconds * 1000 : never,
      async () => (charges ? charges.runDue() : null), { logger }),
    // Checks every 10 minutes whether today's report is due; one instance claims the day.
    reconciliation: startIntervalJob('reconciliation', background ? 600_000 : never, () => reconciliation.runDaily(), { logger }),
    // The embedded database only (PostgreSQL has autovacuum): first 10 minutes after start, then every few hours.
    database: startIntervalJob('database-maintenance', vacuums ? vacuumHours * 3_600_000 : never, () => maintainDatabase(db),
      { logger, ...(vacuums ? { initialDelayMs: 600_000 } : {}) }),
  };

  const app = createApp({
    config: { ...config, publicUrl },
    db,
    logger,
    ...(options.now ? { now: options.now } : {}),
    checkouts,
    khipu,
    khipuBanks: khipuClient,
    adminToken: config.adminToken,
    merchantWebhookUrl: config.merchantWebhooks.url,
    jobs: {
      webhooks: () => jobs.webhooks.runNow(),
      'khipu-poll': () => jobs['khipu-poll'].runNow(),
      // With a clock override (?now=ISO) for tests and the sandbox; the real clock otherwise.
      'card-charges': (now?: Date) => (now && charges ? charges.runDue(now) : jobs['card-charges'].runNow()),
      reconciliation: (now?: Date) => (now ? reconciliation.runDaily(now) : jobs.reconciliation.runNow()),
      database: () => jobs.database.runNow(),
    },
    reconciliation,
    widgetDir: options.widgetDir ?? DEFAULT_WIDGET_DIR,
    sandboxes,
  });
  server.on('request', app);
  logger.info('listening', { url: publicUrl, mode: config.mode, database: db.kind });

  return {
    url: selfUrl,
    server,
    db,
    kasu,
    khipu,
    webhooks,
    jobs,
    kasuSandbox,
    khipuSandbox: khipuSandbox?.state ?? null,
    charges,
    cardSandbox: cardSandbox?.state ?? null,
    reconciliation,
    tupaySandbox: tupaySandbox?.state ?? null,
    async close() {
      // A charge run in progress sends nothing more and finishes what it sent (nothing left for review).
      charges?.stop();
      await Promise.all(Object.values(jobs).map((job) => job.stop()));
      await new Promise<void>((resolve) => {
        // No new connections, idle ones closed now; requests in flight get the grace, then their connections are cut
        // (a client still sending a request slowly, a call still waiting on a provider: the customer's retry is safe).
        // A keep-alive connection is closed as soon as its answer has gone (it is idle then), not at its timeout.
        const cut = setTimeout(() => server.closeAllConnections(), options.shutdownGraceMs ?? SHUTDOWN_GRACE_MS);
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearTimeout(cut);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      await khipuSandbox?.close();
      await cardSandbox?.close();
      await tupaySandbox?.close();
      await cardClient?.close();
      await tupayClient?.close();
      await webhooks.close();
      await kasu.close();
      await khipuClient?.close();
      if (!options.db) await db.close();
    },
  };
}
