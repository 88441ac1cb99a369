/**
 * The checkout: from a CURP to a KASU registration, registered exactly once however often submit is repeated.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseCurp, ageOn } from '../../shared/curp.js';
import {
  CONSENT_DOCUMENTS, PRODUCTS, PRODUCT_AGE_LIMITS,
  type CheckoutView, type Consents, type PaymentMethod, type Product, type ProductEligibility, type Quote,
  type UpdateCheckoutRequestSchema, type SubmitRequest,
} from '../../shared/contract.js';
import { instalmentPlan, type Centavos } from '../../shared/money.js';
import { MX_STATES } from '../../shared/mexico.js';
import type { z } from 'zod';
import { AppError, ProviderError } from '../errors.js';
import { ERRORS, type ErrorCode } from '../../shared/errors.js';
import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import * as store from './checkout-store.js';
import { GroupCommit } from '../db/group-commit.js';
import type { KhipuPayments } from '../payments/khipu-payments.js';
import type { CardPayments } from '../cards/card-payments.js';
import { enqueueMerchantEvent } from '../webhooks/merchant-webhooks.js';
import type { CheckoutRecord, OrderRecord } from './checkout-store.js';

/** What the checkout needs from KASU (the KasuClient implements it). */
export interface KasuApi {
  verifyCurp(curp: string): Promise<{ name: string }>;
  price(curp: string, product: Product): Promise<{
    kasuProduct: string; price: Centavos; commission: Centavos; maxInstalments: number; annualRatePercent: number;
  }>;
  register(input: {
    curp: string; email: string; phone: string; product: Product; instalments: number;
    consents: Consents;
    address: { street: string; number: string; neighborhood: string; municipality: string; postalCode: string; stateName: string };
  }): Promise<{ policy: string; status: string; name: string; price: Centavos; instalments: number; paymentLink: string | null; message: string }>;
}

export type CheckoutSettings = {
  ttlHours: number;
  /** A quote older than this is priced again at submit (default 30). */
  quoteValidMinutes?: number;
  instalmentOptions: number[];
  legal: Record<(typeof CONSENT_DOCUMENTS)[number], { url: string; version: string }>;
  /** Payment methods this deployment can take now. */
  paymentMethods: PaymentMethod[];
  /** Origins a Khipu return URL may point to (the partner sites); empty = any (sandbox). */
  returnUrlOrigins: string[];
  /** Where Khipu sends the customer back when the widget gives no return URL. */
  defaultReturnUrl: string;
  merchantWebhookUrl: string | null;
  /** Told of each registration once it is committed (sandbox mode: the Tupay simulator's customers pay later). */
  onOrderRegistered?: (order: { reference: string; paymentMethod: PaymentMethod; instalmentAmount: number; curp: string }) => void;
};

export type RequestContext = { ip: string | null; userAgent: string | null };

/** A submit that another request holds is waited for this long before answering SUBMIT_IN_PROGRESS. */
const SUBMIT_WAIT_MS = 15_000;
/** A registration claim this old belongs to a process that died; another may take it over. */
const STALE_CLAIM_SECONDS = 120;
const REGISTERED_RETENTION_DAYS = 90;

/** Checkout identities an instance keeps in memory (see authorizeIdentity). */
const IDENTITY_CACHE_SIZE = 10_000;

/** What never changes in a checkout once created (its token, its person) and its expiry, which only ever moves later. */
export type CheckoutIdentity = Pick<CheckoutRecord, 'id' | 'tokenHash' | 'curp' | 'birthDate' | 'sex' | 'expiresAt'>;

const randomId = (prefix: string, bytes = 12) => `${prefix}_${randomBytes(bytes).toString('base64url')}`;
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** Payments rows name their provider; the customer sees the method. */
function paymentMethodOf(provider: string): PaymentMethod {
  return provider === 'kasu_email' ? 'email' : (provider as PaymentMethod);
}

/** Our order reference: what the customer, KASU's email and the payment providers see. */
function newOrderReference(): string {
  const alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
  const bytes = randomBytes(10);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return `KC-${out}`;
}

