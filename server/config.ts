/**
 * The environment, parsed once at start with zod. A bad or missing value stops the process with one message
 * listing every problem. In sandbox mode every provider defaults to the built-in simulator; in live mode the
 * process refuses to start without real credentials.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { ProviderTimeouts } from './providers/provider-http.js';

const SANDBOX = {
  KASU_USER: 'Api_KASU_Sandbox',
  // Public sandbox value printed in KASU's own API document; not a secret.
  KASU_PRIVATE_KEY: 'ef235aacf90d9f4aadd8c92e4b2562e1d9eb97f0',
  KHIPU_RECEIVER_ID: '100000',
  KHIPU_SECRET: 'sandbox-khipu-secret',
  MERCHANT_WEBHOOK_SECRET: 'sandbox-merchant-webhook-secret',
  CARD_MERCHANT_ID: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
  CARD_KEY: 'sandbox-card-key',
  TUPAY_ACCESS_KEY: 'sandbox@kasu.example',
  TUPAY_SECRET_KEY: 'sandbox-tupay-secret',
  ADMIN_TOKEN: 'sandbox-admin-token-not-for-production',
} as const;
/** The admin token sandbox mode uses when ADMIN_TOKEN is unset (so `npm run reconcile` works out of the box). */
export const SANDBOX_ADMIN_TOKEN = SANDBOX.ADMIN_TOKEN;
/**
 * The sandbox defaults that are secrets in live mode (provider keys, webhook secret, admin token): tests check that
 * none of them reaches the widget bundle, an answer or a log line.
 */
export const SANDBOX_SECRETS = {
  KASU_PRIVATE_KEY: SANDBOX.KASU_PRIVATE_KEY,
  KHIPU_SECRET: SANDBOX.KHIPU_SECRET,
  CARD_KEY: SANDBOX.CARD_KEY,
  TUPAY_SECRET_KEY: SANDBOX.TUPAY_SECRET_KEY,
  MERCHANT_WEBHOOK_SECRET: SANDBOX.MERCHANT_WEBHOOK_SECRET,
  ADMIN_TOKEN: SANDBOX.ADMIN_TOKEN,
} as const;

/** Express's `trust proxy`: false (off), true (any), a hop count, or addresses/subnets/names of trusted proxies. */
export type TrustProxy = boolean | number | string[];
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
function parseTrustProxy(value: string, ctx: z.RefinementCtx): TrustProxy {
  const text = value.trim().toLowerCase();
  if (['', 'false', 'off', 'no', '0'].includes(text)) return false;
  if (['true', 'on', 'yes'].includes(text)) return true;
  if (/^\d+$/.test(text)) return Number(text);
  const items = text.split(',').map((item) => item.trim()).filter(Boolean);
  const bad = items.filter((item) => {
    if (TRUST_PROXY_NAMES.has(item)) return false;
    const [address, bits, ...rest] = item.split('/');
    if (rest.length || !address || isIP(address) === 0) return true;
    return bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128));
  });
  if (bad.length) {
    ctx.addIssue({
      code: 'custom',
      message: `must be false, true, a hop count, or addresses/subnets (CIDR) or loopback/linklocal/uniquelocal; not ${bad.join(', ')}`,
    });
    return z.NEVER;
  }
  return items;
}

const optionalString = z.string().trim().min(1).optional();
const optionalUrl = z.url().optional();
const csv = z
  .string()
  .optional()
  .transform((value) => (value ?? '').split(',').map((item) => item.trim()).filter(Boolean));
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A provider's *_TIMEOUT_MS: the overall deadline of each of its calls, at most 10 minutes. */
const MAX_PROVIDER_TIMEOUT_MS = 600_000;
const providerTimeoutMs = (fallback: number) =>
  z.coerce.number().int().positive().max(MAX_PROVIDER_TIMEOUT_MS, 'must be at most 600000 (10 minutes)').default(fallback);
const statusList = (value: string) => value.split(',').map((item) => item.trim().toUpperCase()).filter(Boolean);

