import { LitElement, html, nothing } from 'lit';
import type { CardSessionResponse, KhipuBank, PaymentMethod, Quote } from '../../shared/contract.js';
import type { KasuCardFrame } from '../card/kasu-card-frame.js';
import { describePlan, type Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton, choiceError } from './step-parts.js';
import { KasuBanksRequestEvent, KasuCardSessionRequestEvent, KasuPaymentSubmitEvent } from './step-events.js';

export type PaymentOption = { method: PaymentMethod; available: boolean };

/** Khipu's banks as the checkout has them: null until the step asks for them. */
export type BankList =
  | { status: 'loading' }
  | { status: 'ready'; banks: Pick<KhipuBank, 'id' | 'name'>[] }
  | { status: 'failed' }
  | null;

/**
 * The card tokenizer frame for this checkout: null until the step asks for it. When it is ready, the card's
 * elements (card/card-elements.ts, loaded with it) are registered.
 */
export type CardSession =
  | { status: 'loading' }
  | { status: 'ready'; session: CardSessionResponse }
  | { status: 'failed' }
  | null;

/** The parts of `<kasu-card-frame>` this step passes on. */
const CARD_PARTS = 'card-frame, card, change-card-button, option, field-error';

/**
 * Step 6: how to pay. Methods the BFF lists as unavailable are shown disabled ("Próximamente").
 * Choosing Khipu offers an optional bank list; without it (still loading, or failed) the customer chooses the
 * bank on Khipu's page. Choosing card shows the gateway's frame and the recurring-charge consent (`<kasu-card-frame>`);
 * both are required. Submitting is the purchase: the button stays disabled while it is under way.
 *
 * @fires kasu-payment-submit - a payment method (and, for Khipu, maybe a bank; for card, the card) was chosen and the
 *   purchase confirmed
 * @fires kasu-banks-request - Khipu is chosen and `banks` is null
 * @fires kasu-card-session-request - card is chosen and `cardSession` is null (or failed and card is chosen again)
 * @csspart form - the form
 * @csspart summary - what is being bought
 * @csspart option - one payment method
 * @csspart field - the bank field
 * @csspart label - the bank field's label
 * @csspart input - the bank select
 * @csspart hint - the bank list is loading or could not be loaded; the card form is loading
 * @csspart field-error - "choose an option"
 * @csspart submit-button - the Confirm purchase button
 * @csspart card-frame - the card tokenizer frame
 * @csspart card - the card the frame gave back
 * @csspart change-card-button - "Cambiar tarjeta"
 */
export class KasuStepPayment extends LitElement {
  static override styles = [tokens, formStyles];

  static override properties = {
    text: { attribute: false },
    methods: { attribute: false },
    quote: { attribute: false },
    planCount: { type: Number },
    selected: {},
    selectedBank: {},
    banks: { attribute: false },
    cardSession: { attribute: false },
    declinedCards: { type: Number },
    pending: { type: Boolean },
    choice: { state: true },
    bankChoice: { state: true },
    missingChoice: { state: true },
  };

  private get cardFrame(): KasuCardFrame | null {
    return this.renderRoot.querySelector('kasu-card-frame');
  }

  /** What the customer picked here; until then `selected` and `selectedBank` apply. */
  declare private choice: PaymentMethod | null;
  declare private bankChoice: string | null;
  declare private missingChoice: boolean;

  declare text: Text;
  /** Payment methods and whether each can be used now, from the checkout. */
  declare methods: PaymentOption[];
  /** The quote and chosen plan, for the summary. */
  declare quote: Quote | null;
  declare planCount: number | null;
  /** The method chosen before; by default the first available one. */
  declare selected: PaymentMethod | null;
  /** The Khipu bank chosen before, if any. */
  declare selectedBank: string | null;
  declare banks: BankList;
  declare cardSession: CardSession;
  /** How many cards the bank declined: each one clears the card in the frame. */
  declare declinedCards: number;
  declare pending: boolean;

  constructor() {
    super();
    this.methods = [];
    this.quote = null;
    this.planCount = null;
    this.selected = null;
    this.selectedBank = null;
    this.banks = null;
    this.cardSession = null;
    this.declinedCards = 0;
    this.pending = false;
    this.choice = null;
    this.bankChoice = null;
    this.missingChoice = false;
  }