/** At most this many checkouts created, or quotes saved, by one statement. */
const GROUP_MAX = 100;

export class CheckoutService {
  private readonly identities = new Map<string, CheckoutIdentity>();
  /** Checkouts created, and quotes saved, at the same time share statements (group commit: see GroupCommit). */
  private readonly inserts: GroupCommit<store.NewCheckout, CheckoutRecord>;
  private readonly quotes: GroupCommit<{ id: string; quote: Quote }, CheckoutRecord | null>;

  constructor(
    private readonly db: Database,
    private readonly kasu: KasuApi,
    private readonly settings: CheckoutSettings,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
    private readonly khipu: KhipuPayments | null = null,
    private readonly cards: CardPayments | null = null,
  ) {
    this.inserts = new GroupCommit((items) => store.insertCheckouts(this.db, items), { maxGroup: GROUP_MAX, delayMs: 0 });
    this.quotes = new GroupCommit((items) => store.saveQuotes(this.db, items), { maxGroup: GROUP_MAX, delayMs: 0 });
  }

  // ---------- create, authorise, view ----------

  async create(curpInput: string): Promise<{ checkout: CheckoutView; token: string }> {
    const parsed = parseCurp(curpInput, this.now());
    if (!parsed.ok) throw new AppError(parsed.code, { fields: { curp: parsed.code } });
    // token_full tells whether RENAPO knows the CURP (417 otherwise), and warms the token for quote and submit.
    await this.kasu.verifyCurp(parsed.curp);
    const token = randomBytes(32).toString('base64url');
    const record = await this.inserts.run({
      id: randomId('chk'),
      tokenHash: sha256(token),
      curp: parsed.curp,
      birthDate: parsed.birthDate,
      sex: parsed.sex,
      expiresAt: new Date(this.now().getTime() + this.settings.ttlHours * 3_600_000),
    });
    this.logger.info('checkout created', { checkoutId: record.id, curp: record.curp });
    this.remember(record);
    // A new checkout has no order yet.
    return { checkout: await this.view(record, null), token };
  }

  /** The checkout, when `token` is its own and it has not expired. */
  async authorize(id: string, token: string | null): Promise<CheckoutRecord> {
    if (!token) throw new AppError('UNAUTHORIZED');
    const record = await store.findCheckout(this.db, id);
    const expected = Buffer.from(record?.tokenHash ?? sha256('no checkout'), 'hex');
    const given = Buffer.from(sha256(token), 'hex');
    if (!record || !timingSafeEqual(expected, given) || record.expiresAt.getTime() < this.now().getTime()) {
      throw new AppError('UNAUTHORIZED');
    }
    this.remember(record);
    return record;
  }

  /**
   * The checkout's identity, when `token` is its own and it has not expired, from memory when this instance has seen
   * the checkout before: a token and a person never change, and an expiry only moves later, so an entry that looks
   * expired is read again. For calls that read nothing else of the checkout before their own statement (quote).
   */
  async authorizeIdentity(id: string, token: string | null): Promise<CheckoutIdentity> {
    if (!token) throw new AppError('UNAUTHORIZED');
    const known = this.identities.get(id);
    if (!known || known.expiresAt.getTime() < this.now().getTime()) return this.authorize(id, token);
    if (!timingSafeEqual(Buffer.from(known.tokenHash, 'hex'), Buffer.from(sha256(token), 'hex'))) throw new AppError('UNAUTHORIZED');
    return known;
  }

  private remember(record: CheckoutRecord): void {
    if (!this.identities.has(record.id) && this.identities.size >= IDENTITY_CACHE_SIZE) {
      this.identities.delete(this.identities.keys().next().value!);
    }
    const { id, tokenHash, curp, birthDate, sex, expiresAt } = record;
    this.identities.set(id, { id, tokenHash, curp, birthDate, sex, expiresAt });
  }