const EnvSchema = z
  .object({
    MODE: z.enum(['sandbox', 'live']).default('sandbox'),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default('0.0.0.0'),
    PUBLIC_URL: optionalUrl,
    DATA_DIR: z.string().min(1).default('./.data'),
    // At most a week (a timer cannot wait 600 hours or more).
    DATA_DIR_VACUUM_HOURS: z.coerce.number().int().min(1).max(168).default(6),
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
    ALLOWED_ORIGINS: csv,
    ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /** Which proxies in front of the BFF to believe about the client's address (X-Forwarded-For); off by default. */
    TRUST_PROXY: z.string().default('false').transform(parseTrustProxy),
    /** POST /v1/checkouts (a CURP lookup at KASU) per client IP per minute; 0 = no limit. */
    RATE_LIMIT_CURP_PER_IP_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(20),
    /** Calls that reach KASU for one checkout (quote, submit) per minute; 0 = no limit. */
    RATE_LIMIT_PER_CHECKOUT_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(30),

    KASU_BASE_URL: optionalUrl,
    KASU_USER: optionalString,
    KASU_PRIVATE_KEY: optionalString,
    KASU_PATH_TOKEN_FULL: z.string().default(''),
    KASU_PATH_MODIFY_RECORD: z.string().default(''),
    KASU_PATH_NEW_SERVICE: z.string().default(''),
    /** Overall deadline of each KASU call (connect, send, headers, whole body), customer-facing. */
    KASU_TIMEOUT_MS: providerTimeoutMs(10_000),
    /** Instalment counts the merchant offers (each shown only when KASU allows it for the product). */
    INSTALMENT_OPTIONS: z
      .string()
      .default('1,3,6,12,24,36,60')
      .transform((value, ctx) => {
        const counts = value.split(',').map((item) => Number(item.trim()));
        if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 120)) {
          ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of whole numbers 1–120' });
          return z.NEVER;
        }
        return [...new Set(counts)].sort((a, b) => a - b);
      }),

    KHIPU_BASE_URL: optionalUrl,
    KHIPU_RECEIVER_ID: optionalString,
    KHIPU_SECRET: optionalString,
    /** Hours a Khipu payment can be paid before it expires. */
    KHIPU_PAYMENT_EXPIRY_HOURS: positiveInt(24),
    /** A payment still pending this long after creation is polled, in case its notification never arrives. */
    KHIPU_POLL_AFTER_SECONDS: positiveInt(180),
    KHIPU_POLL_INTERVAL_SECONDS: positiveInt(60),
    /** Overall deadline of each Khipu call. */
    KHIPU_TIMEOUT_MS: providerTimeoutMs(15_000),

    /** Where merchant webhooks are POSTed (order.registered, order.paid, payment.failed, …); unset = none sent. */
    MERCHANT_WEBHOOK_URL: optionalUrl,
    MERCHANT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    WEBHOOK_DISPATCH_INTERVAL_MS: positiveInt(2_000),
    CARD_BASE_URL: optionalUrl,
    CARD_MERCHANT_ID: optionalString,
    CARD_KEY: optionalString,
    /** The gateway's tokenizer page (how a card becomes a token is not public; see README). */
    CARD_TOKENIZER_URL: optionalUrl,
    /** Digest encoding of the gateway's signature headers (unverified: hex or base64). */
    CARD_AUTH_ENCODING: z.enum(['hex', 'base64']).default('hex'),
    /** Overall deadline of each card gateway call. */
    CARD_TIMEOUT_MS: providerTimeoutMs(15_000),
    /** How often due instalments are charged. */
    CARD_CHARGE_INTERVAL_SECONDS: positiveInt(300),
    /** How long a charge run owns an instalment; a crashed instance's instalments are taken over after this. */
    CARD_CHARGE_LEASE_SECONDS: positiveInt(120),
    /** Charges under way at once per instance; also the most a crash can leave for review (the client sends at most 16 at once). */
    CARD_CHARGE_CONCURRENCY: positiveInt(32),
    LEGAL_RECURRING_VERSION: z.string().min(1).default('domiciliacion-2026-11'),
    TUPAY_BASE_URL: optionalUrl,
    TUPAY_ACCESS_KEY: optionalString,
    TUPAY_SECRET_KEY: optionalString,
    /** Overall deadline of each Tupay call (one login, one page): reconciliation is a batch job, not a customer. */
    TUPAY_TIMEOUT_MS: providerTimeoutMs(60_000),
    /** Offset of Tupay's zone-less dates ("YYYY-MM-DD HH:mm:ss"); the document does not say which zone they are in. */
    TUPAY_UTC_OFFSET: z.string().regex(/^[+-]\d{2}:\d{2}$/, 'must look like +00:00 or -05:00').default('+00:00'),
    /** Deposit statuses that mean the money is ours (the document and NOTES.md disagree on the list). */
    TUPAY_PAID_STATUSES: z.string().default('COMPLETED,APPROVED,EARLY_RELEASED').transform(statusList),
    /** Cash-out statuses that mean the money left. */
    TUPAY_CASHOUT_DONE_STATUSES: z.string().default('COMPLETED,DELIVERED').transform(statusList),
    /** Days the daily reconciliation re-reads from Tupay and reports on (statuses change after the fact). */
    RECONCILIATION_LOOKBACK_DAYS: z.coerce.number().int().min(1).max(60).default(30),
    /** Hour (0–23, Mexico City) from which the daily reconciliation runs. */
    RECONCILIATION_HOUR: z.coerce.number().int().min(0).max(23).default(6),

    /** Payment methods the merchant offers (each also needs its provider configured). */
    PAYMENT_METHODS: z
      .string()
      .default('email,khipu,card')
      .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean))
      .pipe(z.array(z.enum(['email', 'khipu', 'card'])).min(1)),
    LEGAL_TERMS_URL: z.url().default('https://kasu.com.mx/terminos-y-condiciones'),
    LEGAL_TERMS_VERSION: z.string().min(1).default('2024-01'),
    LEGAL_PRIVACY_URL: z.url().default('https://kasu.com.mx/aviso-de-privacidad'),
    LEGAL_PRIVACY_VERSION: z.string().min(1).default('2024-01'),
    LEGAL_TRUST_URL: z.url().default('https://kasu.com.mx/fideicomiso'),
    LEGAL_TRUST_VERSION: z.string().min(1).default('F/0003'),
    CHECKOUT_TTL_HOURS: positiveInt(48),
    /** A quote older than this is priced again at submit; a different price is shown to the customer before paying. */
    QUOTE_VALID_MINUTES: positiveInt(30),
  })
  .superRefine((env, ctx) => {
    if (env.MODE !== 'live') return;
    const required = [
      'PUBLIC_URL', 'ADMIN_TOKEN', 'KASU_BASE_URL', 'KASU_USER', 'KASU_PRIVATE_KEY',
    ] as const;
    for (const key of required) {
      if (!env[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when MODE=live' });
    }
    for (const [key, value] of Object.entries(SANDBOX)) {
      if (env[key as keyof typeof SANDBOX] === value) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'is the sandbox value; set the real credential for MODE=live' });
      }
    }
    if (env.MERCHANT_WEBHOOK_URL && !env.MERCHANT_WEBHOOK_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['MERCHANT_WEBHOOK_SECRET'], message: 'is required when MERCHANT_WEBHOOK_URL is set' });
    }
    if (Boolean(env.TUPAY_ACCESS_KEY) !== Boolean(env.TUPAY_SECRET_KEY)) {
      ctx.addIssue({ code: 'custom', path: ['TUPAY_SECRET_KEY'], message: 'TUPAY_ACCESS_KEY and TUPAY_SECRET_KEY go together' });
    }
    if (Boolean(env.KHIPU_RECEIVER_ID) !== Boolean(env.KHIPU_SECRET)) {
      ctx.addIssue({ code: 'custom', path: ['KHIPU_SECRET'], message: 'KHIPU_RECEIVER_ID and KHIPU_SECRET go together' });
    }
    if (env.ALLOWED_ORIGINS.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['ALLOWED_ORIGINS'], message: 'is required when MODE=live (the partner sites)' });
    }
  });

