import { LitElement, html, type PropertyValues } from 'lit';
import type { Address, Contact } from '../../shared/contract.js';
import { MX_STATES, normalizePhone, type MxStateCode } from '../../shared/mexico.js';
import type { FieldErrorCode, Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton } from './step-parts.js';
import { KasuContactSubmitEvent } from './step-events.js';

/** The fields, by the path the BFF uses in `error.fields`. */
type FieldPath = keyof Text['fields'];

type FieldSpec = {
  path: FieldPath;
  id: string;
  type?: 'email' | 'tel';
  autocomplete?: string;
  inputmode?: 'email' | 'tel' | 'numeric';
};

const CONTACT_FIELDS: FieldSpec[] = [
  { path: 'contact.email', id: 'email', type: 'email', autocomplete: 'email', inputmode: 'email' },
  { path: 'contact.phone', id: 'phone', type: 'tel', autocomplete: 'tel-national', inputmode: 'tel' },
];

const ADDRESS_FIELDS: FieldSpec[] = [
  { path: 'address.street', id: 'street', autocomplete: 'address-line1' },
  { path: 'address.number', id: 'number' },
  { path: 'address.neighborhood', id: 'neighborhood', autocomplete: 'address-level3' },
  { path: 'address.municipality', id: 'municipality', autocomplete: 'address-level2' },
  { path: 'address.postalCode', id: 'postal-code', autocomplete: 'postal-code', inputmode: 'numeric' },
];

const STATE_FIELD = { path: 'address.state', id: 'state' } as const satisfies FieldSpec;
const ALL_FIELDS: FieldSpec[] = [...CONTACT_FIELDS, ...ADDRESS_FIELDS, STATE_FIELD];

/**
 * Step 4: email, phone and address. Obvious slips are caught here; the BFF has the last word and its field
 * errors (`fieldErrors`, by path) are shown on the matching field until the customer edits it.
 *
 * @fires kasu-contact-submit - the form passed the widget's checks
 * @csspart form - the form
 * @csspart field - a label, input and error
 * @csspart label - a field's label
 * @csspart input - an input or the state select
 * @csspart field-error - the error under a field
 * @csspart submit-button - the Continue button
 */
export class KasuStepContact extends LitElement {
  static override styles = [tokens, formStyles];

  static override properties = {
    text: { attribute: false },
    contact: { attribute: false },
    address: { attribute: false },
    fieldErrors: { attribute: false },
    pending: { type: Boolean },
    localErrors: { state: true },
    edited: { state: true },
  };

