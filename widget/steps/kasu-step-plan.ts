import { LitElement, html } from 'lit';
import type { Quote } from '../../shared/contract.js';
import { describePlan, type Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';
import { submitButton, choiceError } from './step-parts.js';
import { KasuPlanSelectEvent } from './step-events.js';

/**
 * Step 3: the quote's payment plans, amounts in MXN.
 *
 * @fires kasu-plan-select - a plan was chosen
 * @csspart form - the form
 * @csspart option - one plan
 * @csspart field-error - "choose an option"
 * @csspart submit-button - the Continue button
 */
export class KasuStepPlan extends LitElement {
  static override styles = [tokens, formStyles];

  static override properties = {
    text: { attribute: false },
    quote: { attribute: false },
    selected: { type: Number },
    pending: { type: Boolean },
    missingChoice: { state: true },
  };

  private get checked(): HTMLInputElement | null {
    return this.renderRoot.querySelector('input[name="plan"]:checked');
  }

  declare private missingChoice: boolean;

  declare text: Text;
  /** The quote of the chosen product. */
  declare quote: Quote | null;
  /** The plan chosen before (number of payments), if any. */
  declare selected: number | null;
  declare pending: boolean;

  constructor() {
    super();
    this.quote = null;
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
      this.renderRoot.querySelector<HTMLInputElement>('input[name="plan"]')?.focus();
      return;
    }
    this.dispatchEvent(new KasuPlanSelectEvent(Number(input.value)));
  }

  override render() {
    const t = this.text;
    const quote = this.quote;
    if (!quote) return html``;
    return html`
      <form part="form" novalidate @submit=${this.#onSubmit}>
        <fieldset aria-describedby="plan-error">
          <legend>${t.planLegend(t.productNames[quote.product], t.money(quote.price))}</legend>
          ${quote.plans.map(
            (plan) => html`
              <div part="option" class="option">
                <input
                  type="radio"
                  name="plan"
                  id="plan-${plan.count}"
                  .value=${String(plan.count)}
                  .checked=${this.selected === plan.count}
                  @change=${this.#onChange}
                />
                <label for="plan-${plan.count}">${describePlan(t, plan)}</label>
              </div>
            `,
          )}
        </fieldset>
        ${choiceError(t, 'plan-error', this.missingChoice)}
        ${submitButton(t, this.pending)}
      </form>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-plan': KasuStepPlan;
  }
}
