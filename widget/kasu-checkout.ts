import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { CheckoutView, PaymentStatus, Quote, SubmitRequest, UpdateCheckoutRequest } from '../shared/contract.js';
import { CONSENT_DOCUMENTS } from '../shared/products.js';
import type * as ApiModule from './api.js';
import type { ApiClient, ApiError, ApiResult, CheckoutAuth } from './api.js';
import {
  KasuCompleteEvent,
  KasuErrorEvent,
  KasuPaymentChangeEvent,
  KasuReadyEvent,
  KasuStepChangeEvent,
} from './events.js';
import { STEPS, awaitsPayment, isPurchased, resumeStep, type StepName } from './flow.js';
import { createText, resolveLocale, type Text } from './i18n.js';
import { newIdempotencyKey } from './idempotency-key.js';
import { navigation, returnUrl, takePaymentReturn } from './navigation.js';
import {
  clearSession,
  readSession,
  sessionKey,
  writeSession,
  type PayOffer,
  type StoredSession,
  type SubmitAttempt,
} from './session.js';
import type { BankList, CardSession } from './steps/kasu-step-payment.js';
import type {
  KasuBanksRequestEvent,
  KasuCardSessionRequestEvent,
  KasuConsentsSubmitEvent,
  KasuContactSubmitEvent,
  KasuCurpSubmitEvent,
  KasuPayAgainEvent,
  KasuPaymentSubmitEvent,
  KasuPlanSelectEvent,
  KasuProductSelectEvent,
} from './steps/step-events.js';
import { schemes, tokens } from './styles.js';

/** One request to the BFF and what to do with its answer; kept whole so "Reintentar" can repeat it as it was. */
type Action<T> = {
  call(client: ApiClient, signal: AbortSignal): Promise<ApiResult<T>>;
  done(data: T): void;
  failed?(error: ApiError): void;
};

/** Every part the steps expose, re-exported so the host page can style them through `<kasu-checkout>`. */
const STEP_PARTS =
  'form, field, label, hint, input, field-error, option, link, summary, policy, submit-button, ' +
  'payment-status, payment-button, card-frame, card, change-card-button, schedule';

/**
 * The KASU checkout: CURP → product → plan → contact and address → consents → payment → confirmation.
 * This element alone owns the step state and talks to the BFF; each step is a child that receives data as
 * properties and sends the customer's intent up as an event.
 *
 * Paying with Khipu leaves the page: the purchase is registered, the session is kept, and the page goes to
 * Khipu's payment page, which sends the customer back to this page. The confirmation then follows the payment
 * until it is final (or for about ten minutes), and a reload keeps following it.
 *
 * Paying by card happens here: the card is typed into the gateway's frame, the customer authorises recurring charges,
 * and the purchase charges the first instalment at once. A declined card keeps the customer on the payment step
 * with the frame empty for another card.
 *
 * @attr api - Base URL of the BFF (e.g. "https://bff.example"); empty (default) = the page's own origin.
 * @attr locale - "es-MX" (default) or "en".
 * @attr product - "Funerario", "Universidad" or "Retiro": chosen in advance on the product step (when eligible).
 * @attr theme - "light" (default), "dark", or "auto" (dark when the system prefers it).
 * @attr id - with several checkouts on one page, give each its own id: each keeps its own purchase across reloads.
 *
 * @fires kasu-ready - `{step}`: the first step is usable (fired once; after a resume, the resumed step)
 * @fires kasu-step-change - `{step, index, total}`: another step was rendered
 * @fires kasu-complete - `{checkoutId, reference, policy}`: the purchase is registered (once per purchase: not
 *   again when the customer comes back from paying with Khipu)
 * @fires kasu-payment-change - `{status, method}`: the payment's status changed while the confirmation follows it
 * @fires kasu-error - `{code}`: a request failed (the customer sees the message)
 *
 * @csspart base - the whole checkout
 * @csspart progress - "Paso X de Y"
 * @csspart heading - the step title
 * @csspart error - the error panel
 * @csspart retry-button - "Reintentar", for errors that may go away
 * @csspart restart-button - "Empezar de nuevo", when the checkout session is gone
 * @csspart back-button - "Regresar"
 * @csspart step - the current step
 * @csspart form - a step's form
 * @csspart field - a label, input and error
 * @csspart label - a field's label
 * @csspart hint - a field's help text
 * @csspart input - an input or select
 * @csspart field-error - the error under a field
 * @csspart option - a product, plan, document or payment method
 * @csspart link - a link to a legal document
 * @csspart summary - the purchase summary (payment and confirmation)
 * @csspart policy - the policy number
 * @csspart submit-button - a step's main button
 * @csspart payment-status - where a Khipu payment stands (confirmation)
 * @csspart payment-button - "Volver a Khipu para pagar" after the customer cancelled on Khipu's page ("Pagar con
 *   Khipu" when they never got there)
 * @csspart card-frame - the card gateway's frame, where the customer types the card (payment; 24rem high by default)
 * @csspart card - the card: "Tarjeta terminada en 4242 (visa)" (payment), the card charged (confirmation)
 * @csspart change-card-button - "Cambiar tarjeta" (payment)
 * @csspart schedule - the table of instalments of a card purchase (confirmation)
 *
 * @cssprop --kasu-color-primary - buttons, links, selected options (#0b5cad)
 * @cssprop --kasu-color-on-primary - text on primary (#ffffff)
 * @cssprop --kasu-color-text - text (#1f2933)
 * @cssprop --kasu-color-muted - secondary text (#4b5563)
 * @cssprop --kasu-color-surface - backgrounds (#ffffff)
 * @cssprop --kasu-color-border - input and option borders (#7b8794)
 * @cssprop --kasu-color-error - errors (#b3261e)
 * @cssprop --kasu-color-focus - focus ring (#1a73e8)
 * @cssprop --kasu-radius - corner radius (8px)
 * @cssprop --kasu-font-family - font (the host page's)
 * @cssprop --kasu-font-size - base font size (1rem)
 * @cssprop --kasu-spacing - base spacing (1rem)
 * @cssprop --kasu-control-height - height of inputs and buttons, i.e. density (2.75rem; keep ≥ 2.75rem for touch)
 */
