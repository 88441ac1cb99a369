import { LitElement, css, html, type PropertyValues } from 'lit';
import type { Consents, LegalDocument } from '../../shared/contract.js';
import { CONSENT_DOCUMENTS, type ConsentDocument } from '../../shared/products.js';
import type { Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton } from './step-parts.js';
import { KasuConsentsSubmitEvent } from './step-events.js';


/**
 * Step 5: terms and conditions, aviso de privacidad and fideicomiso F/0003, each with a link to the document.
 * All three are required.
 *
 * @fires kasu-consents-submit - all three were accepted
 * @csspart form - the form
 * @csspart option - one document: checkbox, label, link and error
 * @csspart link - the link to a document
 * @csspart field-error - the error under a document
 * @csspart submit-button - the Continue button
 */
export class KasuStepConsents extends LitElement {
  static override styles = [
    tokens,
    formStyles,
    css`
      .option .field-error,
      .option a {
        grid-column: 2;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    consents: { attribute: false },
    documents: { attribute: false },
    fieldErrors: { attribute: false },
    pending: { type: Boolean },
    missing: { state: true },
  };

  #checkbox(id: ConsentDocument): HTMLInputElement | null {
    return this.renderRoot.querySelector(`#consent-${id}`);
  }

  /** Documents the customer tried to continue without accepting. */
  declare private missing: ReadonlySet<ConsentDocument>;

  declare text: Text;
  /** What was accepted before. */
  declare consents: Consents;
  /** The documents and their links, from the checkout. */
  declare documents: LegalDocument[];
  /** Errors from the server, by path ("consents.trust"): those documents are marked as required. */
  declare fieldErrors: Record<string, string>;
  declare pending: boolean;

  constructor() {
    super();
    this.consents = { terms: false, privacy: false, trust: false };
    this.documents = [];
    this.fieldErrors = {};
    this.pending = false;
    this.missing = new Set();
  }

  override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('fieldErrors')) {
      this.missing = new Set(CONSENT_DOCUMENTS.filter((id) => this.fieldErrors[`consents.${id}`] !== undefined));
    }
  }

  override updated(changed: PropertyValues<this>): void {
    const [first] = this.missing;
    if (changed.has('fieldErrors') && first !== undefined) this.#checkbox(first)?.focus();
  }

  #onChange(id: ConsentDocument, event: Event): void {
    if ((event.target as HTMLInputElement).checked && this.missing.has(id)) {
      this.missing = new Set([...this.missing].filter((accepted) => accepted !== id));
    }
  }

  #onSubmit(event: SubmitEvent): void {
    event.preventDefault();
    if (this.pending) return;
    const consents = Object.fromEntries(
      CONSENT_DOCUMENTS.map((id) => [id, this.#checkbox(id)?.checked ?? false]),
    ) as Consents;
    const missing = CONSENT_DOCUMENTS.filter((id) => !consents[id]);
    this.missing = new Set(missing);
    const [first] = missing;
    if (first !== undefined) {
      this.#checkbox(first)?.focus();
      return;
    }
    this.dispatchEvent(new KasuConsentsSubmitEvent(consents));
  }

  #renderConsent(id: ConsentDocument) {
    const t = this.text;
    const legalDocument = this.documents.find((candidate) => candidate.id === id);
    const missing = this.missing.has(id);
    return html`
      <div part="option" class="option">
        <input
          type="checkbox"
          id="consent-${id}"
          name=${id}
          required
          .checked=${this.consents[id]}
          aria-invalid=${missing ? 'true' : 'false'}
          aria-describedby="consent-${id}-error"
          @change=${(event: Event) => this.#onChange(id, event)}
        />
        <label for="consent-${id}">${t.consentLabels[id]}</label>
        ${legalDocument
          ? html`<a part="link" href=${legalDocument.url} target="_blank" rel="noopener noreferrer"
              >${t.consentLinks[id]} ${t.opensInNewTab}</a
            >`
          : ''}
        <p part="field-error" class="field-error" id="consent-${id}-error">
          ${missing ? t.fieldErrors.ACCEPTANCE_REQUIRED : ''}
        </p>
      </div>
    `;
  }

  override render() {
    const t = this.text;
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        <fieldset>
          <legend>${t.consentsLegend}</legend>
          ${CONSENT_DOCUMENTS.map((id) => this.#renderConsent(id))}
        </fieldset>
        ${submitButton(t, this.pending)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-consents': KasuStepConsents;
  }
}