  #control(id: string): HTMLInputElement | HTMLSelectElement | null {
    return this.renderRoot.querySelector(`#${id}`);
  }

  declare private localErrors: Partial<Record<FieldPath, FieldErrorCode>>;
  /** Fields changed since the server's errors arrived: those errors no longer apply. */
  declare private edited: ReadonlySet<FieldPath>;

  declare text: Text;
  /** Saved contact, to fill the form when coming back. */
  declare contact: Contact | null;
  /** Saved address, to fill the form when coming back. */
  declare address: Address | null;
  /** Errors from the server: field path ("contact.email") → code or reason. */
  declare fieldErrors: Record<string, string>;
  declare pending: boolean;

  constructor() {
    super();
    this.contact = null;
    this.address = null;
    this.fieldErrors = {};
    this.pending = false;
    this.localErrors = {};
    this.edited = new Set();
  }

  override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('fieldErrors')) this.edited = new Set();
  }

  override updated(changed: PropertyValues<this>): void {
    if (changed.has('fieldErrors')) this.#focusFirstError();
  }

  #errorFor(path: FieldPath): string | undefined {
    return this.localErrors[path] ?? (this.edited.has(path) ? undefined : this.fieldErrors[path]);
  }

  #focusFirstError(): void {
    const first = ALL_FIELDS.find((field) => this.#errorFor(field.path) !== undefined);
    if (first) this.#control(first.id)?.focus();
  }

  #value(id: string): string {
    return this.#control(id)?.value.trim() ?? '';
  }

  #onInput(path: FieldPath): void {
    if (!this.edited.has(path)) this.edited = new Set([...this.edited, path]);
    if (this.localErrors[path] !== undefined) {
      const { [path]: _fixed, ...rest } = this.localErrors;
      this.localErrors = rest;
    }
  }

  #onSubmit(event: SubmitEvent): void {
    event.preventDefault();
    if (this.pending) return;
    const errors: Partial<Record<FieldPath, FieldErrorCode>> = {};
    for (const field of ALL_FIELDS) if (this.#value(field.id) === '') errors[field.path] = 'REQUIRED';

    const email = this.#value('email');
    // Only the obvious slips: the BFF decides what a valid address is.
    if (!errors['contact.email'] && !/^[^\s@]+@[^\s@]+$/.test(email)) errors['contact.email'] = 'EMAIL_INVALID';
    const phone = normalizePhone(this.#value('phone'));
    if (!errors['contact.phone'] && phone === null) errors['contact.phone'] = 'PHONE_INVALID';
    const postalCode = this.#value('postal-code');
    if (!errors['address.postalCode'] && !/^\d{5}$/.test(postalCode)) {
      errors['address.postalCode'] = 'POSTAL_CODE_INVALID';
    }

    this.localErrors = errors;
    if (Object.keys(errors).length > 0 || phone === null) {
      this.updateComplete.then(() => this.#focusFirstError());
      return;
    }
    this.dispatchEvent(
      new KasuContactSubmitEvent(
        { email, phone },
        {
          street: this.#value('street'),
          number: this.#value('number'),
          neighborhood: this.#value('neighborhood'),
          municipality: this.#value('municipality'),
          postalCode,
          state: this.#value('state') as MxStateCode,
        },
      ),
    );
  }

  #saved(path: FieldPath): string {
    const [group, key] = path.split('.') as ['contact' | 'address', string];
    const source: Record<string, string> | null = group === 'contact' ? this.contact : this.address;
    return source?.[key] ?? '';
  }

  #renderField(field: FieldSpec) {
    const error = this.#errorFor(field.path);
    const errorId = `${field.id}-error`;
    return html`
      <div part="field" class="field">
        <label part="label" for=${field.id}>${this.text.fields[field.path]}</label>
        <input
          part="input"
          id=${field.id}
          name=${field.id}
          type=${field.type ?? 'text'}
          autocomplete=${field.autocomplete ?? 'off'}
          inputmode=${field.inputmode ?? 'text'}
          required
          .value=${this.#saved(field.path)}
          aria-invalid=${error ? 'true' : 'false'}
          aria-describedby=${errorId}
          @input=${() => this.#onInput(field.path)}
        />
        <p part="field-error" class="field-error" id=${errorId}>${error ? this.text.error(error) : ''}</p>
      </div>
    `;
  }

  #renderStateField() {
    const t = this.text;
    const error = this.#errorFor(STATE_FIELD.path);
    const saved = this.#saved(STATE_FIELD.path);
    return html`
      <div part="field" class="field">
        <label part="label" for="state">${t.fields[STATE_FIELD.path]}</label>
        <select
          part="input"
          id="state"
          name="state"
          autocomplete="address-level1"
          required
          aria-invalid=${error ? 'true' : 'false'}
          aria-describedby="state-error"
          @change=${() => this.#onInput(STATE_FIELD.path)}
        >
          <option value="" ?selected=${saved === ''}>${t.statePlaceholder}</option>
          ${Object.entries(MX_STATES).map(
            ([code, name]) => html`<option value=${code} ?selected=${saved === code}>${name}</option>`,
          )}
        </select>
        <p part="field-error" class="field-error" id="state-error">${error ? t.error(error) : ''}</p>
      </div>
    `;
  }

  override render() {
    const t = this.text;
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        <fieldset>
          <legend>${t.contactLegend}</legend>
          ${CONTACT_FIELDS.map((field) => this.#renderField(field))}
        </fieldset>
        <fieldset>
          <legend>${t.addressLegend}</legend>
          ${ADDRESS_FIELDS.map((field) => this.#renderField(field))} ${this.#renderStateField()}
        </fieldset>
        ${submitButton(t, this.pending)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-contact': KasuStepContact;
  }
}