  override updated(): void {
    // Only customers who choose to pay by transfer need the list.
    const method = this.#method();
    if (method === 'khipu' && this.banks === null) this.dispatchEvent(new KasuBanksRequestEvent());
    if (method === 'card' && this.cardSession === null) this.dispatchEvent(new KasuCardSessionRequestEvent());
  }

  #method(): PaymentMethod | null {
    const available = this.methods.filter((option) => option.available).map((option) => option.method);
    const wanted = this.choice ?? this.selected;
    return wanted && available.includes(wanted) ? wanted : (available[0] ?? null);
  }

  #onChange(event: Event): void {
    this.choice = (event.target as HTMLInputElement).value as PaymentMethod;
    this.missingChoice = false;
    // Chosen again after the frame could not be loaded: another try.
    if (this.choice === 'card' && this.cardSession?.status === 'failed') {
      this.dispatchEvent(new KasuCardSessionRequestEvent());
    }
  }

  #onBankChange(event: Event): void {
    this.bankChoice = (event.target as HTMLSelectElement).value;
  }

  #onSubmit(event: SubmitEvent): void {
    event.preventDefault();
    if (this.pending) return;
    const method = this.#method();
    if (!method) {
      this.missingChoice = true;
      return;
    }
    if (method === 'card') {
      const frame = this.cardFrame;
      // No frame yet (it is loading): nothing to send.
      if (!frame?.reportValidity() || !frame.card) return;
      this.dispatchEvent(new KasuPaymentSubmitEvent(method, null, frame.card));
      return;
    }
    const bank = method === 'khipu' ? (this.bankChoice ?? this.selectedBank) : null;
    this.dispatchEvent(new KasuPaymentSubmitEvent(method, bank || null));
  }

  #renderSummary() {
    const t = this.text;
    const plan = this.quote?.plans.find((candidate) => candidate.count === this.planCount);
    if (!this.quote || !plan) return '';
    return html`<p part="summary">${t.paymentSummary(t.productNames[this.quote.product], describePlan(t, plan))}</p>`;
  }

  #renderOption(option: PaymentOption, chosen: PaymentMethod | null) {
    const t = this.text;
    const id = `payment-${option.method}`;
    return html`
      <div part="option" class="option ${option.available ? '' : 'unavailable'}">
        <input
          type="radio"
          name="payment-method"
          id=${id}
          .value=${option.method}
          .checked=${chosen === option.method}
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

  #renderBanks() {
    const t = this.text;
    const list = this.banks;
    if (list?.status === 'loading' || list?.status === 'failed') {
      return html`<p part="hint" class="hint">${list.status === 'loading' ? t.banksLoading : t.banksFailed}</p>`;
    }
    if (list?.status !== 'ready' || list.banks.length === 0) return nothing;
    const chosen = this.bankChoice ?? this.selectedBank ?? '';
    return html`
      <div part="field" class="field">
        <label part="label" for="khipu-bank">${t.bankLabel}</label>
        <select part="input" id="khipu-bank" @change=${this.#onBankChange}>
          <option value="" ?selected=${chosen === ''}>${t.bankOnKhipu}</option>
          ${list.banks.map(
            (bank) => html`<option value=${bank.id} ?selected=${chosen === bank.id}>${bank.name}</option>`,
          )}
        </select>
      </div>
    `;
  }

  #renderCard() {
    const card = this.cardSession;
    if (card?.status === 'loading') return html`<p part="hint" class="hint">${this.text.cardLoading}</p>`;
    if (card?.status !== 'ready') return nothing;
    return html`<kasu-card-frame
      exportparts=${CARD_PARTS}
      .text=${this.text}
      .session=${card.session}
      .declinedCards=${this.declinedCards}
    ></kasu-card-frame>`;
  }

  override render() {
    const t = this.text;
    const chosen = this.#method();
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        ${this.#renderSummary()}
        <fieldset aria-describedby="payment-error">
          <legend>${t.paymentLegend}</legend>
          ${this.methods.map((option) => this.#renderOption(option, chosen))}
        </fieldset>
        ${chosen === 'khipu' ? this.#renderBanks() : nothing}
        ${chosen === 'card' ? this.#renderCard() : nothing}
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