  async view(record: CheckoutRecord, order?: OrderRecord | null): Promise<CheckoutView> {
    const theOrder = order === undefined ? await store.findOrderByCheckout(this.db, record.id) : order;
    const payment = theOrder?.status === 'registered' ? await store.findCurrentPayment(this.db, theOrder.id) : null;
    return {
      id: record.id,
      status: record.status,
      customer: { curp: record.curp, birthDate: record.birthDate, age: this.age(record), sex: record.sex },
      products: this.eligibility(record),
      product: record.product,
      quote: record.quote,
      planCount: record.planCount,
      contact: record.contact,
      address: record.address,
      consents: record.consents,
      documents: CONSENT_DOCUMENTS.map((id) => ({ id, ...this.settings.legal[id] })),
      paymentMethods: (['email', 'khipu', 'card'] as const).map((method) => ({
        method, available: this.settings.paymentMethods.includes(method),
      })),
      order: theOrder && theOrder.status === 'registered'
        ? {
            reference: theOrder.reference,
            policy: theOrder.policy,
            kasuStatus: theOrder.kasuStatus,
            paymentMethod: theOrder.paymentMethod,
            currency: theOrder.currency,
            price: theOrder.price,
            instalments: theOrder.instalments,
            instalmentAmount: theOrder.instalmentAmount,
            registeredAt: theOrder.registeredAt?.toISOString() ?? null,
          }
        : null,
      payment: payment
        ? {
            id: payment.id,
            method: paymentMethodOf(payment.provider),
            // Not yet created at the provider: still pending for the customer, with nothing to open yet.
            status: payment.status === 'new' || payment.status === 'creating' ? 'pending' : payment.status,
            currency: payment.currency,
            amount: payment.amount,
            instalment: payment.instalmentNumber,
            redirectUrl: payment.status === 'pending' ? payment.paymentUrl : null,
            paidAt: payment.paidAt?.toISOString() ?? null,
          }
        : null,
      subscription: theOrder?.status === 'registered' && theOrder.paymentMethod === 'card'
        ? await this.cards?.subscriptionView(theOrder.id) ?? null
        : null,
      expiresAt: record.expiresAt.toISOString(),
    };
  }

  private age(record: Pick<CheckoutRecord, 'birthDate'>): number {
    return ageOn(record.birthDate, this.now());
  }

  private eligibility(record: Pick<CheckoutRecord, 'birthDate'>): ProductEligibility[] {
    const age = this.age(record);
    return PRODUCTS.map((product) => {
      const { minAge, maxAge } = PRODUCT_AGE_LIMITS[product];
      const reason = age < minAge ? 'TOO_YOUNG' : age > maxAge ? 'TOO_OLD' : undefined;
      return reason ? { product, eligible: false, reason, minAge, maxAge } : { product, eligible: true, minAge, maxAge };
    });
  }

  private assertEligible(record: Pick<CheckoutRecord, 'birthDate'>, product: Product): void {
    const entry = this.eligibility(record).find((item) => item.product === product);
    if (!entry?.eligible) throw new AppError('PRODUCT_NOT_ELIGIBLE', { fields: { product: entry?.reason ?? 'PRODUCT_NOT_ELIGIBLE' } });
  }

  private assertOpen(record: CheckoutRecord): void {
    if (record.status !== 'open') throw new AppError('CHECKOUT_CLOSED');
  }

  // ---------- quote and update ----------

  /** The card tokenizer frame for this checkout. */
  async cardSession(record: CheckoutRecord, origin: string) {
    if (!this.cards || !this.settings.paymentMethods.includes('card')) throw new AppError('PAYMENT_METHOD_UNAVAILABLE');
    // Also after registration: a declined first charge is retried with another card.
    if (record.status === 'needs_review') throw new AppError('REGISTRATION_NEEDS_REVIEW');
    return this.cards.session(record, origin);
  }