export class KasuCheckout extends LitElement {
  static override styles = [
    tokens,
    schemes,
    css`
      :host {
        display: block;
        color: var(--_k-text);
        font-family: var(--kasu-font-family, inherit);
        font-size: var(--_k-font-size);
        line-height: 1.5;
      }
      :host([hidden]) {
        display: none;
      }
      .base {
        display: grid;
        gap: var(--_k-space);
        padding: var(--_k-space);
        border-radius: var(--_k-radius);
        background: var(--_k-surface);
      }
      .progress {
        margin: 0;
        color: var(--_k-muted);
        font-size: 0.875em;
        font-weight: 600;
      }
      h2 {
        margin: 0;
        font-size: 1.375em;
        line-height: 1.3;
      }
      h2:focus {
        outline: none;
      }
      h2:focus-visible {
        outline: 3px solid var(--_k-focus);
        outline-offset: 2px;
      }
      .error {
        display: grid;
        gap: 0.5rem;
        padding: 0.75rem var(--_k-space);
        border-left: 4px solid var(--_k-error);
        border-radius: var(--_k-radius);
        background: var(--_k-surface);
        outline-color: var(--_k-focus);
      }
      .error p {
        margin: 0;
      }
      .error .message {
        font-weight: 600;
      }
      .error .support {
        color: var(--_k-muted);
        font-size: 0.875em;
      }
      .actions {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem;
      }
      button {
        min-height: var(--_k-control-height);
        padding: 0.5rem 1.25rem;
        border: 1px solid var(--_k-primary);
        border-radius: var(--_k-radius);
        background: var(--_k-surface);
        color: var(--_k-primary);
        font: inherit;
        font-weight: 600;
        cursor: pointer;
      }
      button:disabled {
        cursor: progress;
        color: var(--_k-muted);
        border-color: var(--_k-muted);
      }
      button:focus-visible {
        outline: 3px solid var(--_k-focus);
        outline-offset: 2px;
      }
      .back {
        justify-self: start;
      }
      .loading {
        margin: 0;
      }
      .visually-hidden {
        position: absolute;
        width: 1px;
        height: 1px;
        overflow: hidden;
        clip-path: inset(50%);
        white-space: nowrap;
      }
    `,
  ];

  static override properties = {
    api: { type: String },
    locale: { type: String },
    product: { type: String },
    theme: { type: String, reflect: true },
    step: { state: true },
    checkout: { state: true },
    quote: { state: true },
    curp: { state: true },
    pending: { state: true },
    error: { state: true },
    fieldErrors: { state: true },
    announcement: { state: true },
    resuming: { state: true },
    banks: { state: true },
    cardSession: { state: true },
    declinedCards: { state: true },
    leaving: { state: true },
    paymentWaitOver: { state: true },
  };

  private get heading(): HTMLElement | null {
    return this.renderRoot.querySelector('h2');
  }

  private get errorPanel(): HTMLElement | null {
    return this.renderRoot.querySelector('[part="error"]');
  }

