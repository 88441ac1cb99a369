import { LitElement, html } from 'lit';
import type { PaymentMethod, Quote } from '../../shared/contract.js';
import { describePlan, type Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton, choiceError } from './step-parts.js';
import { KasuPaymentSubmitEvent } from './step-events.js';

export type PaymentOption = { method: PaymentMethod; available: boolean };

/**
 * Step 6: how to pay. Methods the BFF lists as unavailable are shown disabled ("Próximamente").
 * Submitting is the purchase: the button stays disabled while it is under way.
 *
 * @fires kasu-payment-submit - a payment method was chosen and the purchase confirmed
 * @csspart form - the form
 * @csspart summary - what is being bought
 * @csspart option - one payment method
 * @csspart field-error - "choose an option"
 * @csspart submit-button - the Confirm purchase button
 */
export class KasuStepPayment extends LitElement {
  static override styles = [tokens, formStyles];

  static override properties = {
    text: { attribute: false },
    methods: { attribute: false },
    quote: { attribute: false },
    planCount: { type: Number },
    selected: {},
    pending: { type: Boolean },
    missingChoice: { state: true },
  };

  private get checked(): HTMLInputElement | null {
    return this.renderRoot.querySelector('input[name="payment-method"]:checked');
  }

  declare private missingChoice: boolean;

  declare text: Text;
  /** Payment methods and whether each can be used now, from the checkout. */
  declare methods: PaymentOption[];
  /** The quote and chosen plan, for the summary. */
  declare quote: Quote | null;
  declare planCount: number | null;
  /** The method chosen before; by default the first available one. */
  declare selected: PaymentMethod | null;
  declare pending: boolean;

  constructor() {
    super();
    this.methods = [];
    this.quote = null;
    this.planCount = null;
    this.selected = null;
    this.pending = false;
    this.missingChoice = false;
  }

  #onChange(): void {
    this.missingChoice = false;
  }

  #onSubmit(event: SubmitEvent): void {
    event.preventDefault();
    if (this.pending) return;
    const input = this.checked;
    if (!input) {
      this.missingChoice = true;
      return;
    }
    this.dispatchEvent(new KasuPaymentSubmitEvent(input.value as PaymentMethod));
  }

  #renderSummary() {
    const t = this.text;
    const plan = this.quote?.plans.find((candidate) => candidate.count === this.planCount);
    if (!this.quote || !plan) return '';
    return html`<p part="summary">${t.paymentSummary(t.productNames[this.quote.product], describePlan(t, plan))}</p>`;
  }

  #renderOption(option: PaymentOption, chosen: PaymentMethod | undefined) {
    const t = this.text;
    const id = `payment-${option.method}`;
    return html`
      <div part="option" class="option ${option.available ? '' : 'unavailable'}">
        <input
          type="radio"
          name="payment-method"
          id=${id}
          .value=${option.method}
          .checked=${option.available && chosen === option.method}
          ?disabled=${!option.available}
          aria-describedby="${id}-detail"
          @change=${this.#onChange}
        />
        <label for=${id}>${t.paymentMethods[option.method]}</label>
        <p class="detail" id="${id}-detail">
          ${option.available ? t.paymentDescriptions[option.method] : t.comingSoon}
        </p>
      </div>
    `;
  }

  override render() {
    const t = this.text;
    const chosen = this.selected ?? this.methods.find((option) => option.available)?.method;
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        ${this.#renderSummary()}
        <fieldset aria-describedby="payment-error">
          <legend>${t.paymentLegend}</legend>
          ${this.methods.map((option) => this.#renderOption(option, chosen))}
        </fieldset>
        ${choiceError(t, 'payment-error', this.missingChoice)}
        ${submitButton(t, this.pending, t.submitPurchase)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-payment': KasuStepPayment;
  }
}