  /** KASU's price for this person and product, as the plans this merchant offers. */
  private async price(curp: string, product: Product): Promise<Quote> {
    const price = await this.kasu.price(curp, product);
    const counts = this.settings.instalmentOptions.filter((n) => n <= Math.max(1, price.maxInstalments));
    return {
      product,
      kasuProduct: price.kasuProduct,
      currency: 'MXN',
      price: price.price,
      annualRatePercent: price.annualRatePercent,
      plans: (counts.length ? counts : [1]).map((n) => instalmentPlan(price.price, n, price.annualRatePercent)),
      quotedAt: this.now().toISOString(),
    };
  }

  /**
   * At submit, a quote older than quoteValidMinutes is priced again. The same price: the quote is renewed and the
   * purchase goes on. Another price: the new quote is saved and PRICE_CHANGED answered, so that the customer sees
   * the new amounts before anything is registered or charged.
   */
  private async confirmPrice(record: CheckoutRecord): Promise<void> {
    const quote = record.quote!;
    const validMs = (this.settings.quoteValidMinutes ?? 30) * 60_000;
    if (this.now().getTime() - Date.parse(quote.quotedAt) < validMs) return;
    const fresh = await this.price(record.curp, quote.product);
    const same = fresh.price === quote.price && fresh.annualRatePercent === quote.annualRatePercent
      && fresh.kasuProduct === quote.kasuProduct;
    const keepPlan = fresh.plans.some((plan) => plan.count === record.planCount);
    const updated = await store.updateOpenCheckout(this.db, record.id, {
      product: quote.product, quote: fresh, planCount: keepPlan ? record.planCount : null,
    });
    if (!updated) throw new AppError('CHECKOUT_CLOSED');
    if (same && keepPlan) return;
    this.logger.info('price changed since the quote', { checkoutId: record.id, was: quote.price, now: fresh.price });
    throw new AppError('PRICE_CHANGED', { fields: { price: 'CHANGED' } });
  }

  /**
   * Prices `product` for this person and saves the quote, in one statement that also checks the checkout is still
   * open (so a quote reads nothing of the checkout beforehand: see authorizeIdentity). The chosen number of
   * instalments is kept when the product is the same and still offers it.
   */
  async quote(identity: CheckoutIdentity, product: Product): Promise<{ quote: Quote; checkout: CheckoutView }> {
    this.assertEligible(identity, product);
    const quote = await this.price(identity.curp, product);
    const updated = await this.quotes.run({ id: identity.id, quote });
    if (!updated) throw new AppError('CHECKOUT_CLOSED');
    // An open checkout has no registered order: nothing more to read for its view.
    return { quote, checkout: await this.view(updated, null) };
  }

  async update(
    record: CheckoutRecord,
    changes: z.output<typeof UpdateCheckoutRequestSchema>,
    context: RequestContext,
  ): Promise<CheckoutView> {
    this.assertOpen(record);
    const next: store.CheckoutChanges = {};
    let product = record.product;
    let quote = record.quote;
    if (changes.product !== undefined && changes.product !== record.product) {
      this.assertEligible(record, changes.product);
      product = changes.product;
      next.product = product;
      if (quote?.product !== product) {
        quote = null;
        next.quote = null;
        next.planCount = null;
      }
    }
    if (changes.planCount !== undefined) {
      if (!quote || quote.product !== product) {
        throw new AppError('CHECKOUT_INCOMPLETE', { fields: { planCount: 'QUOTE_REQUIRED' } });
      }
      if (!quote.plans.some((plan) => plan.count === changes.planCount)) {
        throw new AppError('VALIDATION_FAILED', { fields: { planCount: 'PLAN_NOT_OFFERED' } });
      }
      next.planCount = changes.planCount;
    }
    if (changes.contact) next.contact = changes.contact;
    if (changes.address) next.address = changes.address;

    const consentEvents: Parameters<typeof store.insertConsentEvents>[1] = [];
    if (changes.consents) {
      const consents = { ...record.consents };
      for (const document of CONSENT_DOCUMENTS) {
        const accepted = changes.consents[document];
        if (accepted === undefined || accepted === consents[document]) continue;
        consents[document] = accepted;
        consentEvents.push({
          checkoutId: record.id, document, accepted, ...this.settings.legal[document],
          ip: context.ip, userAgent: context.userAgent,
        });
      }
      next.consents = consents;
    }

    const updated = await this.db.transaction(async (tx) => {
      const row = await store.updateOpenCheckout(tx, record.id, next);
      if (!row) throw new AppError('CHECKOUT_CLOSED');
      await store.insertConsentEvents(tx, consentEvents);
      return row;
    });
    return this.view(updated, null);
  }

