import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { TokenizedCardSchema, type CardSessionResponse, type TokenizedCard } from '../../shared/contract.js';
import type { Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { CARD_STRINGS } from './card-text.js';

/** The `type` of the one message the tokenizer frame sends. */
const TOKEN_MESSAGE = 'kasu-card-token';

/**
 * Paying by card, inside the payment step: the gateway's tokenizer frame, where the customer types the card (its
 * number never passes through this page's code), and the separate consent to recurring charges, in the BFF's words.
 * The frame's message is accepted only from the tokenizer's origin and from this element's own frame.
 *
 * @csspart card-frame - the tokenizer frame (size it with `::part(card-frame)`; default 24rem high)
 * @csspart card - "Tarjeta terminada en 4242 (visa)", once the frame gave the card
 * @csspart change-card-button - "Cambiar tarjeta": shows the frame again, empty
 * @csspart option - the recurring-charge consent: checkbox, label and error
 * @csspart field-error - "enter your card", "authorise the charges"
 */
export class KasuCardFrame extends LitElement {
  static override styles = [
    tokens,
    formStyles,
    css`
      :host {
        display: grid;
        gap: var(--_k-space);
      }
      iframe {
        box-sizing: border-box;
        width: 100%;
        height: 24rem;
        border: 1px solid var(--_k-border);
        border-radius: var(--_k-radius);
        background: var(--_k-surface);
      }
      iframe[aria-invalid='true'] {
        border-color: var(--_k-error);
        border-width: 2px;
      }
      .card {
        margin: 0;
        font-weight: 600;
      }
      .card:focus {
        outline: none;
      }
      .change {
        background: var(--_k-surface);
        color: var(--_k-primary);
      }
      .option .field-error {
        grid-column: 2;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    session: { attribute: false },
    declinedCards: { type: Number },
    card: { attribute: false },
    recurringConsent: { attribute: false },
    showErrors: { state: true },
  };

  /** Errors are shown once the customer tried to pay without the card or the consent. */
  declare private showErrors: boolean;
  #focusCard = false;
  #focusFrame = false;

  declare text: Text;
  /** The tokenizer frame and the consent text, from the BFF. */
  declare session: CardSessionResponse | null;
  /** How many cards the bank declined in this purchase: each one clears the card and shows the frame again, empty. */
  declare declinedCards: number;
  /** The card the frame gave back (a token, its brand, last 4 digits and MM/YY); null until then. Read only. */
  declare card: TokenizedCard | null;
  /** Whether the customer ticked the recurring-charge consent. Read only. */
  declare recurringConsent: boolean;

  constructor() {
    super();
    this.session = null;
    this.declinedCards = 0;
    this.card = null;
    this.recurringConsent = false;
    this.showErrors = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('message', this.#onMessage);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('message', this.#onMessage);
  }

  override willUpdate(changed: PropertyValues<this>): void {
    // The first value is not a decline; a later one is: that card is gone.
    if (changed.has('declinedCards') && changed.get('declinedCards') !== undefined) this.card = null;
  }

  override updated(): void {
    if (this.#focusCard) this.renderRoot.querySelector<HTMLElement>('.card')?.focus();
    if (this.#focusFrame) this.renderRoot.querySelector('iframe')?.focus();
    this.#focusCard = false;
    this.#focusFrame = false;
  }

  /** Whether both the card and the consent are there; when not, shows why next to each and moves focus there. */
  reportValidity(): boolean {
    this.showErrors = true;
    if (!this.card) {
      this.#focusFrame = true;
    } else if (!this.recurringConsent) {
      void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>('#recurring-consent')?.focus());
    }
    return this.card !== null && this.recurringConsent;
  }

  #onMessage = (event: MessageEvent): void => {
    const frame = this.renderRoot.querySelector('iframe');
    // Anyone can post to this window: only the tokenizer, from its origin and in our own frame, is listened to.
    if (!this.session || !frame || event.origin !== this.session.tokenizerOrigin) return;
    if (event.source === null || event.source !== frame.contentWindow) return;
    const data: unknown = event.data;
    if (typeof data !== 'object' || data === null || (data as { type?: unknown }).type !== TOKEN_MESSAGE) return;
    const card = TokenizedCardSchema.safeParse(data);
    if (!card.success) return;
    this.card = card.data;
    this.#focusCard = true;
  };

  #onChangeCard(): void {
    this.card = null;
    this.#focusFrame = true;
  }

  #onConsent(event: Event): void {
    this.recurringConsent = (event.target as HTMLInputElement).checked;
  }

  override render() {
    const session = this.session;
    if (!session) return nothing;
    const t = CARD_STRINGS[this.text.locale];
    const card = this.card;
    const cardMissing = this.showErrors && !card;
    const consentMissing = this.showErrors && !this.recurringConsent;
    const consentText = this.text.locale === 'en' ? session.recurringConsent.en : session.recurringConsent.es;
    return html`
      ${card
        ? html`<p part="card" class="card" tabindex="-1">${t.cardSaved(card.last4, card.brand)}</p>
            <button part="change-card-button" class="change" type="button" @click=${this.#onChangeCard}>
              ${t.changeCard}
            </button>`
        : html`<iframe
              part="card-frame"
              title=${t.frameTitle}
              src=${session.tokenizerUrl}
              aria-invalid=${cardMissing ? 'true' : 'false'}
              aria-describedby="card-error"
            ></iframe>
            <p part="field-error" class="field-error" id="card-error">${cardMissing ? t.cardRequired : ''}</p>`}
      <div part="option" class="option">
        <input
          type="checkbox"
          id="recurring-consent"
          required
          .checked=${this.recurringConsent}
          aria-invalid=${consentMissing ? 'true' : 'false'}
          aria-describedby="recurring-consent-error"
          @change=${this.#onConsent}
        />
        <label for="recurring-consent">${consentText}</label>
        <p part="field-error" class="field-error" id="recurring-consent-error">
          ${consentMissing ? t.consentRequired : ''}
        </p>
      </div>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-card-frame': KasuCardFrame;
  }
}
