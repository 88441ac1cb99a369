import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { CheckoutView, Quote, UpdateCheckoutRequest } from '../shared/contract.js';
import { CONSENT_DOCUMENTS } from '../shared/products.js';
import type * as ApiModule from './api.js';
import type { ApiClient, ApiError, ApiResult, CheckoutAuth } from './api.js';
import { KasuCompleteEvent, KasuErrorEvent, KasuReadyEvent, KasuStepChangeEvent } from './events.js';
import { STEPS, resumeStep, type StepName } from './flow.js';
import { createText, resolveLocale, type Text } from './i18n.js';
import { newIdempotencyKey } from './idempotency-key.js';
import {
  clearSession,
  readSession,
  sessionKey,
  writeSession,
  type StoredSession,
  type SubmitAttempt,
} from './session.js';
import type {
  KasuConsentsSubmitEvent,
  KasuContactSubmitEvent,
  KasuCurpSubmitEvent,
  KasuPaymentSubmitEvent,
  KasuPlanSelectEvent,
  KasuProductSelectEvent,
} from './steps/step-events.js';
import { tokens } from './styles.js';

/** One request to the BFF and what to do with its answer; kept whole so "Reintentar" can repeat it as it was. */
type Action<T> = {
  call(client: ApiClient, signal: AbortSignal): Promise<ApiResult<T>>;
  done(data: T): void;
  failed?(error: ApiError): void;
};

/** Every part the steps expose, re-exported so the host page can style them through `<kasu-checkout>`. */
const STEP_PARTS = 'form, field, label, hint, input, field-error, option, link, summary, policy, submit-button';

/**
 * The KASU checkout: CURP → product → plan → contact and address → consents → payment → confirmation.
 * This element alone owns the step state and talks to the BFF; each step is a child that receives data as
 * properties and sends the customer's intent up as an event.
 *
 * @attr api - Base URL of the BFF (e.g. "https://bff.example"); empty (default) = the page's own origin.
 * @attr locale - "es-MX" (default) or "en".
 *
 * @fires kasu-ready - `{step}`: the first step is usable (fired once; after a resume, the resumed step)
 * @fires kasu-step-change - `{step, index, total}`: another step was rendered
 * @fires kasu-complete - `{checkoutId, reference, policy}`: the purchase is registered
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
 * @cssprop --kasu-font-family - font (system-ui)
 * @cssprop --kasu-font-size - base font size (1rem)
 * @cssprop --kasu-spacing - base spacing (1rem)
 */
export class KasuCheckout extends LitElement {
  static override styles = [
    tokens,
    css`
      :host {
        display: block;
        color: var(--_k-text);
        font-family: var(--_k-font);
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
        min-height: 2.75rem;
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
    step: { state: true },
    checkout: { state: true },
    quote: { state: true },
    curp: { state: true },
    pending: { state: true },
    error: { state: true },
    fieldErrors: { state: true },
    announcement: { state: true },
    resuming: { state: true },
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

  /** Base URL of the BFF; '' = the page's own origin. */
  declare api: string;
  /** "es-MX" (default) or "en". */
  declare locale: string;

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
    // Start loading the API module at the first interaction, so it is there when the CURP is sent.
    this.addEventListener('focusin', () => void this.#loadApi().catch(() => undefined));
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // Moved within the page while resuming: the request was abandoned on disconnect, so start it again.
    if (this.hasUpdated && this.resuming && this.#session && !this.pending) this.#resume(this.#session);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.#abort?.abort();
    this.#abort = null;
    this.pending = false;
  }

  override willUpdate(changed: PropertyValues): void {
    if (changed.has('api')) this.#apiBase = apiBaseFrom(this.api);
    if (changed.has('locale')) this.#text = createText(resolveLocale(this.locale));
    if (!this.hasUpdated) {
      this.#session = readSession(sessionKey(this.#apiBase));
      this.#attempt = this.#session?.attempt ?? null;
      this.resuming = this.#session !== null;
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
    writeSession(sessionKey(this.#apiBase), session);
  }

  #forget(): void {
    this.#session = null;
    this.#attempt = null;
    clearSession(sessionKey(this.#apiBase));
  }

  #restart(): void {
    this.#forget();
    this.checkout = null;
    this.quote = null;
    this.#go('curp');
  }

  #complete(): void {
    const order = this.checkout?.order;
    if (!this.checkout || !order) return;
    this.dispatchEvent(
      new KasuCompleteEvent({ checkoutId: this.checkout.id, reference: order.reference, policy: order.policy }),
    );
    // Done: a reload starts a new purchase instead of resuming this one.
    this.#forget();
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
    this.#apiModule ??= import('./api.js').catch((error: unknown) => {
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
    // One key per attempt: kept for every retry of the attempt (even after a reload), replaced only when the
    // customer changes the method or the previous attempt definitely failed.
    if (this.#attempt?.method !== method) {
      this.#attempt = { key: newIdempotencyKey(), method };
      this.#remember({ id: auth.id, token: auth.token, attempt: this.#attempt });
    }
    const key = this.#attempt.key;
    void this.#run({
      call: async (client, signal) => {
        const result = await client.submit(auth, method, key, signal);
        if (!result.ok) return result;
        const { status, order } = result.data.checkout;
        if (status === 'registered' && order) return result;
        const code = status === 'needs_review' ? 'REGISTRATION_NEEDS_REVIEW' : 'SUBMIT_IN_PROGRESS';
        return { ok: false, error: { code, retryable: code === 'SUBMIT_IN_PROGRESS' } };
      },
      done: ({ checkout }) => {
        this.#show(checkout);
        this.#go('confirmation');
      },
      failed: (error) => {
        if (!error.retryable) this.#attempt = null;
      },
    });
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
          .selected=${checkout?.product ?? null}
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
          .contact=${checkout?.contact ?? null}
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
          ?pending=${this.pending}
          @kasu-payment-submit=${this.#onPaymentSubmit}
        ></kasu-step-payment>`;
      case 'confirmation':
        return html`<kasu-step-confirmation
          part="step"
          exportparts=${STEP_PARTS}
          .text=${t}
          .checkout=${checkout}
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