  // ---------- submit ----------

  /**
   * Registers the checkout with KASU once. The Idempotency-Key makes a repeated request answer what the first
   * answered; the claim on the checkout row makes registration happen once even across different keys,
   * concurrent requests and several server instances.
   */
  async submit(record: CheckoutRecord, request: SubmitRequest, idempotencyKey: string, context: RequestContext = { ip: null, userAgent: null }): Promise<CheckoutView> {
    const requestHash = sha256(JSON.stringify(request));
    const previous = await store.reserveIdempotencyKey(this.db, record.id, idempotencyKey, requestHash);
    if (previous && previous.requestHash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED');
    if (previous?.responseStatus) {
      // Same key, same request: the same answer (the checkout as it is now, or the same error).
      const replay = previous.responseBody as { error?: { code: ErrorCode } };
      if (replay.error) throw new AppError(replay.error.code, { detail: { replayed: true } });
      return this.view((await store.findCheckout(this.db, record.id)) ?? record);
    }
    try {
      const view = await this.registerOnce(record, request, context);
      await store.saveIdempotentResponse(this.db, record.id, idempotencyKey, 200, { checkout: view });
      return view;
    } catch (error) {
      // A definite answer is final for this key; a retryable one leaves the key open so that a retry runs again.
      if (error instanceof AppError && !error.retryable) {
        await store.saveIdempotentResponse(this.db, record.id, idempotencyKey, error.status, { error: { code: error.code } });
      }
      throw error;
    }
  }

  private async registerOnce(record: CheckoutRecord, request: SubmitRequest, context: RequestContext): Promise<CheckoutView> {
    if (record.status === 'registered') return this.startPayment(record, request, context);
    if (record.status === 'needs_review') throw new AppError('REGISTRATION_NEEDS_REVIEW');
    if (record.status === 'open') {
      this.assertReadyToSubmit(record, request);
      await this.confirmPrice(record);
    }

    const claimed = await store.claimCheckoutForSubmit(this.db, record.id, request.paymentMethod, STALE_CLAIM_SECONDS);
    if (!claimed) {
      const settled = await this.waitForOtherSubmit(record.id);
      return this.startPayment(settled, request, context);
    }
    // The claim may have raced with an update: check the claimed row, not the one we read before.
    try {
      this.assertReadyToSubmit(claimed, request);
    } catch (error) {
      await store.setCheckoutStatus(this.db, claimed.id, 'open');
      throw error;
    }
    const registered = await this.register(claimed, request.paymentMethod);
    return this.startPayment(registered, request, context);
  }

  /**
   * After registration: start the payment of the first instalment at its provider (Khipu), once. Pay later has
   * nothing to start (KASU emails the link). Repeating a submit whose payment creation failed tries again.
   */
  private async startPayment(record: CheckoutRecord, request: SubmitRequest, context: RequestContext): Promise<CheckoutView> {
    const order = await store.findOrderByCheckout(this.db, record.id);
    if (order?.status === 'registered' && order.paymentMethod === 'card') {
      if (!this.cards) throw new AppError('PAYMENT_METHOD_UNAVAILABLE');
      await this.cards.enroll(record, order, request, context);
    }
    if (order?.status === 'registered' && order.paymentMethod === 'khipu') {
      const payment = await store.findCurrentPayment(this.db, order.id);
      if (!this.khipu) throw new AppError('PAYMENT_METHOD_UNAVAILABLE');
      if (payment && !payment.providerReference && payment.status !== 'paid') {
        await this.khipu.ensureCreated(payment, order, {
          payerEmail: record.contact!.email,
          payerName: order.customerName,
          bankId: request.khipuBankId,
          returnUrl: request.returnUrl ?? this.settings.defaultReturnUrl,
        });
      }
    }
    return this.view(record, order);
  }

  private assertReturnUrl(returnUrl: string | undefined): void {
    if (!returnUrl || this.settings.returnUrlOrigins.length === 0) return;
    if (!this.settings.returnUrlOrigins.includes(new URL(returnUrl).origin)) {
      // The partner page is not among ALLOWED_ORIGINS: the merchant's setup, nothing the customer can fix.
      throw new AppError('PROVIDER_CONFIG_ERROR', { detail: { reason: 'return URL origin not allowed', origin: new URL(returnUrl).origin } });
    }
  }

  private assertReadyToSubmit(record: CheckoutRecord, request: SubmitRequest): void {
    const paymentMethod = request.paymentMethod;
    const missing: Record<string, string> = {};
    if (!record.product) missing.product = 'REQUIRED';
    if (!record.quote || record.quote.product !== record.product) missing.quote = 'REQUIRED';
    if (!record.planCount) missing.planCount = 'REQUIRED';
    if (!record.contact) missing.contact = 'REQUIRED';
    if (!record.address) missing.address = 'REQUIRED';
    if (Object.keys(missing).length) throw new AppError('CHECKOUT_INCOMPLETE', { fields: missing });
    const notAccepted = CONSENT_DOCUMENTS.filter((document) => !record.consents[document]);
    if (notAccepted.length) {
      throw new AppError('CONSENT_REQUIRED', { fields: Object.fromEntries(notAccepted.map((d) => [`consents.${d}`, 'REQUIRED'])) });
    }
    this.assertEligible(record, record.product!);
    if (!this.settings.paymentMethods.includes(paymentMethod)) {
      throw new AppError('PAYMENT_METHOD_UNAVAILABLE', { fields: { paymentMethod: 'UNAVAILABLE' } });
    }
    if (paymentMethod === 'khipu') this.assertReturnUrl(request.returnUrl);
    // A card purchase is not registered with KASU before there is a card and a recurring-charge consent.
    if (paymentMethod === 'card') this.cards?.assertReady(request);
  }

  private async register(record: CheckoutRecord, paymentMethod: PaymentMethod): Promise<CheckoutRecord> {
    const quote = record.quote!;
    const plan = quote.plans.find((item) => item.count === record.planCount)!;
    const order = await store.upsertOrderForAttempt(this.db, {
      id: randomId('ord'),
      reference: newOrderReference(),
      checkoutId: record.id,
      curp: record.curp,
      product: record.product!,
      kasuProduct: quote.kasuProduct,
      paymentMethod,
      price: quote.price,
      instalments: plan.count,
      instalmentAmount: plan.instalment,
    });
    const log = this.logger.child({ checkoutId: record.id, reference: order.reference, attempt: order.registrationAttempts });
    const contact = record.contact!;
    const address = record.address!;

    let result: Awaited<ReturnType<KasuApi['register']>>;
    try {
      result = await this.kasu.register({
        curp: record.curp,
        email: contact.email,
        phone: contact.phone,
        product: record.product!,
        instalments: plan.count,
        consents: record.consents,
        address: {
          street: address.street, number: address.number, neighborhood: address.neighborhood,
          municipality: address.municipality, postalCode: address.postalCode, stateName: MX_STATES[address.state],
        },
      });
    } catch (error) {
      await this.recordFailedAttempt(record, order, error, log);
      throw error;
    }

    const registered = await this.db.transaction(async (tx) => {
      const saved = await store.markOrderRegistered(tx, order.id, {
        policy: result.policy,
        kasuStatus: result.status,
        customerName: result.name,
        price: result.price || order.price,
        instalmentAmount: result.price && result.price !== order.price
          ? instalmentPlan(result.price, plan.count, quote.annualRatePercent).instalment
          : order.instalmentAmount,
        paymentLink: result.paymentLink,
      });
      // The first instalment. Pay later: KASU emails the customer the payment link, so it is simply pending.
      // Khipu: 'new' until the payment exists at Khipu (startPayment creates it, outside this transaction).
      // Card: the charge engine records each instalment's payment when the gateway approves it.
      if (paymentMethod !== 'card') await store.insertPayment(tx, {
        id: randomId('pay'), orderId: saved.id, provider: paymentMethod === 'email' ? 'kasu_email' : paymentMethod,
        status: paymentMethod === 'email' ? 'pending' : 'new', amount: saved.instalmentAmount, instalmentNumber: 1,
        paymentUrl: paymentMethod === 'email' ? result.paymentLink : null,
      });
      await store.setCheckoutStatus(tx, record.id, 'registered', new Date(this.now().getTime() + REGISTERED_RETENTION_DAYS * 86_400_000));
      await enqueueMerchantEvent(tx, this.settings.merchantWebhookUrl, 'order.registered', {
        reference: saved.reference, policy: saved.policy, kasuStatus: saved.kasuStatus, product: saved.product,
        paymentMethod, currency: saved.currency, price: saved.price, instalments: saved.instalments,
        instalmentAmount: saved.instalmentAmount, registeredAt: saved.registeredAt?.toISOString() ?? null,
      });
      return saved;
    });
    log.info('order registered', { product: registered.product, policy: registered.policy, paymentMethod });
    this.settings.onOrderRegistered?.({
      reference: registered.reference, paymentMethod, instalmentAmount: registered.instalmentAmount, curp: registered.curp,
    });
    return (await store.findCheckout(this.db, record.id))!;
  }

  /**
   * KASU said no, or we do not know what it did. A definite "no" reopens the checkout so the customer can fix it.
   * An unknown outcome (timeout, 5xx, garbage) also reopens it for a retry; if that retry then hears "already
   * registered", the earlier attempt did register and only a person can recover its policy number.
   */
  private async recordFailedAttempt(record: CheckoutRecord, order: OrderRecord, error: unknown, log: Logger): Promise<void> {
    const code = error instanceof AppError ? error.code : 'INTERNAL';
    const hadUnknownOutcome = order.registrationAttempts > 1 && order.lastError?.startsWith('unknown:');
    if (code === 'ALREADY_REGISTERED' && hadUnknownOutcome) {
      await store.markOrderFailed(this.db, order.id, 'needs_review', `needs_review:${code}`);
      await store.setCheckoutStatus(this.db, record.id, 'needs_review');
      log.error('registration outcome unknown: needs review', { code });
      throw new AppError('REGISTRATION_NEEDS_REVIEW', { cause: error });
    }
    // The adapter says when the request surely never reached KASU (outcomeUnknown: false): that is a plain failure.
    const unknown = !(error instanceof ProviderError) || (error.retryable && error.detail?.outcomeUnknown !== false);
    await store.markOrderFailed(this.db, order.id, unknown ? 'unknown' : 'rejected', `${unknown ? 'unknown' : 'rejected'}:${code}`);
    await store.setCheckoutStatus(this.db, record.id, 'open');
    log.warn('registration failed', { code, outcome: unknown ? 'unknown' : 'rejected' });
  }

  private async waitForOtherSubmit(id: string): Promise<CheckoutRecord> {
    const deadline = Date.now() + SUBMIT_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      const current = await store.findCheckout(this.db, id);
      if (!current) throw new AppError('NOT_FOUND');
      if (current.status === 'registered') return current;
      if (current.status === 'needs_review') throw new AppError('REGISTRATION_NEEDS_REVIEW');
      if (current.status === 'open') {
        // The other attempt failed: answer with its outcome rather than calling KASU a second time.
        const order = await store.findOrderByCheckout(this.db, id);
        const [outcome, code] = (order?.lastError ?? 'unknown:PROVIDER_UNAVAILABLE').split(':') as [string, ErrorCode];
        throw new AppError(outcome === 'rejected' && code in ERRORS ? code : 'PROVIDER_UNAVAILABLE');
      }
    }
    throw new AppError('SUBMIT_IN_PROGRESS');
  }
}