  declare private step: StepName;
  declare private checkout: CheckoutView | null;
  declare private quote: Quote | null;
  /** The last CURP entered, to fill the first step when the customer comes back to it. */
  declare private curp: string;
  declare private pending: boolean;
  declare private error: ApiError | null;
  /** Errors to show next to fields, by path ("contact.email", "curp"). */
  declare private fieldErrors: Record<string, string>;
  /** Text of the live region. */
  declare private announcement: string;
  declare private resuming: boolean;
  declare private banks: BankList;
  declare private cardSession: CardSession;
  /** Cards the bank declined in this purchase; the payment step clears the card at each one. */
  declare private declinedCards: number;
  /** On the way to the provider's payment page. */
  declare private leaving: boolean;
  /** The confirmation stopped following the payment without a final answer. */
  declare private paymentWaitOver: boolean;

  #apiBase = '';
  #text: Text = createText('es-MX');
  #session: StoredSession | null = null;
  #attempt: SubmitAttempt | null = null;
  #retry: (() => void) | null = null;
  #canRestart = false;
  #abort: AbortController | null = null;
  #apiModule: Promise<typeof ApiModule> | null = null;
  #readySent = false;
  #focusHeading = false;
  #focusError = false;
  #banksAbort: AbortController | null = null;
  #cardSessionAbort: AbortController | null = null;
  #paymentWatch: AbortController | null = null;
  /** The payment status the page last heard of; null before the purchase is registered. */
  #paymentStatus: PaymentStatus | null = null;
  #completeSent = false;
  /** Whether the confirmation offers the provider's page (kept in the session, so a reload offers it too). */
  #payOffer: PayOffer | null = null;

  /** Base URL of the BFF; '' = the page's own origin. */
  declare api: string;
  /** "es-MX" (default) or "en". */
  declare locale: string;
  /** A product to choose in advance on the product step, when the customer can buy it. */
  declare product: string | undefined;
  /** "light" (default), "dark" or "auto". */
  declare theme: string | undefined;
  /** Contact details the page already knows (prefill), offered on the contact step. */
  #prefill: { email?: string; phone?: string } = {};

