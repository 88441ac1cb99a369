import { LitElement, css, html, type PropertyValues } from 'lit';
import { parseCurp, type CurpErrorCode } from '../../shared/curp.js';
import type { Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton } from './step-parts.js';
import { KasuCurpSubmitEvent } from './step-events.js';

/**
 * Step 1: the customer's CURP, validated as it is typed (shape, birth date, check digit) before the BFF is asked.
 *
 * @fires kasu-curp-submit - a well-formed CURP was submitted
 * @csspart form - the form
 * @csspart field - the label, hint, input and error
 * @csspart label - the label
 * @csspart hint - the help text
 * @csspart input - the CURP input
 * @csspart field-error - the error under the input
 * @csspart submit-button - the Continue button
 */
export class KasuStepCurp extends LitElement {
  static override styles = [
    tokens,
    formStyles,
    css`
      input {
        text-transform: uppercase;
        letter-spacing: 0.05em;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    value: {},
    pending: { type: Boolean },
    fieldErrors: { attribute: false },
    localError: { state: true },
    edited: { state: true },
  };

  private get input(): HTMLInputElement | null {
    return this.renderRoot.querySelector('input');
  }

  declare private localError: CurpErrorCode | null;
  /** The customer changed the CURP since the server's error arrived: that error no longer applies. */
  declare private edited: boolean;

  /** Strings of the current locale. */
  declare text: Text;
  /** The CURP to start with (when coming back to this step). */
  declare value: string;
  /** A request is under way: the button is disabled. */
  declare pending: boolean;
  /** Errors from the server, by field (`curp` → code). */
  declare fieldErrors: Record<string, string>;

  constructor() {
    super();
    this.value = '';
    this.pending = false;
    this.fieldErrors = {};
    this.localError = null;
    this.edited = false;
  }

  override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('fieldErrors')) this.edited = false;
  }

  override updated(changed: PropertyValues<this>): void {
    if (changed.has('fieldErrors') && this.fieldErrors.curp) this.input?.focus();
  }

  #onInput(event: Event): void {
    const value = (event.target as HTMLInputElement).value;
    this.edited = true;
    // Instant feedback, but only once there is something complete to judge or an error is already showing.
    if (this.localError !== null || value.trim().length >= 18) this.#validate(value);
  }

  #onBlur(event: Event): void {
    const value = (event.target as HTMLInputElement).value;
    if (value.trim() !== '') this.#validate(value);
  }

  #onSubmit(event: SubmitEvent): void {
    event.preventDefault();
    if (this.pending) return;
    const curp = this.#validate(this.input?.value ?? '');
    if (curp === null) {
      this.input?.focus();
      return;
    }
    this.dispatchEvent(new KasuCurpSubmitEvent(curp));
  }

  #validate(value: string): string | null {
    const result = parseCurp(value);
    this.localError = result.ok ? null : result.code;
    return result.ok ? result.curp : null;
  }

  override render() {
    const t = this.text;
    const code = this.localError ?? (this.edited ? undefined : this.fieldErrors.curp);
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        <div part="field" class="field">
          <label part="label" for="curp">${t.curpLabel}</label>
          <p part="hint" class="hint" id="curp-hint">${t.curpHint}</p>
          <input
            part="input"
            id="curp"
            name="curp"
            autocomplete="off"
            autocapitalize="characters"
            spellcheck="false"
            .value=${this.value}
            aria-invalid=${code ? 'true' : 'false'}
            aria-describedby=${code ? 'curp-error curp-hint' : 'curp-hint'}
            @input=${this.#onInput}
            @blur=${this.#onBlur}
          />
          <p part="field-error" class="field-error" id="curp-error">${code ? t.error(code) : ''}</p>
        </div>
        ${submitButton(t, this.pending)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-curp': KasuStepCurp;
  }
}
