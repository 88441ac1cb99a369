import { LitElement, html } from 'lit';
import type { Product, ProductEligibility } from '../../shared/contract.js';
import type { Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton, choiceError } from './step-parts.js';
import { KasuProductSelectEvent } from './step-events.js';

/**
 * Step 2: every KASU product, with the ones the customer's age does not allow shown disabled and why.
 *
 * @fires kasu-product-select - an eligible product was chosen
 * @csspart form - the form
 * @csspart option - one product
 * @csspart field-error - "choose an option"
 * @csspart submit-button - the Continue button
 */
export class KasuStepProduct extends LitElement {
  static override styles = [tokens, formStyles];

  static override properties = {
    text: { attribute: false },
    products: { attribute: false },
    age: { type: Number },
    selected: {},
    pending: { type: Boolean },
    missingChoice: { state: true },
  };

  private get checked(): HTMLInputElement | null {
    return this.renderRoot.querySelector('input[name="product"]:checked');
  }

  declare private missingChoice: boolean;

  declare text: Text;
  /** Eligibility of every product, from the checkout. */
  declare products: ProductEligibility[];
  /** The customer's age, from the CURP. */
  declare age: number;
  /** The product chosen before, if any. */
  declare selected: Product | null;
  declare pending: boolean;

  constructor() {
    super();
    this.products = [];
    this.age = 0;
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
      this.renderRoot.querySelector<HTMLInputElement>('input[name="product"]:not(:disabled)')?.focus();
      return;
    }
    this.dispatchEvent(new KasuProductSelectEvent(input.value as Product));
  }

  #ageLimits(option: ProductEligibility): string {
    const t = this.text;
    if (option.eligible) return t.ageRange(option.minAge, option.maxAge);
    if (option.reason === 'TOO_YOUNG') return t.tooYoung(option.minAge);
    if (option.reason === 'TOO_OLD') return t.tooOld(option.maxAge);
    return t.error('PRODUCT_NOT_ELIGIBLE');
  }

  #renderOption(option: ProductEligibility) {
    const t = this.text;
    const id = `product-${option.product}`;
    return html`
      <div part="option" class="option ${option.eligible ? '' : 'unavailable'}">
        <input
          type="radio"
          name="product"
          id=${id}
          .value=${option.product}
          .checked=${option.eligible && this.selected === option.product}
          ?disabled=${!option.eligible}
          aria-describedby="${id}-detail"
          @change=${this.#onChange}
        />
        <label for=${id}>${t.productNames[option.product]}</label>
        <p class="detail" id="${id}-detail">
          ${t.productDescriptions[option.product]} ${this.#ageLimits(option)}
        </p>
      </div>
    `;
  }

  override render() {
    const t = this.text;
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        <fieldset aria-describedby="product-error">
          <legend>${t.productLegend(this.age)}</legend>
          ${this.products.map((option) => this.#renderOption(option))}
        </fieldset>
        ${choiceError(t, 'product-error', this.missingChoice)}
        ${submitButton(t, this.pending)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-product': KasuStepProduct;
  }
}