  constructor() {
    super();
    this.api = '';
    this.locale = 'es-MX';
    this.step = 'curp';
    this.checkout = null;
    this.quote = null;
    this.curp = '';
    this.pending = false;
    this.error = null;
    this.fieldErrors = {};
    this.announcement = '';
    this.resuming = false;
    this.banks = null;
    this.cardSession = null;
    this.declinedCards = 0;
    this.leaving = false;
    this.paymentWaitOver = false;
    // Start loading the API module at the first interaction, so it is there when the CURP is sent.
    this.addEventListener('focusin', () => void this.#loadApi().catch(() => undefined));
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // Moved within the page while resuming: the request was abandoned on disconnect, so start it again.
    if (this.hasUpdated && this.resuming && this.#session && !this.pending) this.#resume(this.#session);
    // The same for following a payment.
    if (this.hasUpdated && this.step === 'confirmation' && !this.leaving) this.#watchPayment();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.#abort?.abort();
    this.#abort = null;
    this.pending = false;
    this.#banksAbort?.abort();
    if (this.banks?.status === 'loading') this.banks = null;
    this.#cardSessionAbort?.abort();
    if (this.cardSession?.status === 'loading') this.cardSession = null;
    this.#paymentWatch?.abort();
    this.#paymentWatch = null;
  }

  override willUpdate(changed: PropertyValues): void {
    if (changed.has('api')) this.#apiBase = apiBaseFrom(this.api);
    if (changed.has('locale')) this.#text = createText(resolveLocale(this.locale));
    if (!this.hasUpdated) {
      this.#session = readSession(sessionKey(this.#apiBase, this.id));
      this.#attempt = this.#session?.attempt ?? null;
      this.resuming = this.#session !== null;
      this.#paymentStatus = this.#session?.payment?.status ?? null;
      this.#completeSent = this.#paymentStatus !== null;
      // Coming back through Khipu's cancel link; or a payment this tab never sent the customer to.
      const offer = this.#session?.payment ? (this.#session.payment.offer ?? null) : 'due';
      this.#payOffer = takePaymentReturn() === 'cancelled' ? 'again' : offer;
    }
  }

  override firstUpdated(): void {
    const session = this.#session;
    // After this first update has completed, so that starting the request does not schedule an update inside it.
    if (session) void this.updateComplete.then(() => this.#resume(session));
    else this.#sendReady();
  }

  override updated(changed: PropertyValues): void {
    if (changed.has('step') && changed.get('step') !== undefined) {
      if (this.#focusHeading) this.heading?.focus();
      const index = STEPS.indexOf(this.step);
      this.dispatchEvent(new KasuStepChangeEvent({ step: this.step, index, total: STEPS.length }));
      if (this.step === 'confirmation') this.#complete();
    }
    if (this.#focusError) this.errorPanel?.focus();
    this.#focusHeading = false;
    this.#focusError = false;
  }

  // ---------- public methods ----------

  /**
   * Starts over: abandons the checkout in progress (nothing already registered is undone) and shows the first step
   * with nothing typed. Focus is left where it is.
   */
  reset(): void {
    this.#abort?.abort();
    this.#abort = null;
    this.pending = false;
    this.resuming = false;
    this.#paymentWatch?.abort();
    this.#paymentWatch = null;
    this.#banksAbort?.abort();
    this.banks = null;
    this.#forget();
    this.checkout = null;
    this.quote = null;
    this.curp = '';
    this.#prefill = {};
    this.declinedCards = 0;
    this.leaving = false;
    this.paymentWaitOver = false;
    this.#paymentStatus = null;
    this.#completeSent = false;
    this.#payOffer = 'due';
    this.#go('curp', { focus: false });
    this.#sendReady();
  }

  /**
   * Fills in what the page already knows: the CURP on the first step (when the customer is still on it), email and
   * phone on the contact step (unless the customer already saved theirs). Nothing is sent until the customer goes on.
   */
  prefill(data: { curp?: string; email?: string; phone?: string }): void {
    if (typeof data.curp === 'string' && this.step === 'curp') this.curp = data.curp.trim().toUpperCase();
    this.#prefill = {
      ...this.#prefill,
      ...(typeof data.email === 'string' ? { email: data.email.trim() } : {}),
      ...(typeof data.phone === 'string' ? { phone: data.phone.replace(/\D/g, '').slice(-10) } : {}),
    };
    this.requestUpdate();
  }

  #preselected(): string | null {
    const wanted = this.product;
    return this.checkout?.products.find((offer) => offer.product === wanted && offer.eligible)?.product ?? null;
  }

  #prefilledContact(): { email: string; phone: string } | null {
    const { email, phone } = this.#prefill;
    return email || phone ? { email: email ?? '', phone: phone ?? '' } : null;
  }

  // ---------- the flow ----------

  #go(step: StepName, { focus = true } = {}): void {
    this.step = step;
    this.error = null;
    this.fieldErrors = {};
    this.#retry = null;
    this.#canRestart = false;
    this.#focusHeading = focus;
    const index = STEPS.indexOf(step);
    this.#announce(this.#text.stepAnnouncement(index + 1, STEPS.length, this.#text.titles[step]));
  }

  async #run<T>(action: Action<T>): Promise<void> {
    if (this.pending) return;
    this.pending = true;
    this.error = null;
    this.fieldErrors = {};
    this.#retry = null;
    const controller = new AbortController();
    this.#abort = controller;
    let result: ApiResult<T>;
    try {
      const api = await this.#loadApi();
      result = await action.call(api.createApiClient(this.#apiBase), controller.signal);
    } catch {
      // The API module itself could not be loaded: offline, or a deploy replaced it.
      result = { ok: false, error: { code: 'NETWORK_ERROR', retryable: true } };
    }
    if (controller.signal.aborted) return; // the element was removed meanwhile: nobody is waiting
    this.#abort = null;
    this.pending = false;
    if (result.ok) {
      action.done(result.data);
    } else {
      action.failed?.(result.error);
      this.#fail(result.error, () => void this.#run(action));
    }
  }

  #fail(error: ApiError, retry: () => void): void {
    const stepToFix = this.#stepToFix(error);
    if (stepToFix && stepToFix !== this.step) this.#go(stepToFix);
    this.error = error;
    this.#retry = error.retryable ? retry : null;
    this.fieldErrors = this.#fieldErrorsFor(error);
    if (error.code === 'UNAUTHORIZED' || error.code === 'NOT_FOUND') {
      this.#forget();
      this.#canRestart = this.step !== 'curp';
    }
    this.#announce(this.#text.error(error.code) || this.#text.genericError);
    // A step with field errors moves focus to the first one itself.
    this.#focusError = Object.keys(this.fieldErrors).length === 0;
    this.dispatchEvent(new KasuErrorEvent(error.code));
    // Submitted meanwhile (another tab): what is stored is the truth, show it.
    if (error.code === 'CHECKOUT_CLOSED') this.#refresh();
    if (error.code === 'PRICE_CHANGED') this.#showNewPrice(error);
  }

  /** The step where the customer can fix what the BFF refused, when it is not the current one. */
  #stepToFix(error: ApiError): StepName | null {
    switch (error.code) {
      case 'ALREADY_REGISTERED':
        return 'product';
      case 'CONTACT_ALREADY_REGISTERED':
        return 'contact';
      case 'CONSENT_REQUIRED':
        return 'consents';
      case 'PRICE_CHANGED':
        return 'plan';
      case 'CHECKOUT_INCOMPLETE':
        return this.checkout ? resumeStep(this.checkout) : null;
      default:
        return null;
    }
  }

