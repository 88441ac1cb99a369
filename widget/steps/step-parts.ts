/** Pieces every step's form renders the same way. */
import { html } from 'lit';
import type { Text } from '../i18n.js';

/** The step's submit button: locked and saying "Enviando…" while the step's request is pending. */
export function submitButton(t: Text, pending: boolean, label: string = t.continue) {
  return html`<button part="submit-button" type="submit" ?disabled=${pending}>${pending ? t.sending : label}</button>`;
}

/** The "choose an option" message of a radio group, referenced by the fieldset's aria-describedby. */
export function choiceError(t: Text, id: string, missing: boolean) {
  return html`<p part="field-error" class="field-error" id=${id}>${missing ? t.fieldErrors.CHOICE_REQUIRED : ''}</p>`;
}