export type Env = z.output<typeof EnvSchema>;

/** A provider's timeouts with the overall deadline always set (see ProviderTimeouts). */
export type CallTimeouts = Required<ProviderTimeouts>;

/** Connecting never gets more than this of a call's deadline. */
const CONNECT_MS = 5_000;

/**
 * A provider's timeouts from its *_TIMEOUT_MS, which is the overall deadline of each call (connect, send, headers
 * and the whole body; the call is aborted when it passes). Connecting gets at most 5 s of it; undici's headers timeout
 * and body (silence) timeout at most `waitMs` each: backstops, the deadline decides.
 */
export function providerTimeouts(totalMs: number, waitMs = totalMs): CallTimeouts {
  const wait = Math.min(totalMs, waitMs);
  return { connectMs: Math.min(totalMs, CONNECT_MS), headersMs: wait, bodyMs: wait, totalMs };
}

export type Config = {
  mode: 'sandbox' | 'live';
  port: number;
  host: string;
  publicUrl: string;
  /** The embedded database has no autovacuum: `vacuumIntervalHours` is how often the BFF vacuums and analyses it. */
  database: { kind: 'pglite'; dataDir: string; vacuumIntervalHours: number } | { kind: 'postgres'; url: string };
  allowedOrigins: string[];
  adminToken: string | undefined;
  logLevel: Env['LOG_LEVEL'];
  /** Express's `trust proxy` (TRUST_PROXY): which proxies' X-Forwarded-For decides the client IP. */
  trustProxy: TrustProxy;
  /** Requests per window (one minute) shared by every instance through the database; 0 = no limit. */
  rateLimits: { curpPerIp: number; perCheckout: number; windowSeconds: number };
  checkoutTtlHours: number;
  quoteValidMinutes: number;
  instalmentOptions: number[];
  paymentMethods: Array<'email' | 'khipu' | 'card'>;
  legal: { terms: { url: string; version: string }; privacy: { url: string; version: string }; trust: { url: string; version: string } };
  kasu: {
    /** null in sandbox mode without KASU_BASE_URL: the built-in simulator, at this server's own address. */
    baseUrl: string | null;
    user: string;
    privateKey: string;
    paths: { tokenFull: string; modifyRecord: string; newService: string };
    timeouts: CallTimeouts;
    tokenRefreshSkewSeconds: number;
    userAgent: string;
  };
  /** null when this deployment does not take Khipu payments (live mode without credentials). */
  khipu: {
    /** null in sandbox mode without KHIPU_BASE_URL: the built-in simulator. */
    baseUrl: string | null;
    receiverId: string;
    secret: string;
    paymentExpiryHours: number;
    pollAfterSeconds: number;
    pollIntervalSeconds: number;
    timeouts: CallTimeouts;
    userAgent: string;
  } | null;
  merchantWebhooks: { url: string | null; secret: string; dispatchIntervalMs: number };
  /** null when this deployment does not reconcile Tupay (live mode without credentials). */
  tupay: {
    /** null in sandbox mode without TUPAY_BASE_URL: the built-in simulator. */
    baseUrl: string | null;
    accessKey: string;
    secretKey: string;
    utcOffset: string;
    paidStatuses: string[];
    cashoutDoneStatuses: string[];
    timeouts: CallTimeouts;
    userAgent: string;
  } | null;
  reconciliation: { lookbackDays: number; dailyHour: number };
  /** null when this deployment does not take cards (live mode without credentials). */
  card: {
    /** null in sandbox mode without CARD_BASE_URL: the built-in simulator. */
    baseUrl: string | null;
    merchantId: string;
    key: string;
    tokenizerUrl: string | null;
    auth: { encoding: 'hex' | 'base64' };
    timeouts: CallTimeouts;
    chargeIntervalSeconds: number;
    chargeLeaseSeconds: number;
    chargeConcurrency: number;
    recurringConsentVersion: string;
    userAgent: string;
  } | null;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parse an environment (process.env by default). Throws ConfigError listing every problem. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // Empty strings in a .env file mean "not set".
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'} ${issue.message}`));
  }
  const env = parsed.data;
  const publicUrl = (env.PUBLIC_URL ?? `http://localhost:${env.PORT}`).replace(/\/$/, '');
  const sandbox = env.MODE === 'sandbox';
  return {
    mode: env.MODE,
    port: env.PORT,
    host: env.HOST,
    publicUrl,
    database: env.DATABASE_URL
      ? { kind: 'postgres', url: env.DATABASE_URL }
      : { kind: 'pglite', dataDir: env.DATA_DIR, vacuumIntervalHours: env.DATA_DIR_VACUUM_HOURS },
    allowedOrigins: env.ALLOWED_ORIGINS,
    adminToken: env.ADMIN_TOKEN ?? (sandbox ? SANDBOX.ADMIN_TOKEN : undefined),
    logLevel: env.LOG_LEVEL,
    trustProxy: env.TRUST_PROXY,
    rateLimits: {
      curpPerIp: env.RATE_LIMIT_CURP_PER_IP_PER_MINUTE,
      perCheckout: env.RATE_LIMIT_PER_CHECKOUT_PER_MINUTE,
      windowSeconds: 60,
    },
    checkoutTtlHours: env.CHECKOUT_TTL_HOURS,
    quoteValidMinutes: env.QUOTE_VALID_MINUTES,
    instalmentOptions: env.INSTALMENT_OPTIONS,
    paymentMethods: env.PAYMENT_METHODS,
    legal: {
      terms: { url: env.LEGAL_TERMS_URL, version: env.LEGAL_TERMS_VERSION },
      privacy: { url: env.LEGAL_PRIVACY_URL, version: env.LEGAL_PRIVACY_VERSION },
      trust: { url: env.LEGAL_TRUST_URL, version: env.LEGAL_TRUST_VERSION },
    },
    kasu: {
      baseUrl: env.KASU_BASE_URL ?? null,
      user: env.KASU_USER ?? SANDBOX.KASU_USER,
      privateKey: env.KASU_PRIVATE_KEY ?? SANDBOX.KASU_PRIVATE_KEY,
      paths: {
        tokenFull: env.KASU_PATH_TOKEN_FULL,
        modifyRecord: env.KASU_PATH_MODIFY_RECORD,
        newService: env.KASU_PATH_NEW_SERVICE,
      },
      timeouts: providerTimeouts(env.KASU_TIMEOUT_MS),
      tokenRefreshSkewSeconds: 30,
      userAgent: 'kasu-checkout/0.1',
    },
    khipu: sandbox || env.KHIPU_RECEIVER_ID
      ? {
          baseUrl: env.KHIPU_BASE_URL ?? (sandbox ? null : 'https://khipu.com/api/2.0'),
          receiverId: env.KHIPU_RECEIVER_ID ?? SANDBOX.KHIPU_RECEIVER_ID,
          secret: env.KHIPU_SECRET ?? SANDBOX.KHIPU_SECRET,
          paymentExpiryHours: env.KHIPU_PAYMENT_EXPIRY_HOURS,
          pollAfterSeconds: env.KHIPU_POLL_AFTER_SECONDS,
          pollIntervalSeconds: env.KHIPU_POLL_INTERVAL_SECONDS,
          timeouts: providerTimeouts(env.KHIPU_TIMEOUT_MS),
          userAgent: 'kasu-checkout/0.1',
        }
      : null,
    card: sandbox || (env.CARD_MERCHANT_ID && env.CARD_KEY && env.CARD_BASE_URL && env.CARD_TOKENIZER_URL)
      ? {
          baseUrl: env.CARD_BASE_URL ?? null,
          merchantId: env.CARD_MERCHANT_ID ?? SANDBOX.CARD_MERCHANT_ID,
          key: env.CARD_KEY ?? SANDBOX.CARD_KEY,
          tokenizerUrl: env.CARD_TOKENIZER_URL ?? null,
          auth: { encoding: env.CARD_AUTH_ENCODING },
          timeouts: providerTimeouts(env.CARD_TIMEOUT_MS),
          chargeIntervalSeconds: env.CARD_CHARGE_INTERVAL_SECONDS,
          chargeLeaseSeconds: env.CARD_CHARGE_LEASE_SECONDS,
          chargeConcurrency: env.CARD_CHARGE_CONCURRENCY,
          recurringConsentVersion: env.LEGAL_RECURRING_VERSION,
          userAgent: 'kasu-checkout/0.1',
        }
      : null,
    tupay: sandbox || (env.TUPAY_ACCESS_KEY && env.TUPAY_SECRET_KEY)
      ? {
          baseUrl: env.TUPAY_BASE_URL ?? (sandbox ? null : 'https://merchants-api.tupayonline.com'),
          accessKey: env.TUPAY_ACCESS_KEY ?? SANDBOX.TUPAY_ACCESS_KEY,
          secretKey: env.TUPAY_SECRET_KEY ?? SANDBOX.TUPAY_SECRET_KEY,
          utcOffset: env.TUPAY_UTC_OFFSET,
          paidStatuses: env.TUPAY_PAID_STATUSES,
          cashoutDoneStatuses: env.TUPAY_CASHOUT_DONE_STATUSES,
          // A page may take a while to come (and to arrive): 30 s of silence at most, the whole call within the deadline.
          timeouts: providerTimeouts(env.TUPAY_TIMEOUT_MS, 30_000),
          userAgent: 'kasu-checkout/0.1',
        }
      : null,
    reconciliation: { lookbackDays: env.RECONCILIATION_LOOKBACK_DAYS, dailyHour: env.RECONCILIATION_HOUR },
    merchantWebhooks: {
      url: env.MERCHANT_WEBHOOK_URL ?? null,
      secret: env.MERCHANT_WEBHOOK_SECRET ?? SANDBOX.MERCHANT_WEBHOOK_SECRET,
      dispatchIntervalMs: env.WEBHOOK_DISPATCH_INTERVAL_MS,
    },
  };
}