  #fieldErrorsFor(error: ApiError): Record<string, string> {
    if (error.fields) return error.fields;
    if (error.code.startsWith('CURP_')) return { curp: error.code };
    if (error.code === 'CONSENT_REQUIRED' && this.checkout) {
      const { consents } = this.checkout;
      const missing = CONSENT_DOCUMENTS.filter((id) => !consents[id]);
      return Object.fromEntries(missing.map((id) => [`consents.${id}`, 'ACCEPTANCE_REQUIRED']));
    }
    return {};
  }

  /** KASU's price changed since the quote: the plans again, with the new amounts and the reason on top. */
  #showNewPrice(error: ApiError): void {
    const auth = this.#auth();
    if (!auth) return;
    void this.#run({
      call: (client, signal) => client.getCheckout(auth, signal),
      done: ({ checkout }) => {
        this.#show(checkout, checkout.quote);
        this.#go('plan');
        this.error = error;
        this.#announce(this.#text.error(error.code));
      },
    });
  }

  #refresh(): void {
    const auth = this.#auth();
    if (!auth) return;
    void this.#run({
      call: (client, signal) => client.getCheckout(auth, signal),
      done: ({ checkout }) => {
        this.#show(checkout);
        this.#go(resumeStep(checkout));
      },
    });
  }


  #resume(session: StoredSession): void {
    void this.#run({
      call: async (client, signal) => {
        const result = await client.getCheckout(session, signal);
        // A checkout that no longer exists is, to the customer, an expired session.
        if (result.ok || result.error.code !== 'NOT_FOUND') return result;
        return { ok: false, error: { ...result.error, code: 'UNAUTHORIZED' } };
      },
      done: ({ checkout }) => {
        this.resuming = false;
        this.#show(checkout);
        this.curp = checkout.customer.curp;
        this.#go(resumeStep(checkout), { focus: false });
        if (checkout.status === 'needs_review') {
          this.#fail({ code: 'REGISTRATION_NEEDS_REVIEW', retryable: false }, () => undefined);
          this.#focusError = false;
        }
        this.#sendReady();
      },
      failed: (error) => {
        this.resuming = false;
        if (!error.retryable) this.#forget();
        this.#sendReady();
      },
    });
  }

  #show(checkout: CheckoutView, quote: Quote | null = checkout.quote ?? this.quote): void {
    this.checkout = checkout;
    this.quote = quote;
    if (isPurchased(checkout)) this.#followPayment(checkout);
  }

  /**
   * A view of the registered checkout: tell the page when the payment moved, and keep the session while the
   * payment is open (so that the return from the provider, and any reload, find it) or forget it.
   */
  #followPayment(checkout: CheckoutView): void {
    const payment = checkout.payment;
    const session = this.#session;
    if (payment && this.#paymentStatus !== null && payment.status !== this.#paymentStatus) {
      this.dispatchEvent(new KasuPaymentChangeEvent({ status: payment.status, method: payment.method }));
      this.#announce(this.#text.paymentStatuses[payment.status]);
    }
    this.#paymentStatus = payment?.status ?? null;
    if (payment && session && awaitsPayment(checkout)) {
      this.#attempt = null;
      const offer = this.#payOffer;
      const stored = { status: payment.status, ...(offer && { offer }) };
      this.#remember({ id: session.id, token: session.token, payment: stored });
    } else {
      // Done: a reload starts a new purchase instead of resuming this one.
      this.#forget();
    }
  }

  /** Asks the BFF about the open payment now and then (payment-watch.ts), until it is final. */
  #watchPayment(): void {
    this.#paymentWatch?.abort();
    this.#paymentWatch = null;
    if (!awaitsPayment(this.checkout)) return;
    const controller = new AbortController();
    const { signal } = controller;
    this.#paymentWatch = controller;
    this.paymentWaitOver = false;
    Promise.all([import('./payment-watch.js'), this.#loadApi()]).then(
      ([{ watchPayment }, api]) => {
        if (signal.aborted) return;
        watchPayment({
          signal,
          client: api.createApiClient(this.#apiBase),
          auth: () => this.#session,
          onCheckout: (checkout) => {
            this.#show(checkout);
            return awaitsPayment(checkout);
          },
          onGiveUp: (sessionRefused) => {
            if (sessionRefused) this.#forget();
            this.paymentWaitOver = true;
          },
        });
      },
      () => {
        // Offline, or a deploy replaced the modules: what is shown stays, and a reload follows the payment again.
        if (!signal.aborted) this.paymentWaitOver = true;
      },
    );
  }

  #loadBanks(): void {
    this.banks = { status: 'loading' };
    const controller = new AbortController();
    this.#banksAbort = controller;
    this.#loadApi()
      .then((api) => api.createApiClient(this.#apiBase).khipuBanks(controller.signal))
      .catch(() => null)
      .then((result) => {
        if (controller.signal.aborted) return;
        // Without the list the customer chooses the bank on Khipu's page: a failure only says so.
        this.banks = result?.ok ? { status: 'ready', banks: result.data.banks } : { status: 'failed' };
      });
  }

  /**
   * The card frame, and the card's elements with it. A failure is shown like any other, with "Reintentar"; choosing
   * card again also tries again.
   */
  #loadCardSession(): void {
    const auth = this.#auth();
    if (!auth) return;
    this.cardSession = { status: 'loading' };
    const controller = new AbortController();
    this.#cardSessionAbort = controller;
    const retry = () => {
      this.error = null;
      this.#retry = null;
      this.#loadCardSession();
    };
    Promise.all([this.#loadApi(), import('./card/card-elements.js')])
      .then(([api]) => api.createApiClient(this.#apiBase).cardSession(auth, location.origin, controller.signal))
      .catch((): ApiResult<never> => ({ ok: false, error: { code: 'NETWORK_ERROR', retryable: true } }))
      .then((result) => {
        if (controller.signal.aborted) return;
        this.#cardSessionAbort = null;
        if (result.ok) {
          this.cardSession = { status: 'ready', session: result.data };
          return;
        }
        this.#fail(result.error, retry);
        // After #fail, which forgets the checkout (and its frame) when the session is gone: not asked for again.
        this.cardSession = { status: 'failed' };
      });
  }

  #leaveFor(url: string): void {
    this.#paymentWatch?.abort();
    this.#payOffer = null;
    // Saved before leaving: the way back resumes this purchase.
    if (this.checkout) this.#followPayment(this.checkout);
    navigation.assign(url);
  }

  #update(changes: UpdateCheckoutRequest, next: StepName): void {
    const auth = this.#auth();
    if (!auth) return;
    void this.#run({
      call: (client, signal) => client.updateCheckout(auth, changes, signal),
      done: ({ checkout }) => {
        this.#show(checkout);
        this.#go(next);
      },
    });
  }

  #auth(): CheckoutAuth | null {
    if (this.#session) return this.#session;
    this.#restart();
    return null;
  }

  #remember(session: StoredSession): void {
    this.#session = session;
    writeSession(sessionKey(this.#apiBase, this.id), session);
  }

  #forget(): void {
    this.#session = null;
    this.#attempt = null;
    // The card frame belongs to the checkout.
    this.#cardSessionAbort?.abort();
    this.cardSession = null;
    clearSession(sessionKey(this.#apiBase, this.id));
  }

  #restart(): void {
    this.#forget();
    this.checkout = null;
    this.quote = null;
    this.#go('curp');
  }

  /** The confirmation is on screen: tell the page once, then go and pay, or follow the payment. */
  #complete(): void {
    const checkout = this.checkout;
    const order = checkout?.order;
    if (!checkout || !order) return;
    if (!this.#completeSent) {
      this.#completeSent = true;
      this.dispatchEvent(
        new KasuCompleteEvent({ checkoutId: checkout.id, reference: order.reference, policy: order.policy }),
      );
    }
    const url = checkout.payment?.redirectUrl;
    // After the render, so the customer sees (and hears) where they are going.
    if (this.leaving && url) this.#leaveFor(url);
    else this.#watchPayment();
  }

  #sendReady(): void {
    if (this.#readySent) return;
    this.#readySent = true;
    void this.updateComplete.then(() => this.dispatchEvent(new KasuReadyEvent(this.step)));
  }

  #announce(message: string): void {
    // The same text twice would not be read again: make the second one differ invisibly.
    this.announcement = message === this.announcement ? `${message}\u00a0` : message;
  }

  #loadApi(): Promise<typeof ApiModule> {
    // The later steps come with the client: no step after the CURP is shown before an answer from the BFF.
    this.#apiModule ??= Promise.all([import('./api.js'), import('./later-steps.js')]).then(([api]) => api, (error: unknown) => {
      this.#apiModule = null;
      throw error;
    });
    return this.#apiModule;
  }

  // ---------- intents from the steps ----------

  #onCurpSubmit(event: KasuCurpSubmitEvent): void {
    event.stopPropagation();
    const curp = event.curp;
    this.curp = curp;
    void this.#run({
      call: (client, signal) => client.createCheckout(curp, signal),
      done: ({ checkout, token }) => {
        this.#attempt = null;
        this.#remember({ id: checkout.id, token });
        this.#show(checkout, checkout.quote);
        this.#go('product');
      },
    });
  }

  #onProductSelect(event: KasuProductSelectEvent): void {
    event.stopPropagation();
    const auth = this.#auth();
    if (!auth) return;
    const product = event.product;
    void this.#run({
      call: (client, signal) => client.quote(auth, product, signal),
      done: ({ quote, checkout }) => {
        this.#show(checkout, quote);
        this.#go('plan');
      },
      failed: (error) => {
        // KASU has the last word on age limits: show the product as unavailable from now on.
        const checkout = this.checkout;
        if (error.code !== 'PRODUCT_NOT_ELIGIBLE' || !checkout) return;
        const products = checkout.products.map((option) =>
          option.product === product ? { ...option, eligible: false } : option,
        );
        this.checkout = { ...checkout, products };
      },
    });
  }

  #onPlanSelect(event: KasuPlanSelectEvent): void {
    event.stopPropagation();
    if (!this.quote) return;
    this.#update({ product: this.quote.product, planCount: event.planCount }, 'contact');
  }

  #onContactSubmit(event: KasuContactSubmitEvent): void {
    event.stopPropagation();
    this.#update({ contact: event.contact, address: event.address }, 'consents');
  }

  #onConsentsSubmit(event: KasuConsentsSubmitEvent): void {
    event.stopPropagation();
    this.#update({ consents: event.consents }, 'payment');
  }

  #onPaymentSubmit(event: KasuPaymentSubmitEvent): void {
    event.stopPropagation();
    if (this.pending) return;
    const auth = this.#auth();
    if (!auth) return;
    const method = event.paymentMethod;
    const bank = method === 'khipu' ? event.khipuBankId : null;
    const card = method === 'card' ? event.card : null;
    // One key per attempt: kept for every retry of the attempt (even after a reload), with the request exactly as
    // first sent; replaced when the customer changes the method, bank or card, or the previous attempt definitely
    // failed (a declined card among them).
    if (
      this.#attempt?.method !== method ||
      (this.#attempt.khipuBankId ?? null) !== bank ||
      (this.#attempt.card?.token ?? null) !== (card?.token ?? null)
    ) {
      this.#attempt = { key: newIdempotencyKey(), method };
      // Only sent with the consent ticked: the payment step does not let a card through without it.
      if (card) Object.assign(this.#attempt, { card, recurringConsent: true });
      if (method === 'khipu') {
        // Khipu sends the customer back to this page (and adds ?kasu_payment=cancelled when they cancel there).
        const back = returnUrl();
        if (back) this.#attempt.returnUrl = back;
        if (bank) this.#attempt.khipuBankId = bank;
      }
      this.#remember({ id: auth.id, token: auth.token, attempt: this.#attempt });
    }
    const { key, method: paymentMethod, ...khipu } = this.#attempt;
    const request: SubmitRequest = { paymentMethod, ...khipu };
    void this.#run({
      call: async (client, signal) => {
        const result = await client.submit(auth, request, key, signal);
        if (!result.ok) return result;
        const { status } = result.data.checkout;
        if (isPurchased(result.data.checkout)) return result;
        const code = status === 'needs_review' ? 'REGISTRATION_NEEDS_REVIEW' : 'SUBMIT_IN_PROGRESS';
        return { ok: false, error: { code, retryable: code === 'SUBMIT_IN_PROGRESS' } };
      },
      done: ({ checkout }) => {
        this.#show(checkout);
        this.#go('confirmation');
        if (awaitsPayment(checkout) && checkout.payment?.redirectUrl) {
          this.leaving = true;
          this.#announce(this.#text.leavingForKhipu);
        }
      },
      failed: (error) => {
        if (!error.retryable) this.#attempt = null;
        if (error.code === 'CARD_DECLINED') this.declinedCards += 1;
      },
    });
  }

  #onBanksRequest(event: KasuBanksRequestEvent): void {
    event.stopPropagation();
    if (this.banks === null) this.#loadBanks();
  }

  #onCardSessionRequest(event: KasuCardSessionRequestEvent): void {
    event.stopPropagation();
    const status = this.cardSession?.status;
    if (status !== 'loading' && status !== 'ready') this.#loadCardSession();
  }

  #onPayAgain(event: KasuPayAgainEvent): void {
    event.stopPropagation();
    const url = this.checkout?.payment?.redirectUrl;
    if (!url || this.leaving) return;
    this.leaving = true;
    this.#announce(this.#text.leavingForKhipu);
    this.#leaveFor(url);
  }

  #onBack(): void {
    const index = STEPS.indexOf(this.step);
    const previous = STEPS[index - 1];
    if (this.pending || previous === undefined) return;
    this.#go(previous);
  }

  #onRetry(): void {
    if (!this.pending) this.#retry?.();
  }

  #onRestart(): void {
    this.#restart();
  }

  // ---------- rendering ----------

  #renderStep() {
    const t = this.#text;
    const checkout = this.checkout;
    switch (this.step) {
      case 'curp':
        return html`<kasu-step-curp
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .value=${this.curp}
          .fieldErrors=${this.fieldErrors}
          ?pending=${this.pending}
          @kasu-curp-submit=${this.#onCurpSubmit}
        ></kasu-step-curp>`;
      case 'product':
        return html`<kasu-step-product
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .products=${checkout?.products ?? []}
          .age=${checkout?.customer.age ?? 0}
          .selected=${checkout?.product ?? this.#preselected()}
          ?pending=${this.pending}
          @kasu-product-select=${this.#onProductSelect}
        ></kasu-step-product>`;
      case 'plan':
        return html`<kasu-step-plan
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .quote=${this.quote}
          .selected=${checkout?.planCount ?? null}
          ?pending=${this.pending}
          @kasu-plan-select=${this.#onPlanSelect}
        ></kasu-step-plan>`;
      case 'contact':
        return html`<kasu-step-contact
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .contact=${checkout?.contact ?? this.#prefilledContact()}
          .address=${checkout?.address ?? null}
          .fieldErrors=${this.fieldErrors}
          ?pending=${this.pending}
          @kasu-contact-submit=${this.#onContactSubmit}
        ></kasu-step-contact>`;
      case 'consents':
        return html`<kasu-step-consents
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .consents=${checkout?.consents ?? { terms: false, privacy: false, trust: false }}
          .documents=${checkout?.documents ?? []}
          .fieldErrors=${this.fieldErrors}
          ?pending=${this.pending}
          @kasu-consents-submit=${this.#onConsentsSubmit}
        ></kasu-step-consents>`;
      case 'payment':
        return html`<kasu-step-payment
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .methods=${checkout?.paymentMethods ?? []}
          .quote=${this.quote}
          .planCount=${checkout?.planCount ?? null}
          .selected=${this.#attempt?.method ?? null}
          .selectedBank=${this.#attempt?.khipuBankId ?? null}
          .banks=${this.banks}
          .cardSession=${this.cardSession}
          .declinedCards=${this.declinedCards}
          ?pending=${this.pending}
          @kasu-payment-submit=${this.#onPaymentSubmit}
          @kasu-banks-request=${this.#onBanksRequest}
          @kasu-card-session-request=${this.#onCardSessionRequest}
        ></kasu-step-payment>`;
      case 'confirmation':
        return html`<kasu-step-confirmation
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .checkout=${checkout}
          ?leaving=${this.leaving}
          .payOffer=${this.#payOffer}
          .waitOver=${this.paymentWaitOver}
          @kasu-pay-again=${this.#onPayAgain}
        ></kasu-step-confirmation>`;
    }
  }

  #renderError() {
    const error = this.error;
    // CURP errors are shown (and linked) on the CURP field itself.
    if (!error || (this.step === 'curp' && this.fieldErrors.curp !== undefined && !error.fields)) return nothing;
    const t = this.#text;
    return html`
      <div part="error" class="error" tabindex="-1">
        <p class="message">${t.error(error.code) || t.genericError}</p>
        ${error.requestId ? html`<p class="support">${t.supportReference(error.requestId)}</p>` : nothing}
        ${this.#retry || this.#canRestart
          ? html`<div class="actions">
              ${this.#retry
                ? html`<button part="retry-button" type="button" @click=${this.#onRetry}>${t.retry}</button>`
                : nothing}
              ${this.#canRestart
                ? html`<button part="restart-button" type="button" @click=${this.#onRestart}>${t.restart}</button>`
                : nothing}
            </div>`
          : nothing}
      </div>
    `;
  }

  override render() {
    const t = this.#text;
    const index = STEPS.indexOf(this.step);
    const canGoBack = index > 0 && this.step !== 'confirmation' && !this.resuming;
    return html`
      <section part="base" class="base" lang=${t.locale} aria-labelledby="heading">
        <p part="progress" class="progress">${t.progress(index + 1, STEPS.length)}</p>
        <h2 part="heading" id="heading" tabindex="-1">${t.titles[this.step]}</h2>
        ${this.#renderError()}
        ${this.resuming ? html`<p class="loading">${t.loading}</p>` : this.#renderStep()}
        ${canGoBack
          ? html`<button part="back-button" class="back" type="button" ?disabled=${this.pending} @click=${this.#onBack}>
              ${t.back}
            </button>`
          : nothing}
        <div class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">${this.announcement}</div>
      </section>
    `;
  }
}

/** The `api` attribute, validated once: an http(s) URL or a path on this origin, without the trailing slash. */
function apiBaseFrom(value: string | null | undefined): string {
  const base = (value ?? '').trim().replace(/\/+$/, '');
  if (base === '' || base.startsWith('/')) return base;
  try {
    const { protocol } = new URL(base);
    if (protocol === 'https:' || protocol === 'http:') return base;
  } catch {
    // reported below
  }
  console.warn(`<kasu-checkout>: api="${value}" is not an http(s) URL; using this page's origin.`);
  return '';
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-checkout': KasuCheckout;
  }
}
